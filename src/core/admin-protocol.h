// The director-admin (doveadm) protocol: handshake, command parsing and reply-line
// formatting. Pure functions over lines without their LF. No I/O, no state here.
//
// The exchange (admin-protocol.md): on accept both sides send
// "VERSION\tdirector-doveadm\t1\t0". Then doveadm sends one command line at a time
// and reads its reply: a single line (OK, NOTFOUND, TRYAGAIN or an error text), or for
// the listing commands a series of lines ended by an empty line. A line stock cannot
// parse (empty, unknown command, bad parameters) is logged and the connection closed
// without a reply; parse_admin_command() returns exactly those cases as errors, with
// stock's log wording. Lines are split with Dovecot tab-unescaping, and, since stock
// works on C strings, every field ends at an embedded NUL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "director-types.h"
#include "ids.h"
#include "ip-addr.h"
#include "result.h"

namespace director::core {


// Reply lines (without LF).
constexpr std::string_view admin_reply_ok = "OK";
constexpr std::string_view admin_reply_notfound = "NOTFOUND";
constexpr std::string_view admin_reply_tryagain = "TRYAGAIN";

// The reply line of a command's result: OK, NOTFOUND, TRYAGAIN, or stock's error text.
std::string_view admin_result_line(AdminResult r);

enum class AdminCommandKind {
	host_list,
	host_list_removed,
	director_list,
	director_add,
	director_remove,
	host_set,
	host_update,
	host_up,
	host_down,
	host_remove,
	host_flush,
	host_reset_users,
	user_lookup,
	user_list,
	user_move,
	user_kick,
	user_kick_alt,
};

// The command name on the wire ("HOST-SET").
std::string_view admin_command_name(AdminCommandKind kind);

// True for commands that wait until the ring is synced before running (pre-sync).
bool admin_command_waits_for_sync(AdminCommandKind kind);

// One parsed command. Fields not used by a kind keep their defaults.
struct AdminCommand {
	AdminCommandKind kind = AdminCommandKind::host_list;

	// DIRECTOR-ADD/-REMOVE: the director. HOST-SET/-UPDATE/-UP/-DOWN/-REMOVE: the
	// mail host. HOST-FLUSH, HOST-RESET-USERS, USER-LIST: the host, or nullopt for
	// "all hosts" (argument missing or empty). USER-MOVE: the target host.
	std::optional<IpAddr> ip;
	// DIRECTOR-ADD/-REMOVE: the port if given (else: own ring port / first match).
	std::optional<uint16_t> port;
	// HOST-SET/-UPDATE: the "@tag" suffix of the IP argument. USER-LOOKUP: the tag.
	std::string tag;
	// HOST-SET/-UPDATE: the vhost count if given. Like stock, 4294967295 counts as
	// "not given". HOST-UPDATE always has one unless it was 4294967295.
	std::optional<uint32_t> vhost_count;
	// USER-LOOKUP, USER-MOVE: the raw user_or_hash argument. USER-KICK: the user name.
	std::string user;
	// USER-LOOKUP, USER-MOVE: set when `user` is a plain unsigned decimal number that
	// fits 32 bits (stock's str_to_uint()): it is then the user hash itself and must
	// not be hashed. Otherwise hash `user` with director_username_hash.
	std::optional<uint32_t> user_hash;
	// USER-KICK-ALT: passdb field and value.
	std::string field;
	std::string value;
	// USER-KICK, USER-KICK-ALT: reply TRYAGAIN instead of waiting.
	bool nowait = false;
	// HOST-RESET-USERS: the concurrency given (>= 1), else director_max_parallel_moves.
	std::optional<uint32_t> max_parallel;

	friend bool operator==(const AdminCommand &a, const AdminCommand &b);
	friend bool operator!=(const AdminCommand &a, const AdminCommand &b) { return !(a == b); }
};

// Checks doveadm's handshake line. Fails with stock's log text "doveadm not
// compatible with this server (mixed old and new binaries?)" unless the line is
// "VERSION\tdirector-doveadm\t1\t<unsigned minor>".
Status parse_admin_handshake(std::string_view line);
// Our handshake line: "VERSION\tdirector-doveadm\t1\t0".
std::string format_admin_handshake();

// Parses one command line (without LF). Errors are stock's log lines, e.g.
// "doveadm sent empty command line", "doveadm sent unknown command: <line>",
// "doveadm sent invalid HOST-SET parameters"; the caller logs it and closes the
// connection without replying. Untrusted text in messages is quoted.
Result<AdminCommand> parse_admin_command(std::string_view line);

// True when a HOST-SET/-UPDATE must be answered with admin_reply_vhost_count_too_large
// instead of being run.
bool vhost_count_too_large(const AdminCommand &cmd);

// Formats a command as doveadm sends it (the inverse of parse_admin_command()).
// Empty optional arguments are omitted, except that HOST-RESET-USERS with
// max_parallel and no IP sends an empty IP field, as doveadm does.
std::string format_admin_command(const AdminCommand &cmd);

// ---- reply lines ----------------------------------------------------------------------

// HOST-LIST: "<ip>\t<vhosts>\t<users>\t<tag>\t<U|D>\t<last_updown_change>".
std::string format_host_list_line(const IpAddr &ip, uint32_t vhost_count, uint32_t user_count,
				  std::string_view tag, bool down, int64_t last_updown_change);

// USER-LOOKUP: "<current_ip>\t<expire>\t<hashed_ip>\t<initial_config_ip>". With no
// current entry the first two fields are "" and "0"; an absent hashed/initial host is
// an empty field.
std::string format_user_lookup_line(const std::optional<IpAddr> &current_ip,
				    uint32_t expire_time, const std::optional<IpAddr> &hashed_ip,
				    const std::optional<IpAddr> &initial_ip);

// USER-LIST: "<user_hash>\t<expire>\t<host_ip>".
std::string format_user_list_line(uint32_t user_hash, uint32_t expire_time,
				  const IpAddr &host_ip);

// The per-director prefix of a DIRECTOR-LIST line.
struct DirectorListHost {
	IpAddr ip;
	uint16_t port = 0;
	std::string_view type; // "left", "right", "in", "out"; entries: "removed", "self", ""
	int64_t last_failed = 0; // max(network, protocol failure), 0 = never
};

// Counters of one ring connection for DIRECTOR-LIST.
struct DirectorListConnection {
	std::string status; // see director_connection_status_text()
	uint32_t last_ping_msecs = 0;
	uint64_t bytes_read = 0;
	uint64_t bytes_sent = 0;
	uint64_t bytes_buffered = 0;
	uint64_t peak_bytes_buffered = 0;
	int64_t last_input = 0;  // unix time
	int64_t last_output = 0; // unix time
};

// A DIRECTOR-LIST line for a ring connection: the host fields (absent for an incoming
// connection that has not sent ME yet) followed by the connection's status fields.
std::string format_director_list_connection_line(const std::optional<DirectorListHost> &host,
						 const DirectorListConnection &conn);

// A DIRECTOR-LIST line for a director entry without connections. Only the self entry
// passes `ring_status` (director_ring_status_text()) and last_sync_msecs; other entries
// end with the TAB after last_failed, exactly as stock sends them.
std::string format_director_list_entry_line(const DirectorListHost &host,
					    std::optional<std::string_view> ring_status,
					    uint32_t last_sync_msecs);

// "ring handshaking", "ring synced" or "ring syncing - last sync N secs ago".
std::string director_ring_status_text(bool ring_handshaked, bool ring_synced,
				      int64_t secs_since_last_sync);

// "handshaking - N USERs received|sent", "synced" or "syncing".
std::string director_connection_status_text(bool handshaked, bool incoming, bool synced,
					    uint32_t handshake_users);

} // namespace director::core
