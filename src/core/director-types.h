// The types the director's parts share: configuration, timing constants, and the
// Effects every input returns (lookup answers, kicks, flush programs, admin
// replies, ring connections and lines). No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ip-addr.h"
#include "now.h"
#include "kick.h"
#include "settings-table.h"
#include "user-hash.h"

namespace director::core {

enum class LogLevel { debug, info, warning, error };

// Where the core reports what an operator should see. The adapter maps it to
// Dovecot events; tests record it.
// What a log line is about besides its text. The adapter adds each field that is
// set to the line's event, so event filters and metric {} blocks can select on them
// (for example every error about one ring peer).
struct LogFields {
	std::string peer; // a ring connection, as in stock's "director(<peer>): " prefix
	std::optional<uint32_t> user_hash;
	std::optional<IpAddr> host;

	static LogFields user(uint32_t user_hash)
	{
		LogFields f;
		f.user_hash = user_hash;
		return f;
	}
	static LogFields mail_host(const IpAddr &ip)
	{
		LogFields f;
		f.host = ip;
		return f;
	}
};

class LogSink {
public:
	virtual ~LogSink() = default;
	virtual void log(LogLevel level, const std::string &message) = 0;
	// A line with fields. A sink that keeps no fields logs the text alone.
	virtual void log_with(LogLevel level, const std::string &message, const LogFields &fields)
	{
		(void)fields;
		log(level, message);
	}
	// A line about a ring peer, in stock's words: "director(<peer>): <text>".
	void peer(LogLevel level, const std::string &peer, const std::string &text)
	{
		LogFields fields;
		fields.peer = peer;
		log_with(level, "director(" + peer + "): " + text, fields);
	}
};

// The defaults are the settings' (settings-table.h).
struct DirectorConfig {
	uint32_t user_expire_secs = setting_default::director_user_expire;
	uint32_t user_kick_delay_secs = setting_default::director_user_kick_delay;
	unsigned max_parallel_moves = setting_default::director_max_parallel_moves;
	unsigned max_parallel_kicks = setting_default::director_max_parallel_kicks;
	uint32_t ping_idle_timeout_secs = setting_default::director_ping_idle_timeout;
	uint32_t ping_max_timeout_secs = setting_default::director_ping_max_timeout;
	UsernameHash username_hash; // director_username_hash's default
	bool flush_program_set = false; // director_flush_socket is non-empty
	// The most users the table holds; lookups of new users beyond it fail.
	size_t max_users = size_t{1} << 27;
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
// Ring changes a connection may send before its handshake finished; they are
// held until DONE. Stock interleaves a few broadcasts with its handshake; a
// peer sending more is not a director.
constexpr size_t ring_max_deferred_commands = 10000;
// Handshake users held until DONE (12 bytes each).
constexpr size_t ring_max_deferred_users = size_t(1) << 24;

// A time a peer sent (unix seconds): bounded to what the protocol can carry (stock
// keeps them in 32 bits), so arithmetic on it cannot overflow and a far-future value
// cannot pin a user forever.
inline int64_t bound_peer_time(int64_t t)
{
	return t < 0 ? 0 : t > int64_t(UINT32_MAX) ? int64_t(UINT32_MAX) : t;
}

// A mail host as given to a login: its IP and, when it has one, its name.
struct HostAnswer {
	IpAddr ip;
	std::string hostname;
};

// Users a ring connection sent and received in handshakes and user streams
// (USER lines of single logins not included).
struct RingUserCounts {
	uint64_t sent = 0;
	uint64_t received = 0;
};

// What an admin command that changes something came to. The admin codec words it
// for doveadm (admin_result_line(): OK, NOTFOUND, TRYAGAIN or the stock error text).
enum class AdminResult {
	ok,
	not_found,
	try_again,		 // the user is being moved or kicked already
	vhost_count_too_large,
	too_many_tags,
	too_many_hosts,
	tag_cant_change,
	host_being_updated,	 // the host's previous change has not gone around the ring
	director_list_full,
	ring_sync_timeout,
};

struct Effects {
	struct LookupDone {
		RequestId id;
		std::optional<HostAnswer> host; // nullopt: failed, see error
		std::string error;
	};
	// End sessions in the login processes (kick.h). Report its end with
	// Director::kick_done(id, ...).
	struct KickCommand {
		JobId id;
		Kick kick;
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
		AdminResult result;
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
	std::vector<KickCommand> kicks;
	std::vector<FlushProgram> flushes;
	std::vector<AdminDone> admin;
	std::vector<RingConnect> ring_connects;
	std::vector<RingSend> ring_sends;
	std::vector<RingClose> ring_closes;
	// A ring connection finished its handshake (DONE both ways), with the
	// users it sent and received in it. Only reported, nothing to run.
	struct RingHandshaked {
		RingConnId id;
		RingUserCounts users;
	};
	std::vector<RingHandshaked> ring_handshakes;
	// A host's users were forgotten (HOST-FLUSH): by doveadm director flush,
	// a health check or a move job here (from_ring false), or by a flush
	// learned from a peer (from_ring true). Only reported, nothing to run.
	struct HostFlushed {
		IpAddr ip;
		std::string tag;
		unsigned vhosts;
		bool from_ring;
	};
	std::vector<HostFlushed> host_flushes;
	// A user was moved to another backend: by doveadm director move here
	// (admin), by a USER-MOVE from a peer (ring), or by a graceful flush
	// (flush). host_from is unset when this director did not know the
	// user. Only reported, nothing to run.
	enum class MoveReason { admin, ring, flush };
	struct UserMoved {
		uint32_t user_hash;
		std::string tag;
		std::optional<IpAddr> host_from;
		IpAddr host_to;
		MoveReason reason;
	};
	std::vector<UserMoved> user_moves;
	// Admin commands that waited for the ring to sync may run now.
	std::vector<JobId> admin_resume;

	bool empty() const
	{
		return lookups.empty() && kicks.empty() && flushes.empty() && admin.empty() &&
		       ring_connects.empty() && ring_sends.empty() && ring_closes.empty() &&
		       admin_resume.empty() && host_flushes.empty() &&
		       user_moves.empty() && ring_handshakes.empty();
	}
};

// An admin command's reply: a result now, or later through Effects::admin with
// the JobId the caller passed in.
struct AdminReply {
	bool later = false;
	AdminResult result = AdminResult::ok;
	static AdminReply now(AdminResult r) { return AdminReply{false, r}; }
	static AdminReply deferred() { return AdminReply{true, AdminResult::ok}; }
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

} // namespace director::core
