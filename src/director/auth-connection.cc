// login/director, director-userdb and *-authreply listeners.
//
// The exchange: a login process (auth-client protocol) or LMTP/doveadm
// (auth-master protocol) connects to us; we connect to the auth service's
// auth-login or auth-userdb socket and copy everything the client sends to
// auth untouched. Lines from auth come back one at a time and are forwarded
// unchanged, except successful replies (auth-client "OK", auth-master "PASS")
// that ask for a proxy without naming a host: for those we look up the user's
// mail host and append proxy_refresh= and host= (login-and-userdb.md §2-3).
// An authreply listener has no auth side: the client sends the OK lines.
// A busy login/director connection reads auth's replies in batches (see
// auth_batch_min_open below).
//
// The connection to auth is made without blocking: while auth refuses (its
// listener backlog is full, or it is restarting) we retry from a timer for up
// to auth_connect_retry_msecs, and the client's input waits in its socket.
// Stock retries inside connect and blocks the whole process meanwhile.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>

#include "adapter/clock.h"
#include "adapter/dovecot.h"
#include "adapter/handles.h"
#include "adapter/stream.h"

extern "C" {
#include "time-util.h"
}
#include "core/tab-escape.h"
#include "director/service.h"

namespace director {

namespace {

// Auth's own line limit in 2.3 (AUTH_CLIENT_MAX_LINE_LENGTH).
constexpr size_t auth_max_line_bytes = 16384;
// Client -> auth bytes are copied, not parsed: any buffer size works.
constexpr size_t client_read_bytes = 8192;
// How long auth may refuse before the client is disconnected (stock's
// retry time), and the first pause between attempts (doubled each time).
constexpr unsigned auth_connect_retry_msecs = 1000;
constexpr unsigned auth_connect_first_pause_msecs = 10;
// Replies from auth are read in batches while a login connection keeps many
// requests open at auth: then the read waits this long, and the replies
// auth writes meanwhile are answered with one wakeup, one read and one write
// instead of a few each. Below the threshold (a login process with a few
// logins under way) every reply is read at once, as before.
constexpr unsigned auth_batch_min_open = 8;
constexpr unsigned auth_batch_wait_msecs = 1;

class AuthConnection : public Connection, public LookupOwner {
public:
	AuthConnection(DirectorService &service, int client_fd, ListenerType type)
		: Connection(service), type_(type),
		  socket_(type == ListenerType::userdb ? core::AuthReplySocket::userdb
						       : core::AuthReplySocket::login),
		  client_(client_fd,
			  type == ListenerType::authreply ? auth_max_line_bytes : client_read_bytes,
			  type == ListenerType::authreply ? adapter::Stream::Framing::lines
							  : adapter::Stream::Framing::raw)
	{
		event_ = event_create(service.event());
		event_add_str(event_, "listener",
			      type == ListenerType::userdb      ? "userdb"
			      : type == ListenerType::authreply ? "authreply"
								: "login");
		if (type == ListenerType::authreply) {
			client_.send(core::format_authreply_handshake() + "\n");
			client_.watch([this]() { client_input(); });
		} else {
			auth_path_ = type == ListenerType::userdb ? "auth-userdb" : "auth-login";
			// The first attempt at once; a refusal is retried (and any
			// failure reported) from the timer, never from here, since
			// this connection is not registered with the service yet.
			if (!try_connect_auth())
				connect_timer_.once(0, [this]() { connect_auth(); });
		}
	}

	~AuthConnection() override
	{
		for (const auto &entry : pending_)
			service_.cancel_lookup(entry.first);
		event_unref(&event_);
	}

	void lookup_done(core::RequestId id, const core::Effects::LookupDone &result) override
	{
		auto it = pending_.find(id);
		if (it == pending_.end())
			return;
		Pending p = std::move(it->second);
		pending_.erase(it);
		std::string out;
		if (result.host) {
			uint32_t refresh = service_.settings().user_expire_secs / 2;
			out = core::format_auth_reply_with_host(p.reply, p.line, refresh,
								result.host->ip,
								result.host->hostname);
		} else {
			std::string_view name = core::auth_reply_hash_name(
				p.reply, service_.settings().master_user_separator);
			e_error(event_, "director: User %s host lookup failed: %s",
				core::quote_for_log(name).c_str(), result.error.c_str());
			out = core::format_auth_reply_fail(p.line);
		}
		out += '\n';
		client_.send(out);
	}

private:
	// One attempt to connect to auth; on refusal another one is scheduled
	// until the retry time is used up.
	bool try_connect_auth()
	{
		int fd = net_connect_unix(auth_path_);
		if (fd == -1)
			return false;
		auth_.emplace(fd, auth_max_line_bytes);
		auth_->watch([this]() { auth_input(); });
		client_.watch([this]() { client_input(); });
		return true;
	}

	void connect_auth()
	{
		if (try_connect_auth())
			return;
		int err = errno;
		int64_t now_msecs = adapter::mono_msecs();
		if (connect_started_msecs_ == 0)
			connect_started_msecs_ = now_msecs;
		long long waited_msecs = now_msecs - connect_started_msecs_;
		bool retry = err == EAGAIN || err == ECONNREFUSED || err == ENOENT;
		if (!retry || waited_msecs >= auth_connect_retry_msecs) {
			e_error(service_.event(), "connect(%s) failed: %s", auth_path_,
				strerror(err));
			close();
			return;
		}
		unsigned pause = std::min<unsigned>(
			next_pause_msecs_, unsigned(auth_connect_retry_msecs - waited_msecs));
		next_pause_msecs_ *= 2;
		connect_timer_.once(pause, [this]() { connect_auth(); });
	}

	struct Pending {
		std::string line;
		core::AuthReply reply;
	};

	void client_input()
	{
		auto r = client_.read();
		if (r == adapter::Stream::ReadResult::nothing)
			return;
		if (type_ == ListenerType::authreply) {
			authreply_input(r);
			return;
		}
		std::string_view data = client_.buffered();
		if (!data.empty()) {
			if (type_ == ListenerType::auth)
				requests_.client_bytes(data);
			auth_->send(data);
			client_.skip(data.size());
		}
		if (r == adapter::Stream::ReadResult::eof || r == adapter::Stream::ReadResult::error)
			disconnect(nullptr);
	}

	void authreply_input(adapter::Stream::ReadResult r)
	{
		if (r == adapter::Stream::ReadResult::read_full) {
			e_error(event_, "authreply client sent more than %zu bytes, disconnecting",
				auth_max_line_bytes);
			disconnect(nullptr);
			return;
		}
		core::Effects fx;
		bool bad_handshake = false;
		service_.run_batch(fx, [&]() {
			std::string_view line;
			while (!closed() && client_.next_line(line)) {
				if (!handshaked_) {
					core::Status st = core::parse_authreply_handshake(line);
					if (!st.ok()) {
						e_error(event_, "%s", st.error().c_str());
						bad_handshake = true;
						return;
					}
					handshaked_ = true;
					continue;
				}
				reply_line(line, client_, fx);
			}
		});
		if (bad_handshake) {
			disconnect(nullptr);
			return;
		}
		if (r == adapter::Stream::ReadResult::eof || r == adapter::Stream::ReadResult::error)
			disconnect(nullptr);
	}

	void auth_input()
	{
		if (type_ == ListenerType::auth && requests_.open() >= auth_batch_min_open) {
			auth_->pause();
			batch_timer_.once(auth_batch_wait_msecs, [this]() {
				auth_->resume();
				read_auth();
			});
			return;
		}
		read_auth();
	}

	void read_auth()
	{
		auto r = auth_->read();
		if (r == adapter::Stream::ReadResult::read_full) {
			e_error(service_.event(), "BUG: Auth server sent us more than %zu bytes",
				auth_max_line_bytes);
			disconnect("auth line too long");
			return;
		}
		{
			// One write for all the replies of a read, not one per line.
			adapter::StreamCork cork(client_);
			core::Effects fx;
			service_.run_batch(fx, [&]() {
				std::string_view line;
				while (!closed() && auth_->next_line(line)) {
					requests_.auth_line(line);
					reply_line(line, client_, fx);
				}
			});
		}
		if (r == adapter::Stream::ReadResult::eof || r == adapter::Stream::ReadResult::error) {
			e_error(service_.event(), "Auth server disconnected unexpectedly");
			disconnect("auth disconnected");
		}
	}

	// One line towards the client: forwarded, or held for a host lookup.
	void reply_line(std::string_view line, adapter::Stream &to, core::Effects &fx)
	{
		core::AuthReply reply = core::inspect_auth_reply(line, socket_);
		if (!core::auth_reply_needs_host(reply)) {
			std::string out(line);
			out += '\n';
			to.send(out);
			return;
		}
		for (const std::string &w : reply.warnings)
			e_error(event_, "%s", w.c_str());
		core::RequestId id = service_.new_request_id();
		auto it = pending_.emplace(id, Pending{std::string(line), std::move(reply)}).first;
		const core::AuthReply &held = it->second.reply;
		service_.start_lookup(
			this->id(), id,
			core::auth_reply_hash_name(held, service_.settings().master_user_separator),
			held.tag, fx);
	}

	void disconnect(const char *reason)
	{
		if (reason != nullptr && !pending_.empty())
			e_debug(event_, "Disconnecting with %zu lookups pending: %s",
				pending_.size(), reason);
		client_.flush();
		close();
	}

	ListenerType type_;
	const char *auth_path_ = nullptr;
	adapter::TimeoutHandle connect_timer_;
	int64_t connect_started_msecs_ = 0; // adapter::mono_msecs()
	unsigned next_pause_msecs_ = auth_connect_first_pause_msecs;
	core::AuthReplySocket socket_;
	struct event *event_;
	adapter::Stream client_;
	std::optional<adapter::Stream> auth_;
	// login/director only: the requests open at auth, and the wait before
	// reading a batch of replies (after auth_: it resumes auth_).
	core::AuthRequestCounter requests_;
	adapter::TimeoutHandle batch_timer_;
	bool handshaked_ = false;
	std::map<core::RequestId, Pending> pending_;
};

} // namespace

std::unique_ptr<Connection> make_auth_connection(DirectorService &service, int fd,
						 ListenerType type)
{
	return std::make_unique<AuthConnection>(service, fd, type);
}

} // namespace director
