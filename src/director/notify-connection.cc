// login/proxy-notify listener (a FIFO, or a unix socket named *-notify).
//
// Login processes write one line per proxied session every proxy_refresh
// seconds: the session's destination user name, tab-escaped. Each line
// refreshes that user in every tag (login-and-userdb.md §4).
#include <string>

#include "adapter/dovecot.h"
#include "adapter/stream.h"
#include "core/line-reader.h"
#include "core/config-values.h"
#include "core/tab-escape.h"
#include "director/service.h"

namespace director {

namespace {

// The stock line limit (core/line-reader.h, which splits the lines).
using core::notify_max_line_bytes;

class NotifyConnection : public Connection {
public:
	NotifyConnection(DirectorService &service, int fd, bool fifo)
		: Connection(service), fifo_(fifo),
		  stream_(fd, notify_max_line_bytes, adapter::Stream::Framing::lines_skip_overlong)
	{
		counted_as_client_ = !fifo;
		stream_.watch([this]() { input(); });
	}

private:
	void input()
	{
		auto r = stream_.read();
		core::Now now = service_.now();
		core::Effects fx;
		service_.run_batch(fx, [&]() {
			std::string_view line;
			while (stream_.next_line(line))
				service_.core().notify_alive(core::proxy_notify_user(line), now, fx);
		});
		// Stock closes the FIFO on an overlong line, and with it every
		// later refresh. We drop only the bad line.
		for (unsigned n = stream_.take_skipped_lines(); n > 0; n--) {
			e_error(service_.event(),
				"notify: Received a line longer than %zu bytes, ignoring it",
				notify_max_line_bytes);
		}
		if (r == adapter::Stream::ReadResult::eof) {
			if (fifo_)
				e_error(service_.event(), "notify: read() unexpectedly returned EOF");
			close();
		} else if (r == adapter::Stream::ReadResult::error) {
			e_error(service_.event(), "notify: read() failed: %s",
				stream_.read_error().c_str());
			close();
		}
	}

	bool fifo_;
	adapter::Stream stream_;
};

} // namespace

std::unique_ptr<Connection> make_notify_connection(DirectorService &service, int fd, bool fifo)
{
	return std::make_unique<NotifyConnection>(service, fd, fifo);
}

} // namespace director
