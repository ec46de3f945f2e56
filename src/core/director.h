// The director: a small façade over its parts. It owns the mail hosts and the user
// table and answers logins, notifies and admin commands; the lookup queue
// (lookup-queue.h), user moves and kicks (user-moves.h) and the ring (ring.h, with one
// ring-link.h per connection and the director list of director-list.h) are separate
// parts with their own state. Inputs carry `now`; outputs are Effects the adapter
// carries out. No I/O and no clock here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "director-types.h"
#include "host-list.h"
#include "ip-addr.h"
#include "lookup-queue.h"
#include "ring-protocol.h"
#include "ring.h"
#include "state-file.h"
#include "user-hash.h"
#include "user-moves.h"
#include "user-table.h"

namespace director::core {

class StateSnapshot;
class UserList;

// What restore_state() took from the file.
struct StateRestore {
	size_t users = 0;
	size_t expired = 0; // dropped: expired while the director was down
	size_t skipped = 0; // dropped: host or tag not in the file's host list
	size_t hosts = 0;
	std::vector<RingDirectorConfig> directors; // the ring's list when written
};

class Director final : private RingHandler, private UserMoves::Owner {
public:
	Director(DirectorConfig config, LogSink &log);

	const DirectorConfig &config() const { return config_; }

	// Startup, for a standalone director: the ring counts as synced from
	// `now` (stock reports this time in lookup timeout errors). ring_port is
	// our ring listener's port (0 if none), the default for DIRECTOR-ADD.
	void start_alone(Now now, uint16_t ring_port = 0) { ring_.start_alone(now, ring_port); }

	// The authenticated ring: with a secret, every ring connection must prove
	// it (ring-auth.h) before anything else is sent or accepted; `random` makes
	// the nonces and must outlive the Director. Call before ring_start().
	void set_ring_secret(std::string secret, RandomSource &random)
	{
		ring_.set_secret(std::move(secret), random);
	}

	// Startup: adds a host of director_mail_servers (already resolved) to
	// both the live list and the "Initial config" list.
	void add_config_host(const IpAddr &ip, std::string_view hostname, std::string_view tag);

	// --- login/director and director-userdb lookups ---------------------
	// Finds the host for `username` in `tag`. The answer comes through
	// fx.lookups, at once or after a delay (kill waiting, no hosts, ...).
	void lookup(RequestId id, std::string_view username, std::string_view tag, Now now,
		    Effects &fx);
	// Forgets a queued lookup whose connection went away.
	void cancel_lookup(RequestId id);
	size_t delayed_lookups() const { return lookups_.size(); }

	// --- proxy-notify ----------------------------------------------------
	// A login process still proxies `username`: refresh it in every tag.
	void notify_alive(std::string_view username, Now now, Effects &fx);

	// --- timers and completions -----------------------------------------
	// Expires users, times out lookups and moves, ends kick delays. Call
	// about once a second.
	void tick(Now now, Effects &fx);
	// When the first running director_user_kick_delay ends (Now::mono_msecs),
	// if one runs: kick delays are kept to the millisecond, as stock keeps
	// them, not rounded to the once-a-second tick.
	std::optional<int64_t> kick_delay_end_msecs() { return moves_.next_delay_end_msecs(); }
	// Ends the kick delays that are over (tick() does it too), and what waited
	// for them: delayed logins of those users, flush jobs' next moves.
	void end_kick_delays(Now now, Effects &fx) { moves_.end_delays(now, fx); }
	void kick_done(JobId id, bool ok, const std::string &error, Now now, Effects &fx);
	// Work left for when the event loop is idle: the expiry list's sort after a
	// ring handshake, put off so that the handshake's own lines go out first
	// (its SYNC then travels the ring while we sort). Anything that walks the
	// list in order sorts first; tick() does too. Nothing to send comes of it.
	bool idle_work_due() const { return users_.sort_due(); }
	void run_idle_work() { users_.sort_if_due(); }
	void flush_done(JobId id, bool ok, Now now, Effects &fx);

	// --- admin (director-admin) -----------------------------------------
	std::vector<HostListEntry> host_list() const;
	std::vector<IpAddr> hosts_removed_from_config() const;
	// Host changes: when the ring is up the reply comes after the ring has
	// synced (AdminReply::deferred(), answered through Effects::admin).
	AdminReply host_set(JobId job, const IpAddr &ip, std::string_view tag,
			    std::optional<unsigned> vhosts, bool update_only, Now now,
			    Effects &fx);
	AdminReply host_set_down(JobId job, const IpAddr &ip, bool down, Now now, Effects &fx);
	AdminReply host_remove(JobId job, const IpAddr &ip, Now now, Effects &fx);
	AdminReply host_flush(JobId job, std::optional<IpAddr> ip, Now now, Effects &fx);
	// Health checks (issue #7): the decider's down is a down and a flush in
	// one step; its up is a plain up. Both travel as the stock HOST and
	// HOST-FLUSH ring changes. false: the host is unknown, already in that
	// state, or still being synced (try again on a later tick).
	bool health_set_down(const IpAddr &ip, Now now, Effects &fx);
	bool health_set_up(const IpAddr &ip, Now now, Effects &fx);
	AdminReply host_reset_users(JobId job, std::optional<IpAddr> ip, unsigned max_parallel,
				    Now now, Effects &fx);
	UserLookup user_lookup(uint32_t user_hash, std::string_view tag, Now now);
	std::vector<UserListEntry> user_list(std::optional<IpAddr> ip) const;
	// USER-LIST streamed in pieces (user-list.h). It holds a cursor of the user
	// table: destroy it before the director.
	std::unique_ptr<UserList> user_listing(std::optional<IpAddr> ip);
	AdminReply user_move(uint32_t user_hash, const IpAddr &ip, Now now, Effects &fx);
	// USER-KICK / USER-KICK-ALT: kick_field empty for a plain kick.
	AdminReply user_kick(JobId job, std::string_view kick_field, std::string_view value,
			     bool nowait, Effects &fx);
	// An admin connection went away: drop its queued kicks; a running
	// reset-users continues without a reply.
	void admin_gone(JobId job);

	// --- the ring (ring.h) --------------------------------------------------
	// Startup with peers: `directors` is director_servers (self included),
	// self is (self_ip, self_port). Starts connecting to our right.
	void ring_start(const std::vector<RingDirectorConfig> &directors, const IpAddr &self_ip,
			uint16_t self_port, Now now, Effects &fx);
	// A director connected to our ring listener from `remote`; 0 = refused
	// (not listed, or removed): the adapter closes the socket.
	RingConnId ring_accept(const IpAddr &remote, Now now, Effects &fx);
	// An outgoing connection was established.
	void ring_connected(RingConnId id, Now now, Effects &fx);
	// One line (without LF) from a ring connection.
	void ring_line(RingConnId id, std::string_view line, Now now, Effects &fx);
	// A ring connection is gone (EOF, error, connect failure, or a close we
	// asked for). No more Effects are produced for it.
	void ring_closed(RingConnId id, const std::string &reason, Now now, Effects &fx);
	// The process is stopping: every peer gets a QUIT with the reason.
	void ring_shutdown(Now now, Effects &fx);
	// The adapter's output buffer of `id` is nearly empty again.
	void ring_drained(RingConnId id, Now now, Effects &fx);
	bool ring_wants_drain(RingConnId id) const { return ring_.wants_drain(id); }
	// Users a ring connection sent and received so far (for its
	// director_ring_disconnected event); nullopt once it is swept.
	std::optional<RingUserCounts> ring_user_counts(RingConnId id) const
	{
		return ring_.user_counts(id);
	}
	// Checked by the adapter before sending: an output buffer over
	// director_output_buffer_size closes the connection.
	bool ring_mode() const { return ring_.mode(); }
	// Ring connections the core still tracks (closed ones included until
	// the next tick sweeps them).
	size_t ring_connection_count() const { return ring_.connection_count(); }

	// A health decider's heartbeat: a stock SYNC we originate while the ring
	// is synced. Unlike a change it does not mark the ring unsynced, so
	// lookups are not delayed. false when not sent (alone, not synced).
	bool ring_heartbeat(Now now, Effects &fx);
	// When a SYNC originated by that director last passed us (our clock);
	// 0 = never, or unknown director.
	int64_t director_last_sync_seen(const IpAddr &ip, uint16_t port) const;

	std::vector<DirectorListEntry> director_list(Now now) const;
	AdminReply director_add(const IpAddr &ip, std::optional<uint16_t> port, Now now,
				Effects &fx);
	AdminReply director_remove(JobId job, const IpAddr &ip, std::optional<uint16_t> port,
				   Now now, Effects &fx);
	// Pre-sync admin commands: true when the command may run now; otherwise
	// `job` is resumed through Effects::admin_resume once the ring syncs.
	bool admin_may_run(JobId job);

	// The user hash as this director computes it.
	uint32_t user_hash(std::string_view username) const
	{
		return config_.username_hash.hash(username);
	}

	// --- the state file (state-file.h) -------------------------------------
	// Startup, after add_config_host() and before start_alone()/ring_start(): the
	// file's host list replaces the configured one, and its users that have not
	// expired by `now` are added with their stored timestamps (weak flags are not
	// restored). In ring mode the restored users go out in the ring handshake
	// only if the ring restarted too (see Ring::hold_user_streams()).
	StateRestore restore_state(const StateFile &file, Now now);
	// A snapshot of the current state for the state file, streamed in pieces. It
	// holds a cursor of the user table: destroy it before the director.
	std::unique_ptr<StateSnapshot> state_snapshot(const std::array<uint8_t, 16> &identity,
						      Now now);

	// --- state for the admin and the process title ------------------------
	bool ring_synced() const { return ring_.synced(); }
	bool ring_handshaked() const { return ring_.handshaked(); }
	size_t user_count() const { return users_.size(); }
	// Open user table cursors (user streams, snapshots, USER-LIST replies).
	size_t user_cursors_open() const { return users_.open_cursors(); }
	size_t users_moving() const { return moves_.users_moving(); }
	size_t users_kicking() const { return moves_.users_kicking(); }
	const HostList &hosts() const { return hosts_; }

private:
	// RingHandler (director-ring-users.cc)
	void ring_change(RingLink &from, const RingCommand &cmd, bool reoriginated, Now now,
			 Effects &fx) override;
	bool ring_repair_user(RingLink &from, uint32_t hash, const IpAddr &ip, int64_t timestamp,
			      Now now, Effects &fx) override;
	void ring_user_weak(RingLink &from, const RingCommand &cmd, bool seen, bool own,
			    Now now, Effects &fx) override;
	void ring_handshake_host(RingLink &from, const RingCommand &cmd, Now now,
				 Effects &fx) override;
	void ring_handshake_user(RingLink &from, uint32_t hash, HostId host, int64_t timestamp,
				 bool weak, Now now, Effects &fx) override;
	void ring_joining(Now now) override;
	size_t ring_joining_delta(const std::vector<const RingCommand *> &hosts,
				  const UserDigestBuckets &replace, Now now) override;
	void ring_resend_hosts(Now now, Effects &fx) override;
	void ring_synced(Now now, Effects &fx) override;
	void ring_state_changed(Now now, Effects &fx) override;
	// UserMoves::Owner
	void moves_ended(Now now, Effects &fx) override { retry_pending(now, fx); }
	void flush_host(HostId id, Now now, Effects &fx) override;

	// ring side of users and hosts (director-ring-users.cc)
	// USER refresh from a peer (stock director_user_refresh): returns -1 when ignored
	// as expired, else whether anything changed. `from` names the peer in the log
	// line of a conflict only (its name is not built per user).
	int user_refresh(const RingLink &from, uint32_t hash, HostId host, int64_t timestamp,
			 bool weak, bool unknown_timestamp, Now now, bool &forced_r,
			 UserIndex &user_r, Effects &fx);
	void broadcast_user(const DirectorHost *src, UserIndex u, Effects &fx);
	// A USER update from a peer (timestamp nullopt: a pre-timestamp peer's):
	// refreshed, and passed on when it changed something. True when it did.
	bool apply_ring_user(RingLink &from, uint32_t hash, const IpAddr &ip,
			     std::optional<int64_t> timestamp, Now now, Effects &fx);
	void send_host(const DirectorHost *src, std::optional<RingOrigin> origin, HostId host,
		       Now now, Effects &fx);
	void apply_host(RingLink *c, const RingCommand &cmd, bool handshake, Now now,
			Effects &fx);

	// users and lookups (director.cc)
	bool near_expiring(UserIndex u, Now now) const;
	bool recently_updated(UserIndex u, Now now) const;
	UserIndex find_live_user(uint32_t hash, TagId tag, Now now);
	bool expired(UserIndex u, Now now) const;
	bool try_lookup(PendingLookup &req, Now now, Effects &fx);
	void retry_pending(Now now, Effects &fx);
	std::string timeout_error(const PendingLookup &req, Now now);
	void host_changed(HostId id, Now now, Effects &fx);
	size_t erase_users_of_host(HostId host) { return users_.erase_host(host); }
	void refresh_user(UserIndex u, Now now) { users_.refresh(u, static_cast<uint32_t>(now.wall)); }

	DirectorConfig config_;
	LogSink &log_;
	HostList hosts_;
	HostList config_hosts_;
	UserTable users_; // before ring_: ring links hold cursors into it
	LookupQueue lookups_;
	Ring ring_;
	UserMoves moves_;
	bool restored_ = false; // restore_state() ran: ring_start() holds user streams
};

} // namespace director::core
