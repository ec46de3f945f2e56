// Dovecot 2.4: kicks through anvil, which forwards KICK-USER and
// KICK-ALT-USER to the login processes that registered the sessions. A kick
// by user hash first reads anvil's session list (CONNECT-DUMP) and kicks the
// proxied sessions whose user name hashes to it. One command is in flight at
// a time: anvil answers a kick only once the login processes did, and a
// later CONNECT-DUMP would be answered before it.
//
// The connection: an anvil restart (a crash, a kill) closes it, and by then
// the director runs unprivileged. It connects to "anvil-director", the anvil
// listener the settings plugin adds for the director's user, at startup and
// again after every disconnect, so kicks keep working. Only when that
// listener is missing (an operator removed it) does it fall back to anvil's
// root-only socket, which works while privileged (at startup) and fails
// loudly after a restart.
#include "adapter/kick-client.h"

#include <cerrno>
#include <deque>
#include <optional>

#include "adapter/dovecot.h"
#include "adapter/handles.h"
#include "adapter/stream.h"
#include "core/anvil-kick.h"
#include "core/tab-escape.h"

namespace director::adapter {

namespace {

// anvil's listeners, relative to base_dir: ours (owned by the director's
// user, settings-24.c) and anvil's own (root's, mode 0600).
constexpr const char *anvil_director_socket_path = "anvil-director";
constexpr const char *anvil_socket_path = "anvil";
constexpr size_t anvil_max_line_bytes = 64 * 1024;

class AnvilKickClient : public KickClient {
public:
	// Each line sent waits at most `reply_timeout_msecs` for its answer
	// (anvil gives up on a login process after 25 s).
	AnvilKickClient(struct event *event, core::UsernameHash hash, Connector connect_peer,
			unsigned reply_timeout_msecs)
		: event_(event), hash_(std::move(hash)), connect_peer_(std::move(connect_peer)),
		  reply_timeout_msecs_(reply_timeout_msecs)
	{
	}
	~AnvilKickClient() override { fail_all("director shutting down"); }

	void connect() override { (void)ensure_connected(); }

	void kick(const core::Kick &kick, Callback done) override
	{
		jobs_.push_back(Job{core::anvil_kick(kick), std::move(done), {}, 0, false, false});
		// Inside a callback of ours, finish_front() starts it afterwards.
		if (jobs_.size() == 1 && !in_callback_)
			start_front();
	}

private:
	struct Job {
		core::AnvilKick kick;
		Callback done;
		std::deque<std::string> session_kicks; // by hash: still to send
		unsigned kicked;
		bool dumping; // reading CONNECT-DUMP output
		bool retried = false; // sent again after anvil disconnected
	};

	bool ensure_connected()
	{
		if (stream_)
			return true;
		int fd = connect_peer_();
		if (fd == -1)
			return false;
		e_debug(event_, "anvil: connected");
		stream_.emplace(fd, anvil_max_line_bytes);
		// No service/pid in the handshake: a plain command connection.
		stream_->send("VERSION\tanvil-client\t2\t0\n\n");
		server_version_seen_ = false;
		stream_->watch([this]() { input(); });
		return true;
	}

	void disconnect(const std::string &reason)
	{
		timeout_.reset();
		stream_.reset();
		dump_header_seen_ = false;
		fail_all(reason);
	}

	void fail_all(const std::string &reason)
	{
		std::deque<Job> jobs;
		std::swap(jobs, jobs_);
		for (Job &job : jobs)
			job.done(false, reason);
	}

	void start_front()
	{
		while (!jobs_.empty()) {
			if (!ensure_connected()) {
				disconnect("anvil is not reachable");
				return;
			}
			Job &job = jobs_.front();
			if (job.kick.by_hash) {
				job.dumping = true;
				send("CONNECT-DUMP");
			} else {
				send(job.kick.command);
			}
			return;
		}
	}

	void send(const std::string &line)
	{
		e_debug(event_, "anvil: %s", line.c_str());
		stream_->send(line + "\n");
		timeout_.once(reply_timeout_msecs_, [this]() {
			e_error(event_, "anvil did not answer in %u msecs", reply_timeout_msecs_);
			disconnect("anvil timed out");
		});
	}

	void finish_front(bool ok, const std::string &error)
	{
		timeout_.reset();
		Job job = std::move(jobs_.front());
		jobs_.pop_front();
		e_debug(event_, "anvil: kicked %u sessions", job.kicked);
		in_callback_ = true;
		job.done(ok, error);
		in_callback_ = false;
		start_front();
	}

	void input()
	{
		auto r = stream_->read();
		if (r == Stream::ReadResult::read_full) {
			disconnect("anvil sent a too long line");
			return;
		}
		std::string_view line;
		while (stream_ && stream_->next_line(line)) {
			std::string copy(line);
			line_input(copy);
		}
		if (stream_ && (r == Stream::ReadResult::eof || r == Stream::ReadResult::error)) {
			// anvil restarted (or died): with nothing in flight this
			// loses nothing, the next kick reconnects.
			if (jobs_.empty()) {
				e_warning(event_, "anvil disconnected: %s; reconnecting on "
						  "the next kick",
					  stream_->read_error().c_str());
			} else if (!jobs_.front().retried) {
				// The kick in flight is sent again on a new
				// connection, once: kicks are idempotent.
				e_warning(event_, "anvil disconnected: %s; reconnecting to "
						  "retry the kick",
					  stream_->read_error().c_str());
				Job &job = jobs_.front();
				job.retried = true;
				job.dumping = false;
				job.session_kicks.clear();
				timeout_.reset();
				stream_.reset();
				dump_header_seen_ = false;
				start_front();
				return;
			} else {
				e_error(event_, "anvil disconnected: %s",
					stream_->read_error().c_str());
			}
			disconnect("anvil disconnected");
		}
	}

	void line_input(const std::string &line)
	{
		if (!server_version_seen_) {
			if (line.rfind("VERSION\tanvil-server\t2\t", 0) != 0) {
				e_error(event_, "anvil sent an unexpected handshake: %s",
					core::quote_for_log(line).c_str());
				disconnect("anvil handshake failed");
				return;
			}
			server_version_seen_ = true;
			return;
		}
		if (jobs_.empty()) {
			e_error(event_, "anvil sent an unexpected line: %s",
				core::quote_for_log(line).c_str());
			return;
		}
		Job &job = jobs_.front();
		if (job.dumping) {
			dump_line(job, line);
			return;
		}
		auto count = core::parse_anvil_kick_reply(line);
		if (!count.ok()) {
			finish_front(false, count.error());
			return;
		}
		job.kicked += *count;
		if (!job.session_kicks.empty()) {
			std::string next = std::move(job.session_kicks.front());
			job.session_kicks.pop_front();
			send(next);
			return;
		}
		finish_front(true, "");
	}

	// CONNECT-DUMP: the header (alt field names), sessions, an empty line.
	void dump_line(Job &job, const std::string &line)
	{
		if (!dump_header_seen_) {
			dump_header_seen_ = true;
			return;
		}
		if (!line.empty()) {
			auto session = core::parse_anvil_session(line);
			if (!session.ok()) {
				e_error(event_, "%s", session.error().c_str());
				return;
			}
			if (auto cmd = core::anvil_kick_session(job.kick, *session, hash_))
				job.session_kicks.push_back(std::move(*cmd));
			return;
		}
		job.dumping = false;
		dump_header_seen_ = false;
		if (job.session_kicks.empty()) {
			finish_front(true, "");
			return;
		}
		std::string next = std::move(job.session_kicks.front());
		job.session_kicks.pop_front();
		send(next);
	}

	struct event *event_;
	core::UsernameHash hash_;
	Connector connect_peer_;
	unsigned reply_timeout_msecs_;
	std::optional<Stream> stream_;
	bool server_version_seen_ = false;
	bool dump_header_seen_ = false;
	bool in_callback_ = false;
	std::deque<Job> jobs_;
	TimeoutHandle timeout_;
};

} // namespace

std::unique_ptr<KickClient> KickClient::create(struct event *event, core::UsernameHash hash,
					       Connector connect_peer,
					       unsigned reply_timeout_msecs)
{
	return std::make_unique<AnvilKickClient>(event, std::move(hash), std::move(connect_peer),
						 reply_timeout_msecs);
}

std::unique_ptr<KickClient> KickClient::create(struct event *event, core::UsernameHash hash)
{
	auto connect_anvil = [event, warned_fallback = false]() mutable {
		int fd = net_connect_unix(anvil_director_socket_path);
		if (fd == -1 && errno == ENOENT) {
			fd = net_connect_unix(anvil_socket_path);
			if (fd == -1) {
				e_error(event,
					"Can't reach anvil: %s is missing and "
					"net_connect_unix(%s) failed: %m; kicks fail until "
					"service anvil has unix_listener %s owned by the "
					"director's user",
					anvil_director_socket_path, anvil_socket_path,
					anvil_director_socket_path);
				return -1;
			}
			if (!warned_fallback) {
				e_warning(event,
					  "%s is missing: kicking through anvil's root-only "
					  "socket, which fails after anvil restarts",
					  anvil_director_socket_path);
				warned_fallback = true;
			}
		} else if (fd == -1) {
			e_error(event, "net_connect_unix(%s) failed: %m; kicks fail",
				anvil_director_socket_path);
			return -1;
		}
		return fd;
	};
	return create(event, std::move(hash), connect_anvil, default_reply_timeout_msecs);
}

} // namespace director::adapter
