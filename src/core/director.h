// The director's state machine: mail hosts, the user table, login lookups and
// their delay queue, user moves with their kill states, kicks, flushes and
// expiry. Inputs carry `now`; outputs are Effects the adapter carries out
// (answers to lookups, ipc kick commands, flush programs, deferred admin
// replies). No I/O and no clock here.
//
// This is the single-director core: the ring (issue #4) plugs in where the
// comments say "ring", by turning local changes into ring broadcasts.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "host-list.h"
#include "ip-addr.h"
#include "ring-protocol.h"
#include "user-hash.h"
#include "user-table.h"

namespace director::core {

enum class LogLevel { debug, info, warning, error };

// Where the core reports what an operator should see. The adapter maps it to
// Dovecot events; tests record it.
class LogSink {
public:
	virtual ~LogSink() = default;
	virtual void log(LogLevel level, const std::string &message) = 0;
};

struct DirectorConfig {
	uint32_t user_expire_secs = 15 * 60;
	uint32_t user_kick_delay_secs = 2;
	unsigned max_parallel_moves = 100;
	unsigned max_parallel_kicks = 100;
	uint32_t ping_idle_timeout_secs = 30;
	uint32_t ping_max_timeout_secs = 60;
	UsernameHash username_hash;
	bool flush_program_set = false; // director_flush_socket is non-empty
};

// Stock timing constants (ring-protocol.md §8).
constexpr int64_t request_timeout_secs = 30;
constexpr int64_t request_delay_warning_secs = 2;
constexpr int64_t user_move_timeout_secs = 30;
constexpr int64_t weak_user_stuck_extra_secs = 30;

using RequestId = uint64_t;
using JobId = uint64_t; // an ipc command, a flush program or an admin wait
// A TCP connection to another director, numbered by the core.
using RingConnId = uint64_t;

// Ring timing (ring-protocol.md §8), and where we are stricter than stock.
constexpr int64_t ring_connect_timeout_secs = 10;
constexpr int64_t ring_me_timeout_secs = 10;
constexpr int64_t ring_handshake_send_timeout_secs = 30;
constexpr int64_t ring_handshake_done_timeout_secs = 40;
constexpr int64_t ring_failure_retry_secs = 60;
constexpr int64_t ring_short_connection_secs = 40;
constexpr int64_t ring_min_wait_alone_secs = 20;
constexpr int64_t ring_sync_resend_secs = 5;
constexpr int64_t ring_sync_stale_restart_secs = 120;
constexpr unsigned ring_sync_max_duplicates = 4;
constexpr int64_t ring_preferred_reconnect_secs = 30;
constexpr int64_t ring_connect_sent_wait_secs = 10;
constexpr int64_t removed_director_purge_secs = 30;
// Stock pings after 15 s of silence and gives a peer 30 s more. A hung peer
// (SIGSTOP) then stalls logins for ~45 s; we ping after 2 s of silence and
// drop a peer that says nothing for 4 s after our PING (capped by
// director_ping_idle_timeout), so one is dropped within ~7 s while a pause
// of a few seconds is survived.
constexpr int64_t ring_ping_interval_secs = 2;
constexpr int64_t ring_ping_idle_timeout_secs = 4;
constexpr size_t ring_handshake_users_per_batch = 10000;

// A mail host as given to a login: its IP and, when it has one, its name.
struct HostAnswer {
	IpAddr ip;
	std::string hostname;
};

struct Effects {
	struct LookupDone {
		RequestId id;
		std::optional<HostAnswer> host; // nullopt: failed, see error
		std::string error;
	};
	// A command for the ipc service: "proxy\t*\tKICK...". Report its end
	// with Director::ipc_done(id, ...).
	struct IpcCommand {
		JobId id;
		std::string line;
	};
	// Run director_flush_socket with these arguments; report with
	// Director::flush_done(id, ...).
	struct FlushProgram {
		JobId id;
		IpAddr new_host_ip;
		std::string new_host_name;
		std::vector<std::string> args;
	};
	// A deferred reply to an admin command that returned AdminReply::later.
	struct AdminDone {
		JobId id;
		std::string reply;
	};
	// Open a TCP connection to another director; report with
	// Director::ring_connected() or ring_closed().
	struct RingConnect {
		RingConnId id;
		IpAddr ip;
		uint16_t port;
	};
	// Lines (each ending in LF) for a ring connection.
	struct RingSend {
		RingConnId id;
		std::string data;
	};
	// Close a ring connection (after flushing what was queued for it).
	struct RingClose {
		RingConnId id;
		std::string reason;
	};
	std::vector<LookupDone> lookups;
	std::vector<IpcCommand> ipc;
	std::vector<FlushProgram> flushes;
	std::vector<AdminDone> admin;
	std::vector<RingConnect> ring_connects;
	std::vector<RingSend> ring_sends;
	std::vector<RingClose> ring_closes;
	// Admin commands that waited for the ring to sync may run now.
	std::vector<JobId> admin_resume;

	bool empty() const
	{
		return lookups.empty() && ipc.empty() && flushes.empty() && admin.empty() &&
		       ring_connects.empty() && ring_sends.empty() && ring_closes.empty() &&
		       admin_resume.empty();
	}
};

// An admin command's reply: a line now, or later through Effects::admin with
// the JobId the caller passed in.
struct AdminReply {
	bool later = false;
	std::string line;
	static AdminReply now(std::string line) { return AdminReply{false, std::move(line)}; }
	static AdminReply deferred() { return AdminReply{true, {}}; }
};

struct UserLookup {
	std::optional<IpAddr> current;
	int64_t expire_time = 0;
	std::optional<IpAddr> hashed;
	std::optional<IpAddr> initial_config;
};

struct UserListEntry {
	uint32_t user_hash;
	int64_t expire_time;
	IpAddr host;
};

// One line of DIRECTOR-LIST (doveadm director ring status).
struct DirectorListEntry {
	std::optional<IpAddr> ip; // nullopt: incoming connection before ME
	uint16_t port = 0;
	std::string type; // left, right, in, out; or removed, self, ""
	int64_t last_failed = 0;
	bool has_connection = false;
	std::string status; // connection status, or the ring status on the self line
	uint32_t last_ping_msecs = 0; // self line: last sync round trip
	uint64_t bytes_read = 0, bytes_sent = 0;
	int64_t last_input = 0, last_output = 0;
	RingConnId conn = 0; // for the adapter's byte counters
};

// A director of director_servers (or added at runtime).
struct RingDirectorConfig {
	IpAddr ip;
	uint16_t port;
};

struct HostListEntry {
	IpAddr ip;
	unsigned vhost_count;
	size_t user_count;
	std::string tag;
	bool down;
	int64_t last_updown_change;
};

class Director {
public:
	Director(DirectorConfig config, LogSink &log);

	const DirectorConfig &config() const { return config_; }

	// Startup, for a standalone director: the ring counts as synced from
	// `now` (stock reports this time in lookup timeout errors). ring_port is
	// our ring listener's port (0 if none), the default for DIRECTOR-ADD.
	void start_alone(int64_t now, uint16_t ring_port = 0)
	{
		ring_last_sync_time_ = now;
		ring_listen_port_ = ring_port;
	}

	// Startup: adds a host of director_mail_servers (already resolved) to
	// both the live list and the "Initial config" list.
	void add_config_host(const IpAddr &ip, std::string_view hostname, std::string_view tag);

	// --- login/director and director-userdb lookups ---------------------
	// Finds the host for `username` in `tag`. The answer comes through
	// fx.lookups, at once or after a delay (kill waiting, no hosts, ...).
	void lookup(RequestId id, std::string_view username, std::string_view tag, int64_t now,
		    Effects &fx);
	// Forgets a queued lookup whose connection went away.
	void cancel_lookup(RequestId id);
	size_t delayed_lookups() const { return pending_.size(); }

	// --- proxy-notify ----------------------------------------------------
	// A login process still proxies `username`: refresh it in every tag.
	void notify_alive(std::string_view username, int64_t now, Effects &fx);

	// --- timers and completions -----------------------------------------
	// Expires users, times out lookups and moves, ends kick delays. Call
	// about once a second.
	void tick(int64_t now, Effects &fx);
	void ipc_done(JobId id, bool ok, const std::string &error, int64_t now, Effects &fx);
	void flush_done(JobId id, bool ok, int64_t now, Effects &fx);

	// --- admin (director-admin) -----------------------------------------
	std::vector<HostListEntry> host_list() const;
	std::vector<IpAddr> hosts_removed_from_config() const;
	// Host changes: when the ring is up the reply comes after the ring has
	// synced (AdminReply::deferred(), answered through Effects::admin).
	AdminReply host_set(JobId job, const IpAddr &ip, std::string_view tag,
			    std::optional<unsigned> vhosts, bool update_only, int64_t now,
			    Effects &fx);
	AdminReply host_set_down(JobId job, const IpAddr &ip, bool down, int64_t now, Effects &fx);
	AdminReply host_remove(JobId job, const IpAddr &ip, int64_t now, Effects &fx);
	AdminReply host_flush(JobId job, std::optional<IpAddr> ip, int64_t now, Effects &fx);
	// Health checks (issue #7): the decider's down is a down and a flush in
	// one step; its up is a plain up. Both travel as the stock HOST and
	// HOST-FLUSH ring changes. false: the host is unknown, already in that
	// state, or still being synced (try again on a later tick).
	bool health_set_down(const IpAddr &ip, int64_t now, Effects &fx);
	bool health_set_up(const IpAddr &ip, int64_t now, Effects &fx);
	AdminReply host_reset_users(JobId job, std::optional<IpAddr> ip, unsigned max_parallel,
				    int64_t now, Effects &fx);
	UserLookup user_lookup(uint32_t user_hash, std::string_view tag, int64_t now);
	std::vector<UserListEntry> user_list(std::optional<IpAddr> ip) const;
	AdminReply user_move(uint32_t user_hash, const IpAddr &ip, int64_t now, Effects &fx);
	// USER-KICK / USER-KICK-ALT: kick_field empty for a plain kick.
	AdminReply user_kick(JobId job, std::string_view kick_field, std::string_view value,
			     bool nowait, Effects &fx);
	// An admin connection went away: drop its queued kicks; a running
	// reset-users continues without a reply.
	void admin_gone(JobId job);

	// --- the ring (director-ring.cc) ------------------------------------
	// Startup with peers: `directors` is director_servers (self included),
	// self is (self_ip, self_port). Starts connecting to our right.
	void ring_start(const std::vector<RingDirectorConfig> &directors, const IpAddr &self_ip,
			uint16_t self_port, int64_t now, Effects &fx);
	// A director connected to our ring listener from `remote`; 0 = refused
	// (not listed, or removed): the adapter closes the socket.
	RingConnId ring_accept(const IpAddr &remote, int64_t now, Effects &fx);
	// An outgoing connection was established.
	void ring_connected(RingConnId id, int64_t now, Effects &fx);
	// One line (without LF) from a ring connection.
	void ring_line(RingConnId id, std::string_view line, int64_t now, Effects &fx);
	// A ring connection is gone (EOF, error, connect failure, or a close we
	// asked for). No more Effects are produced for it.
	void ring_closed(RingConnId id, const std::string &reason, int64_t now, Effects &fx);
	// The process is stopping: every peer gets a QUIT with the reason.
	void ring_shutdown(int64_t now, Effects &fx);
	// The adapter's output buffer of `id` is nearly empty again.
	void ring_drained(RingConnId id, int64_t now, Effects &fx);
	bool ring_wants_drain(RingConnId id) const;
	// Checked by the adapter before sending: an output buffer over
	// director_output_buffer_size closes the connection.
	bool ring_mode() const { return ring_mode_; }
	// Ring connections the core still tracks (closed ones included until
	// the next tick sweeps them).
	size_t ring_connection_count() const { return conns_.size(); }

	// A health decider's heartbeat: a stock SYNC we originate while the ring
	// is synced. Unlike a change it does not mark the ring unsynced, so
	// lookups are not delayed. false when not sent (alone, not synced).
	bool ring_heartbeat(int64_t now, Effects &fx);
	// When a SYNC originated by that director last passed us (our clock);
	// 0 = never, or unknown director.
	int64_t director_last_sync_seen(const IpAddr &ip, uint16_t port) const;

	std::vector<DirectorListEntry> director_list(int64_t now) const;
	AdminReply director_add(const IpAddr &ip, std::optional<uint16_t> port, int64_t now,
				Effects &fx);
	AdminReply director_remove(JobId job, const IpAddr &ip, std::optional<uint16_t> port,
				   int64_t now, Effects &fx);
	// Pre-sync admin commands: true when the command may run now; otherwise
	// `job` is resumed through Effects::admin_resume once the ring syncs.
	bool admin_may_run(JobId job);

	// The user hash as this director computes it.
	uint32_t user_hash(std::string_view username) const
	{
		return config_.username_hash.hash(username);
	}

	// --- state for the admin and the process title ------------------------
	bool ring_synced() const { return ring_synced_; }
	bool ring_handshaked() const { return ring_handshaked_; }
	size_t user_count() const { return users_.size(); }
	size_t users_moving() const { return kills_.size(); }
	size_t users_kicking() const { return kicking_; }
	const HostList &hosts() const { return hosts_; }

private:
	enum class DelayReason { none, ring_not_handshaked, ring_not_synced, no_hosts, weak, kill };
	enum class KillState { killing, killing_notify_received, killed_waiting_for_notify,
			       killed_waiting_for_everyone, flushing, delay };
	struct Pending {
		RequestId id;
		uint32_t user_hash;
		std::string tag;
		int64_t created;
		DelayReason reason;
	};
	struct KillContext {
		KillState state = KillState::killing;
		bool self_initiated = false;
		std::optional<IpAddr> old_host_ip;
		bool old_host_down = false;
		unsigned old_host_vhosts = 0;
		int64_t started = 0;
		int64_t delay_until = 0;
		JobId job = 0; // the running ipc kick or flush program
	};
	enum class JobKind { kill_kick, admin_kick, flush };
	struct Job {
		JobKind kind;
		uint64_t user_key; // kill_kick / flush
	};
	struct QueuedKick {
		JobId admin_job;
		std::string field, value;
	};
	struct ResetJob {
		JobId admin_job;
		bool admin_present = true;
		std::vector<IpAddr> hosts;
		size_t host_idx = 0;
		std::vector<uint32_t> users; // hashes on hosts[host_idx], snapshot
		size_t user_idx = 0;
		bool snapshot_taken = false;
		bool users_killed = false;
		unsigned max_parallel;
		unsigned moved = 0;
		int64_t started;
	};

	struct DirectorHost {
		IpAddr ip;
		uint16_t port = 0;
		bool self = false;
		bool removed = false;
		int64_t removed_at = 0;
		uint32_t last_seq = 0;
		uint32_t last_sync_seq = 0;
		int64_t last_sync_timestamp = 0;
		int64_t last_sync_seen = 0; // our clock, for health heartbeats
		unsigned sync_duplicates = 0;
		std::optional<uint32_t> bad_hosts_hash; // first wrong SYNC hosts_hash seen
		int64_t last_network_failure = 0;
		int64_t last_protocol_failure = 0;
		std::optional<RingCommand> delayed_sync;
		// When we last sent a DIRECTOR line for it (-1: never). Within
		// the same second it is not forwarded again, which ends the
		// DIRECTOR storms that extra connections (directors joining at
		// once) would otherwise loop forever; stock forwards every time.
		int64_t director_sent_at = -1;
		std::string name() const { return ip.to_string() + ":" + std::to_string(port); }
	};
	struct RingConn {
		RingConnId id = 0;
		bool incoming = false;
		IpAddr remote_ip;
		DirectorHost *host = nullptr; // known after ME (incoming), at connect (outgoing)
		RingParseContext pctx;
		bool tcp_connected = false;
		bool ignore_host_list = false;
		bool handshake_sent = false; // outgoing: host list, users and DONE queued
		bool done_received = false;
		bool handshaked = false;
		bool synced = false;
		bool verifying_left = false;
		bool connect_sent = false;
		int64_t connect_sent_at = 0;
		int64_t close_at = 0; // after an ignored CONNECT
		unsigned users_received = 0;
		unsigned users_sent = 0;
		bool sending_users = false;
		UserIndex send_next = no_user;
		UserIndex send_last = no_user;
		bool want_drain = false;
		bool users_unsorted = false;
		int64_t created = 0;
		int64_t last_input = 0;
		int64_t last_output = 0;
		bool ping_pending = false;
		int64_t ping_sent_at = 0;
		uint32_t last_ping_msecs = 0;
		bool closing = false;
		// handshake fast path: the last U line's host, by text
		std::string hs_ip_text;
		HostId hs_host = invalid_host;
		uint64_t hs_hosts_generation = 0;
		// handshake sending: host id -> address text, valid for one
		// generation of host ids
		std::vector<std::string> send_ip_text;
		uint64_t send_ip_generation = 0;
	};
	struct SyncWaiter {
		JobId job;
		int64_t deadline;
	};

	// ring helpers (director-ring.cc)
	DirectorHost *find_director(const IpAddr &ip, uint16_t port) const;
	DirectorHost *add_director(const IpAddr &ip, uint16_t port);
	size_t director_index(const DirectorHost *h) const;
	int cmp_to_self(const DirectorHost *a, const DirectorHost *b) const;
	DirectorHost *preferred_right() const;
	RingConn *conn(RingConnId id);
	bool alone() const { return left_ == 0 && right_ == 0; }
	void connect_right(int64_t now, Effects &fx);
	bool connect_to(DirectorHost *h, int64_t now, Effects &fx);
	void send(RingConn &c, const RingCommand &cmd, Effects &fx);
	void send_raw(RingConn &c, std::string line, Effects &fx);
	// Sends to every connection but those to `src` (stock's "update send").
	void update_send(const DirectorHost *src, const RingCommand &cmd, Effects &fx,
			 unsigned min_minor = 0);
	RingOrigin next_origin();
	void close_conn(RingConn &c, const std::string &reason, int64_t now, Effects &fx,
			bool protocol_failure = false);
	void conn_gone(RingConnId id, int64_t now, Effects &fx);
	void handle_ring_command(RingConn &c, const RingCommand &cmd, int64_t now, Effects &fx);
	bool handle_handshake_command(RingConn &c, const RingCommand &cmd, int64_t now,
				      Effects &fx);
	bool check_origin(RingConn &c, const RingOrigin &origin, bool &reoriginate_r);
	void send_handshake_start(RingConn &c, int64_t now, Effects &fx);
	void send_handshake_rest(RingConn &c, int64_t now, Effects &fx);
	void continue_user_stream(RingConn &c, int64_t now, Effects &fx);
	void stream_fixup(UserIndex u);
	void handshake_done(RingConn &c, int64_t now, Effects &fx);
	void handshake_user(RingConn &c, uint32_t hash, HostId host, int64_t timestamp, bool weak,
			    int64_t now, Effects &fx);
	void assign_left(RingConn &c, int64_t now, Effects &fx);
	void assign_right(RingConn &c, int64_t now, Effects &fx);
	void promote_left(int64_t now, Effects &fx);
	void ring_sync(int64_t now, Effects &fx);
	void sync_send(const DirectorHost &origin, uint32_t seq, uint32_t minor, uint32_t timestamp,
		       uint32_t hosts_hash, int64_t now, Effects &fx);
	void set_ring_synced(int64_t now, Effects &fx);
	void set_ring_unsynced(int64_t now);
	void set_ring_handshaked(int64_t now, Effects &fx);
	void handle_sync(RingConn &c, const RingCommand &cmd, int64_t now, Effects &fx);
	void ping(RingConn &c, int64_t now, Effects &fx);
	void ring_tick(int64_t now, Effects &fx);
	void state_changed(int64_t now, Effects &fx);
	void purge_removed_directors(int64_t now);
	AdminReply reply_after_sync(JobId job, int64_t now);
	void reset_director_state(DirectorHost &h);

	// ring-side user and host updates
	// USER refresh from a peer (stock director_user_refresh): returns -1
	// when ignored as expired, else whether anything changed.
	int user_refresh(RingConn &c, uint32_t hash, HostId host, int64_t timestamp, bool weak,
			 bool unknown_timestamp, int64_t now, bool &forced_r, UserIndex &user_r,
			 Effects &fx);
	void broadcast_user(const DirectorHost *src, UserIndex u, Effects &fx);
	void send_host(const DirectorHost *src, std::optional<RingOrigin> origin, HostId host,
		       int64_t now, Effects &fx);
	void apply_host(RingConn *c, const RingCommand &cmd, bool handshake, int64_t now,
			Effects &fx);
	void kick_user_hash(uint32_t hash, const IpAddr &except, Effects &fx);
	bool near_expiring(UserIndex u, int64_t now) const;
	bool recently_updated(UserIndex u, int64_t now) const;
	void user_killed(uint32_t hash, int64_t now, Effects &fx);
	void user_killed_everywhere(const DirectorHost *src, const RingOrigin &origin, uint32_t hash,
				    int64_t now, Effects &fx);
	void move_user_from(const DirectorHost *src, std::optional<RingOrigin> origin, uint32_t hash,
			    HostId host, int64_t now, Effects &fx);

	static uint64_t user_key(uint32_t hash, TagId tag) { return uint64_t(tag) << 32 | hash; }
	UserIndex find_live_user(uint32_t hash, TagId tag, int64_t now);
	bool expired(UserIndex u, int64_t now) const;
	bool try_lookup(Pending &req, int64_t now, Effects &fx);
	void retry_pending(int64_t now, Effects &fx);
	void erase_user(UserIndex u);
	void host_changed(HostId id, int64_t now, Effects &fx);
	void flush_host(HostId id, int64_t now, Effects &fx);
	size_t erase_users_of_host(HostId host);
	void refresh_user(UserIndex u, int64_t now);

	void move_user(uint32_t hash, HostId host, int64_t now, Effects &fx);
	void kill_user(UserIndex u, std::optional<HostId> old_host, bool forced, int64_t now,
		       Effects &fx);
	void finish_user_kill(uint64_t key, int64_t now, Effects &fx);
	void flush_killed_user(uint64_t key, int64_t now, Effects &fx);
	void finish_kill_delayed(uint64_t key, bool skip_delay, int64_t now, Effects &fx);
	void free_kill(uint64_t key, int64_t now, Effects &fx);
	void start_admin_kick(const QueuedKick &kick, Effects &fx);
	void run_queued_kicks(Effects &fx);
	void run_reset_jobs(int64_t now, Effects &fx);
	bool run_reset_job(ResetJob &job, int64_t now, Effects &fx);
	JobId new_job(JobKind kind, uint64_t user_key);
	std::string timeout_error(const Pending &req, int64_t now);

	DirectorConfig config_;
	LogSink &log_;
	HostList hosts_;
	HostList config_hosts_;
	UserTable users_;
	std::deque<Pending> pending_;
	int64_t pending_warned_at_ = 0;
	std::unordered_map<uint64_t, KillContext> kills_;
	std::unordered_map<JobId, Job> jobs_;
	JobId next_job_ = 1;
	size_t kicking_ = 0;
	std::deque<QueuedKick> queued_kicks_;
	std::vector<ResetJob> resets_;
	int64_t ring_last_sync_time_ = 0;

	// ring state (director-ring.cc); a standalone director stays alone
	bool ring_mode_ = false;
	bool shutting_down_ = false;
	uint16_t ring_listen_port_ = 0;
	std::vector<std::unique_ptr<DirectorHost>> dirs_; // sorted by ip, port
	DirectorHost *self_ = nullptr;
	std::map<RingConnId, RingConn> conns_;
	RingConnId next_conn_ = 1;
	RingConnId left_ = 0;
	RingConnId right_ = 0;
	bool ring_handshaked_ = true;
	bool ring_synced_ = true;
	uint32_t sync_seq_ = 0;
	unsigned ring_min_version_ = ring_version_minor;
	uint64_t ring_change_counter_ = 0;
	uint64_t last_sync_sent_change_counter_ = 0;
	int64_t last_sync_start_ = 0;
	uint32_t last_sync_msecs_ = 0;
	int64_t ring_first_alone_ = 0;
	int64_t reconnect_at_ = 0;
	int64_t preferred_reconnect_at_ = 0;
	int64_t sync_resend_at_ = 0;
	int64_t last_sync_resend_ = 0;
	std::vector<SyncWaiter> sync_waiters_;
	std::vector<JobId> presync_waiters_;
};

} // namespace director::core
