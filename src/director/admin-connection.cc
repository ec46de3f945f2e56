// director-admin listener: the doveadm director protocol (admin-protocol.md).
//
// On accept both sides send "VERSION\tdirector-doveadm\t1\t0". Then doveadm
// sends one command at a time; each gets a reply line, or lines ended by an
// empty line. A command that must wait (reset-users, a queued kick) stops
// reading until its reply is sent, and so does a client that does not read
// its replies (once more than admin_output_high_water bytes are queued), so
// its memory stays bounded. USER-LIST (doveadm director map) is written as
// the output drains, a chunk at a time, so a big table neither blocks the
// process nor sits in memory as one reply. A client that stops reading for
// admin_output_stall_msecs, or sends nothing while nothing is pending for
// admin_idle_timeout_msecs, is disconnected: it must not hold a slot for
// good. Bad input is logged and the connection is closed without a reply,
// as stock does.
#include <string>
#include <vector>

#include "adapter/dovecot.h"
#include "adapter/stream.h"
#include "core/line-reader.h"
#include "core/admin-protocol.h"
#include "core/tab-escape.h"
#include "director/health.h"
#include "director/service.h"

namespace director {

namespace {

// Our extension listing health check states (doc/operator-guide.md §9).
constexpr std::string_view health_list_command = "HEALTH-LIST";

// The stock line limit (core/line-reader.h, which splits the lines).
using core::admin_max_line_bytes;
// Queued reply bytes above which no further command is read, and below
// which reading starts again. One reply may exceed it (USER-LIST of a big
// table); what is bounded is the backlog of replies nobody reads.
constexpr size_t admin_output_high_water = 1024 * 1024;
constexpr size_t admin_output_low_water = 64 * 1024;
// USER-LIST lines are formatted until this much output is queued, then
// again once it drained below admin_output_low_water.
constexpr size_t user_list_chunk_bytes = 256 * 1024;
// A client whose queued replies made no progress for this long is gone or
// stuck; stock keeps it (and its memory) forever.
constexpr unsigned admin_output_stall_msecs = 60 * 1000;
// doveadm opens a connection per command; one that sends nothing while no
// reply is pending is dropped after this long (stock: never).
constexpr unsigned admin_idle_timeout_msecs = 15 * 60 * 1000;

class AdminConnection : public Connection, public AdminWaiter {
public:
	AdminConnection(DirectorService &service, int fd)
		: Connection(service), stream_(fd, admin_max_line_bytes)
	{
		stream_.send(core::format_admin_handshake() + "\n");
		stream_.watch([this]() { input(); });
		arm_idle_timeout();
	}

	~AdminConnection() override { service_.core().admin_gone(id()); }

	void admin_done(const std::string &reply) override
	{
		awaiting_reply_ = false;
		stream_.send(reply + "\n");
		throttle_if_unread();
		update_reading();
		arm_idle_timeout();
	}

	void admin_resume() override
	{
		if (!waiting_)
			return;
		core::AdminCommand cmd = std::move(*waiting_);
		waiting_.reset();
		update_reading();
		run(cmd);
	}

private:
	void input()
	{
		arm_idle_timeout();
		auto r = stream_.read();
		if (r == adapter::Stream::ReadResult::read_full) {
			e_error(service_.event(),
				"doveadm sent more than %zu bytes in a line, disconnecting",
				admin_max_line_bytes);
			close();
			return;
		}
		std::string_view line;
		while (!closed() && !stream_.paused() && stream_.next_line(line))
			handle_line(line);
		if (!closed() && (r == adapter::Stream::ReadResult::eof ||
				  r == adapter::Stream::ReadResult::error))
			close();
	}

	void handle_line(std::string_view line)
	{
		if (!handshaked_) {
			core::Status st = core::parse_admin_handshake(line);
			if (!st.ok()) {
				e_error(service_.event(), "%s", st.error().c_str());
				close();
				return;
			}
			handshaked_ = true;
			return;
		}
		// Our extension, only while health checks run (otherwise it is an
		// unknown command, as on stock): not part of the stock parser.
		if (line == health_list_command && service_.health() != nullptr) {
			stream_.send(service_.health()->list_reply());
			throttle_if_unread();
			return;
		}
		auto cmd = core::parse_admin_command(line);
		if (!cmd.ok()) {
			e_error(service_.event(), "%s", cmd.error().c_str());
			close();
			return;
		}
		run(*cmd);
	}

	void reply(core::AdminReply r)
	{
		if (r.later) {
			awaiting_reply_ = true;
			update_reading();
		} else {
			stream_.send(r.line + "\n");
		}
	}

	bool busy() const { return awaiting_reply_ || waiting_ || output_throttled_ || listing_; }

	// Reads commands only while none is pending and the client keeps up
	// with the replies.
	void update_reading()
	{
		if (busy())
			stream_.pause();
		else
			stream_.resume();
	}

	// The idle timeout runs only while nothing is pending on our side.
	void arm_idle_timeout()
	{
		if (closed() || busy()) {
			idle_timer_.reset();
			return;
		}
		idle_timer_.once(admin_idle_timeout_msecs, [this]() {
			e_error(service_.event(),
				"doveadm client sent nothing for %u secs, disconnecting",
				admin_idle_timeout_msecs / 1000);
			close();
		});
	}

	// While replies wait for the client to read them: disconnect it when
	// none of them was written for admin_output_stall_msecs.
	void watch_output_progress()
	{
		if (stall_timer_.active())
			return;
		stall_bytes_sent_ = stream_.bytes_sent();
		stall_timer_.repeat(admin_output_stall_msecs, [this]() {
			if (!output_throttled_ && !listing_) {
				stall_timer_.reset();
				return;
			}
			if (stream_.bytes_sent() != stall_bytes_sent_) {
				stall_bytes_sent_ = stream_.bytes_sent();
				return;
			}
			e_error(service_.event(),
				"doveadm client read none of its %zu bytes of replies for %u secs, "
				"disconnecting",
				stream_.output_buffered(), admin_output_stall_msecs / 1000);
			stall_timer_.reset();
			close();
		});
	}

	void throttle_if_unread()
	{
		if (output_throttled_ || stream_.output_buffered() <= admin_output_high_water)
			return;
		output_throttled_ = true;
		update_reading();
		arm_idle_timeout();
		watch_output_progress();
		stream_.on_drained(admin_output_low_water, [this]() {
			output_throttled_ = false;
			update_reading();
			arm_idle_timeout();
		});
	}

	// USER-LIST: formats lines of the snapshot until a chunk is queued,
	// then continues once it drained; the empty line ends the reply.
	void continue_user_list()
	{
		std::string out;
		while (list_pos_ < list_.size() && out.size() < user_list_chunk_bytes) {
			const core::UserListEntry &u = list_[list_pos_++];
			out += core::format_user_list_line(u.user_hash, uint32_t(u.expire_time),
							   u.host);
			out += '\n';
		}
		if (list_pos_ == list_.size()) {
			out += '\n';
			std::vector<core::UserListEntry>().swap(list_);
			list_pos_ = 0;
			listing_ = false;
			stream_.send(out);
			throttle_if_unread();
			update_reading();
			arm_idle_timeout();
			return;
		}
		stream_.send(out);
		watch_output_progress();
		stream_.on_drained(admin_output_low_water, [this]() { continue_user_list(); });
	}

	uint32_t hash_of(const core::AdminCommand &cmd) const
	{
		return cmd.user_hash ? *cmd.user_hash : service_.core().user_hash(cmd.user);
	}

	void run(const core::AdminCommand &cmd)
	{
		core::Director &d = service_.core();
		if (core::admin_command_waits_for_sync(cmd.kind) && !d.admin_may_run(id())) {
			// Stock runs these only on a synced ring.
			waiting_ = cmd;
			update_reading();
			return;
		}
		int64_t now = service_.now();
		core::Effects fx;
		// What the core decided before an exception is still carried out.
		service_.run_batch(fx, [&]() { dispatch(cmd, d, now, fx); });
		throttle_if_unread();
		arm_idle_timeout();
	}

	void dispatch(const core::AdminCommand &cmd, core::Director &d, int64_t now,
		      core::Effects &fx)
	{
		std::string out;
		switch (cmd.kind) {
		case core::AdminCommandKind::host_list:
			for (const auto &h : d.host_list()) {
				out += core::format_host_list_line(h.ip, h.vhost_count,
								   uint32_t(h.user_count), h.tag,
								   h.down, h.last_updown_change);
				out += '\n';
			}
			stream_.send(out + "\n");
			break;
		case core::AdminCommandKind::host_list_removed:
			for (const auto &ip : d.hosts_removed_from_config())
				out += ip.to_string() + "\n";
			stream_.send(out + "\n");
			break;
		case core::AdminCommandKind::director_list:
			for (const core::DirectorListEntry &e : d.director_list(now)) {
				if (!e.has_connection) {
					core::DirectorListHost host{*e.ip, e.port, e.type, e.last_failed};
					out += core::format_director_list_entry_line(
						host,
						e.type == "self" ? std::optional<std::string_view>(e.status)
								 : std::nullopt,
						e.last_ping_msecs);
				} else {
					core::DirectorListConnection c;
					c.status = e.status;
					c.last_ping_msecs = e.last_ping_msecs;
					c.last_input = e.last_input;
					c.last_output = e.last_output;
					if (RingTransport *t = service_.ring_transport(e.conn)) {
						c.bytes_read = t->bytes_read();
						c.bytes_sent = t->bytes_sent();
						c.bytes_buffered = t->bytes_buffered();
						c.peak_bytes_buffered = t->peak_buffered();
					}
					std::optional<core::DirectorListHost> host;
					if (e.ip)
						host = core::DirectorListHost{*e.ip, e.port, e.type,
									      e.last_failed};
					out += core::format_director_list_connection_line(host, c);
				}
				out += '\n';
			}
			stream_.send(out + "\n");
			break;
		case core::AdminCommandKind::director_add:
			reply(d.director_add(*cmd.ip, cmd.port, now, fx));
			break;
		case core::AdminCommandKind::director_remove:
			reply(d.director_remove(id(), *cmd.ip, cmd.port, now, fx));
			break;
		case core::AdminCommandKind::host_set:
		case core::AdminCommandKind::host_update:
			if (core::vhost_count_too_large(cmd)) {
				reply(core::AdminReply::now(
					std::string(core::admin_reply_vhost_count_too_large)));
				break;
			}
			reply(d.host_set(id(), *cmd.ip, cmd.tag,
					 cmd.vhost_count ? std::optional<unsigned>(*cmd.vhost_count)
							 : std::nullopt,
					 cmd.kind == core::AdminCommandKind::host_update, now, fx));
			break;
		case core::AdminCommandKind::host_up:
		case core::AdminCommandKind::host_down:
			reply(d.host_set_down(id(), *cmd.ip,
					      cmd.kind == core::AdminCommandKind::host_down, now, fx));
			break;
		case core::AdminCommandKind::host_remove:
			reply(d.host_remove(id(), *cmd.ip, now, fx));
			break;
		case core::AdminCommandKind::host_flush:
			reply(d.host_flush(id(), cmd.ip, now, fx));
			break;
		case core::AdminCommandKind::host_reset_users:
			reply(d.host_reset_users(id(), cmd.ip,
						 cmd.max_parallel.value_or(
							 service_.settings().max_parallel_moves),
						 now, fx));
			break;
		case core::AdminCommandKind::user_lookup: {
			core::UserLookup l = d.user_lookup(hash_of(cmd), cmd.tag, now);
			stream_.send(core::format_user_lookup_line(l.current, uint32_t(l.expire_time),
								   l.hashed, l.initial_config) +
				     "\n");
			break;
		}
		case core::AdminCommandKind::user_list:
			list_ = d.user_list(cmd.ip);
			list_pos_ = 0;
			listing_ = true;
			update_reading();
			arm_idle_timeout();
			continue_user_list();
			break;
		case core::AdminCommandKind::user_move:
			reply(d.user_move(hash_of(cmd), *cmd.ip, now, fx));
			break;
		case core::AdminCommandKind::user_kick:
			reply(d.user_kick(id(), "", cmd.user, cmd.nowait, fx));
			break;
		case core::AdminCommandKind::user_kick_alt:
			reply(d.user_kick(id(), cmd.field, cmd.value, cmd.nowait, fx));
			break;
		}
	}

	adapter::Stream stream_;
	bool handshaked_ = false;
	std::optional<core::AdminCommand> waiting_; // until the ring syncs
	bool awaiting_reply_ = false;		    // a command answers later
	bool output_throttled_ = false;		    // replies are not being read
	// USER-LIST in progress: the users still to send.
	bool listing_ = false;
	std::vector<core::UserListEntry> list_;
	size_t list_pos_ = 0;
	adapter::TimeoutHandle idle_timer_;
	adapter::TimeoutHandle stall_timer_;
	uint64_t stall_bytes_sent_ = 0;
};

} // namespace

std::unique_ptr<Connection> make_admin_connection(DirectorService &service, int fd)
{
	return std::make_unique<AdminConnection>(service, fd);
}

} // namespace director
