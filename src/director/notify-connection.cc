// login/proxy-notify listener (a FIFO, or a unix socket named *-notify).
//
// Login processes write one line per proxied session every proxy_refresh
// seconds: the session's destination user name, tab-escaped. Each line
// refreshes that user in every tag (login-and-userdb.md §4).
#include <string>

#include "adapter/dovecot.h"
#include "adapter/stream.h"
#include "core/config-values.h"
#include "core/tab-escape.h"
#include "director/service.h"

namespace director {

namespace {

// The stock proxy-notify line limit.
constexpr size_t notify_max_line_bytes = 1024;

class NotifyConnection : public Connection {
public:
	NotifyConnection(DirectorService &service, int fd, bool fifo)
		: Connection(service), fifo_(fifo), stream_(fd, notify_max_line_bytes)
	{
		counted_as_client_ = !fifo;
		stream_.watch([this]() { input(); });
	}

private:
	void input()
	{
		auto r = stream_.read();
		if (r == adapter::Stream::ReadResult::read_full) {
			// Stock closes the FIFO here, and with it every later
			// refresh. We drop only the bad line.
			e_error(service_.event(),
				"notify: Received a line longer than %zu bytes, ignoring it",
				notify_max_line_bytes);
			stream_.skip(stream_.buffered().size());
			discarding_ = true;
			return;
		}
		if (discarding_) {
			std::string_view data = stream_.buffered();
			size_t lf = data.find('\n');
			stream_.skip(lf == std::string_view::npos ? data.size() : lf + 1);
			if (lf == std::string_view::npos && r != adapter::Stream::ReadResult::eof)
				return;
			discarding_ = false;
		}
		std::string_view line;
		int64_t now = service_.now();
		core::Effects fx;
		while (stream_.next_line(line))
			service_.core().notify_alive(core::proxy_notify_user(line), now, fx);
		service_.run_effects(fx);
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
	bool discarding_ = false;
	adapter::Stream stream_;
};

} // namespace

std::unique_ptr<Connection> make_notify_connection(DirectorService &service, int fd, bool fifo)
{
	return std::make_unique<NotifyConnection>(service, fd, fifo);
}

} // namespace director
