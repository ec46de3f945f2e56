// Dovecot 2.3: kicks through the ipc service, which forwards them to every
// login process of the "proxy" group.
//
// The exchange, on the ipc service's client socket ("ipc" in base_dir, opened
// at the first kick and again after the service closed it): we send one line
// per kick, "proxy\t*\t<command>" (core::kick_ipc_line()); the ipc service
// answers each in order with any number of ":<data>" lines and one final
// "+<data>" (every login process succeeded; KICK* data is the count) or
// "-<error>". It runs one command per connection at a time and reads the next
// only after answering, so kicks are sent at once and their replies matched
// in order, as stock's ipc client does. A kick waits at most the reply
// timeout for its final line after the one before it was answered; then, or
// on a line that is none of these, the connection is closed and every kick
// on it fails.
#include "adapter/kick-client.h"

#include <deque>
#include <optional>

#include "adapter/dovecot.h"
#include "adapter/handles.h"
#include "adapter/stream.h"
#include "core/tab-escape.h"

namespace director::adapter {

namespace {

// The ipc service's client socket, relative to base_dir (we are chrooted there).
constexpr const char *ipc_socket_path = "ipc";
constexpr size_t ipc_max_line_bytes = 64 * 1024;

class IpcKickClient : public KickClient {
public:
	IpcKickClient(struct event *event, Connector connect_peer, unsigned reply_timeout_msecs)
		: event_(event), connect_peer_(std::move(connect_peer)),
		  reply_timeout_msecs_(reply_timeout_msecs)
	{
	}
	~IpcKickClient() override
	{
		connect_failed_.reset();
		timeout_.reset();
		stream_.reset();
		fail_all("director shutting down");
	}

	void connect() override {}

	void kick(const core::Kick &kick, Callback done) override
	{
		if (!stream_) {
			int fd = connect_failed_.active() ? -1 : connect_peer_();
			if (fd == -1) {
				// Reported from the ioloop, as stock does, not
				// from inside the caller's kick().
				pending_.push_back(std::move(done));
				if (!connect_failed_.active())
					connect_failed_.once(0, [this]() {
						fail_all("ipc connect failed");
					});
				return;
			}
			stream_.emplace(fd, ipc_max_line_bytes);
			stream_->watch([this]() { input(); });
		}
		std::string line = core::kick_ipc_line(kick);
		e_debug(event_, "ipc: %s", line.c_str());
		stream_->send(line + "\n");
		pending_.push_back(std::move(done));
		if (pending_.size() == 1)
			arm_timeout();
	}

private:
	void arm_timeout()
	{
		timeout_.once(reply_timeout_msecs_, [this]() {
			e_error(event_,
				"ipc did not answer a kick in %u msecs, giving up on %zu kicks",
				reply_timeout_msecs_, pending_.size());
			disconnect("Timeout waiting for the ipc reply");
		});
	}

	// Closes the connection (the next kick opens a new one) and fails
	// every kick still waiting on it.
	void disconnect(const std::string &reason)
	{
		timeout_.reset();
		stream_.reset();
		fail_all(reason);
	}

	void fail_all(const std::string &reason)
	{
		std::deque<Callback> pending;
		std::swap(pending, pending_);
		for (Callback &done : pending)
			run_noexcept("ipc kick failed", [&]() { done(false, reason); });
	}

	void input()
	{
		auto r = stream_->read();
		if (r == Stream::ReadResult::read_full) {
			e_error(event_, "ipc sent a line longer than %zu bytes",
				ipc_max_line_bytes);
			disconnect("ipc sent a too long line");
			return;
		}
		std::string_view line;
		while (stream_ && stream_->next_line(line)) {
			std::string copy(line);
			line_input(copy);
		}
		if (stream_ && (r == Stream::ReadResult::eof || r == Stream::ReadResult::error)) {
			// The ipc service restarted (or died): the next kick
			// reconnects; the ones it held are lost.
			if (pending_.empty())
				e_debug(event_, "ipc disconnected: %s",
					stream_->read_error().c_str());
			else
				e_error(event_, "ipc disconnected with %zu kicks unanswered: %s",
					pending_.size(), stream_->read_error().c_str());
			disconnect("Disconnected");
		}
	}

	void line_input(const std::string &line)
	{
		if (pending_.empty()) {
			e_error(event_, "ipc sent a line with no kick waiting: %s",
				core::quote_for_log(line).c_str());
			return;
		}
		char kind = line.empty() ? '\0' : line[0];
		std::string data = line.empty() ? "" : line.substr(1);
		switch (kind) {
		case ':':
			// Stock logs and ignores it too: KICK* replies only
			// with a count on the final line.
			e_error(event_, "login process sent an unexpected reply to a kick: %s",
				core::quote_for_log(data).c_str());
			return;
		case '+':
			finish_front(true, "");
			return;
		case '-':
			finish_front(false, data);
			return;
		default:
			e_error(event_, "ipc sent an invalid reply to a kick: %s",
				core::quote_for_log(line).c_str());
			disconnect("Invalid reply from ipc");
			return;
		}
	}

	void finish_front(bool ok, const std::string &error)
	{
		Callback done = std::move(pending_.front());
		pending_.pop_front();
		if (pending_.empty())
			timeout_.reset();
		else
			arm_timeout();
		run_noexcept("ipc kick reply", [&]() { done(ok, error); });
	}

	struct event *event_;
	Connector connect_peer_;
	unsigned reply_timeout_msecs_;
	std::optional<Stream> stream_;
	std::deque<Callback> pending_; // in the order the kicks were sent
	TimeoutHandle timeout_;	       // the oldest pending kick's reply
	TimeoutHandle connect_failed_; // fails the kicks made while unreachable
};

} // namespace

std::unique_ptr<KickClient> KickClient::create(struct event *event, core::UsernameHash hash,
					       Connector connect_peer,
					       unsigned reply_timeout_msecs)
{
	(void)hash; // the login processes hash with their own setting
	return std::make_unique<IpcKickClient>(event, std::move(connect_peer),
					       reply_timeout_msecs);
}

std::unique_ptr<KickClient> KickClient::create(struct event *event, core::UsernameHash hash)
{
	auto connect_ipc = [event]() {
		int fd = net_connect_unix(ipc_socket_path);
		if (fd == -1)
			e_error(event, "net_connect_unix(%s) failed: %m; kicks fail",
				ipc_socket_path);
		return fd;
	};
	return create(event, std::move(hash), connect_ipc, default_reply_timeout_msecs);
}

} // namespace director::adapter
