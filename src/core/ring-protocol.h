// The director ring protocol (director <-> director over TCP): one parse function
// from a line to a typed command and one format function back. No I/O, no state here.
//
// The exchange (ring-protocol.md): the connecting director sends VERSION, ME and a
// DIRECTOR line per known director; the acceptor answers VERSION and ME. When the
// connector sees the peer's VERSION it sends its mail hosts (HOST-HAND-START, HOST*,
// HOST-HAND-END), its users (U, or USER to peers with minor < 9), OPTIONS and DONE;
// the acceptor replies DONE. After that only the ring commands flow: USER, HOST,
// HOST-REMOVE, HOST-FLUSH, USER-MOVE, USER-WEAK, USER-KILLED(-EVERYWHERE),
// USER-KICK(-ALT/-HASH), DIRECTOR(-REMOVE), SYNC, PING/PONG, CONNECT and QUIT; most
// carry an origin triple (origin ip, port, seq) for duplicate suppression.
// Lines are TAB separated with Dovecot tab-escaping; since stock works on C strings,
// each field ends at an embedded NUL. Any error returned here is one stock treats as
// fatal for the connection (it logs it and disconnects).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ip-addr.h"
#include "result.h"

namespace director::core {

// Protocol version spoken (stock 2.3.19.1).
constexpr unsigned ring_version_major = 1;
constexpr unsigned ring_version_minor = 9;
// Minor-version capability gates (peer minor >= value).
constexpr unsigned ring_minor_weak_users = 1;     // USER-WEAK, SYNC extra fields
constexpr unsigned ring_minor_ring_remove = 2;    // DIRECTOR-REMOVE
constexpr unsigned ring_minor_quit = 3;           // QUIT
constexpr unsigned ring_minor_user_kick = 4;      // USER-KICK, USER-KICK-HASH
constexpr unsigned ring_minor_options = 5;        // OPTIONS in handshake
constexpr unsigned ring_minor_tags = 5;           // host tags (v1)
constexpr unsigned ring_minor_updown = 6;         // U/D + timestamp + hostname in HOST
constexpr unsigned ring_minor_tags_v2 = 7;        // tag field always present
constexpr unsigned ring_minor_user_kick_alt = 8;  // USER-KICK-ALT
constexpr unsigned ring_minor_handshake_u = 9;    // handshake users sent as U
constexpr unsigned ring_minor_user_timestamp = 9; // USER carries a timestamp

// The only option 2.3 sends and requires in OPTIONS.
constexpr std::string_view ring_option_consistent_hashing = "consistent-hashing";

enum class RingCommandKind {
	version,
	me,
	director,
	director_remove,
	connect,
	host_hand_start,
	host_hand_end,
	handshake_host, // HOST between HOST-HAND-START and -END: no origin triple
	handshake_user, // U, or USER with > 2 args from a peer with minor < 9
	options,
	done,
	user,
	host,
	host_remove,
	host_flush,
	user_move,
	user_weak,
	user_killed,
	user_killed_everywhere,
	user_kick,
	user_kick_alt,
	user_kick_hash,
	ping,
	pong,
	sync,
	quit,
};

// The command name on the wire; handshake_user is "U" (see format_ring_command()).
std::string_view ring_command_name(RingCommandKind kind);
// True when the command carries an origin triple.
bool ring_command_has_origin(RingCommandKind kind);
// The lowest peer minor version that understands the command (0 = all). Stock never
// sends a command to a connection whose peer minor is lower.
unsigned ring_command_min_minor(RingCommandKind kind);

// Origin triple: the director that originated a change and its sequence number.
struct RingOrigin {
	IpAddr ip;
	uint16_t port = 0;
	uint32_t seq = 0;
	friend bool operator==(const RingOrigin &a, const RingOrigin &b)
	{
		return a.ip == b.ip && a.port == b.port && a.seq == b.seq;
	}
};

// U/D state of a mail host with the time it last changed.
struct RingUpDown {
	bool down = false;
	int64_t last_updown_change = 0;
	friend bool operator==(const RingUpDown &a, const RingUpDown &b)
	{
		return a.down == b.down && a.last_updown_change == b.last_updown_change;
	}
};

// One parsed ring line. Which fields a kind uses:
//   version                 minor_version
//   me                      ip, port, timestamp (sender's clock, optional)
//   director, director_remove, connect   ip, port
//   host_hand_start/_end    ring_handshaked
//   handshake_host          ip, vhost_count, tag, updown, hostname
//   host                    origin + the handshake_host fields
//   handshake_user          user_hash, ip, timestamp (always set), weak
//   options                 options
//   done                    -
//   user                    user_hash, ip, timestamp (absent from peers with minor < 9)
//   host_remove, host_flush origin, ip
//   user_move, user_weak    origin, user_hash, ip
//   user_killed             user_hash
//   user_killed_everywhere  origin, user_hash
//   user_kick               origin, username
//   user_kick_alt           origin, field, value
//   user_kick_hash          origin, user_hash, ip (the except IP)
//   ping, pong              timestamp + buffer_bytes (both or neither: stock
//                           tolerates missing or bad values and then ignores both)
//   sync                    origin (seq = the origin's sync_seq), sync_minor,
//                           sync_timestamp, hosts_hash (each optional, see below)
//   quit                    reason
struct RingCommand {
	RingCommandKind kind = RingCommandKind::done;
	RingOrigin origin;
	uint32_t minor_version = 0;
	IpAddr ip;
	uint16_t port = 0;
	std::optional<int64_t> timestamp;
	uint32_t user_hash = 0;
	bool weak = false;
	bool ring_handshaked = false;
	// Mail host fields. A missing tag/hostname field reads as "", a missing up/down
	// field as nullopt (= up, never changed).
	uint32_t vhost_count = 0;
	std::string tag;
	std::optional<RingUpDown> updown;
	std::string hostname;
	std::string username;
	std::string field;
	std::string value;
	std::vector<std::string> options;
	std::optional<uint64_t> buffer_bytes;
	// SYNC: stock parses each of the three extra fields if present; when absent the
	// receiver uses minor 0, timestamp "now" and hosts_hash 0 (= do not compare).
	std::optional<uint32_t> sync_minor;
	std::optional<uint32_t> sync_timestamp;
	std::optional<uint32_t> hosts_hash;
	std::string reason;

	friend bool operator==(const RingCommand &a, const RingCommand &b);
	friend bool operator!=(const RingCommand &a, const RingCommand &b) { return !(a == b); }
};

// What the parser must know about the connection to read a line the way stock does.
// The defaults describe an established connection (handshake finished).
struct RingParseContext {
	bool incoming = false;        // we accepted the connection (peer is our left side)
	unsigned peer_minor = ring_version_minor; // from the peer's VERSION
	bool version_received = true; // the peer's VERSION was accepted
	bool me_received = true;      // the peer's ME was accepted
	bool in_host_list = false;    // between HOST-HAND-START and HOST-HAND-END
	bool handshake_done = false;  // DONE received; handshake-only commands now unknown

	static RingParseContext established(bool incoming, unsigned peer_minor);
	// A fresh connection: nothing received yet.
	static RingParseContext fresh(bool incoming);
};

// Parses one line (without LF) as stock would in `ctx`. Before DONE it accepts the
// handshake commands (VERSION, ME, HOST-HAND-START, handshake HOST and U/USER on
// incoming connections, OPTIONS, DONE) as well as every ring command; after DONE the
// handshake commands are unknown. It enforces stock's ordering errors ("Incompatible
// protocol" before VERSION, "Expecting ME command first", "Duplicate ME",
// "Unexpected command during host list", "Host list is only for incoming
// connections"), VERSION's name/major check, OPTIONS without consistent-hashing, and
// every field check. Not checked here because they need ring state: a tagged HOST
// from a peer with minor < 7 (fatal unless the host list is being ignored), unknown
// hosts in handshake users, the peer's ME identity.
Result<RingCommand> parse_ring_line(std::string_view line, const RingParseContext &ctx);

// A handshake user line ("U" from a peer with minor >= 9) in the plain form
// every 2.3 director sends it: a fast path for the million-line handshakes,
// with no allocation. nullopt means "use parse_ring_line()" (any other line,
// an escape, a NUL, a context where U is not valid), never that the line is
// bad. ip_text points into `line`.
struct FastHandshakeUser {
	uint32_t user_hash;
	std::string_view ip_text;
	uint32_t timestamp;
	bool weak;
};
std::optional<FastHandshakeUser> parse_handshake_user_fast(std::string_view line,
							   const RingParseContext &ctx);

// Stock checks whether HOST, HOST-REMOVE, HOST-FLUSH, USER-MOVE, USER-KICK,
// USER-KICK-ALT and USER-KICK-HASH were already seen *before* validating the fields
// after the origin triple, so a malformed body with an already-seen triple is
// silently ignored. When parse_ring_line() fails, the caller may call this: it returns
// the triple of such a line if the triple itself is valid (nullopt otherwise, and for
// every other command). If the origin is a known, non-removed director and
// seq <= its last_seq, ignore the line instead of failing.
std::optional<RingOrigin> ring_origin_checked_before_body(std::string_view line,
							  const RingParseContext &ctx);

// How to format for one connection.
struct RingFormatContext {
	// The peer's minor version: decides U vs USER, the USER timestamp, the handshake
	// HOST layout and whether SYNC carries its extra fields.
	unsigned peer_minor = ring_version_minor;
	// The ring-wide minimum minor (learned from SYNC): decides the layout of HOST
	// with an origin triple.
	unsigned ring_min_version = ring_version_minor;
};

// Formats a command as stock sends it (without LF). Per-version rules:
//   handshake_user  "U" for peer minor >= 9, else "USER"; "\tw" if weak.
//   user            timestamp only if peer minor >= 9 (0 if the command has none).
//   handshake_host  peer minor >= 6: ip, vhosts, tag, U|D<time>, hostname (always
//                   five fields, possibly empty); else the tag only if non-empty.
//   host            ring_min_version >= 7: tag field always; then, if >= 6, U|D<time>
//                   and hostname. For 5..6 stock omits an empty tag yet still adds
//                   the up/down fields (a known stock quirk, reproduced byte for
//                   byte); a tagged host cannot be sent below 7 (stock removes it:
//                   the caller must check that, the tag is dropped here).
//   sync            the three extra fields only if sync_minor > 0 and peer minor > 0
//                   (missing timestamp/hosts_hash are sent as 0).
//   me              the timestamp field only if set (stock always sets it).
//   ping, pong      "<time>\t<buffer>" only if both are set (stock always sets them).
// Free-text fields (tag, hostname, username, field, value, options, reason) are
// tab-escaped. The caller is responsible for version gates
// (ring_command_min_minor()).
std::string format_ring_command(const RingCommand &cmd, const RingFormatContext &ctx);

} // namespace director::core
