// Inspection and rewriting of auth replies passing through the director: auth-client
// "OK" lines (login/director and authreply sockets) and auth-master "PASS" lines
// (director-userdb). Pure functions over lines without their LF. No I/O here.
//
// The exchange (login-and-userdb.md §2-3): login -> auth bytes are copied untouched;
// auth -> login lines are forwarded unchanged except successful replies. For those the
// director decides whether it must choose a backend (proxy requested, no host given,
// a user name present); if so it looks up a host for (name, tag) and sends the
// original line plus "\tproxy_refresh=<N>\thost=<ip>" (or "\thost=<name>\thostip=<ip>"),
// or "FAIL\t<id>\tcode=temp_fail" when the lookup failed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ip-addr.h"
#include "result.h"

namespace director::core {

// Which protocol the line comes from.
enum class AuthReplySocket {
	login,  // auth-client protocol: "OK\t<id>\t..." is inspected (also authreply sockets)
	userdb, // auth-master protocol: "PASS\t<id>\t..." is inspected
};

// What the director learned from one auth reply line.
struct AuthReply {
	// False: not a success reply for this socket type; forward the line unchanged and
	// ignore the other fields.
	bool inspected = false;
	std::string id;          // the request id as written (first field after OK/PASS)
	bool proxy = false;      // "proxy" or "proxy=..." present
	bool has_host = false;   // "host=..." present: the passdb chose the backend
	bool proxy_maybe = false; // "director_proxy_maybe" or "director_proxy_maybe=..."
	std::optional<IpAddr> local_ip; // lip=
	uint16_t local_port = 0;        // lport= (0 = absent or invalid)
	uint16_t dest_port = 0;         // port= (0 = absent or invalid)
	// destuser= (the last one) wins over user= (the first one); nullopt if neither.
	std::optional<std::string> username;
	std::string tag; // director_tag=, empty = default tag
	// Invalid lip/lport/port values, one message each (stock logs them as errors
	// but carries on).
	std::vector<std::string> warnings;
};

// Inspects one line from auth. Fields are tab-unescaped and, like stock's C strings,
// end at an embedded NUL. Never fails.
AuthReply inspect_auth_reply(std::string_view line, AuthReplySocket socket);

// True when the director must pick a host: the line was inspected, proxy or
// proxy_maybe was requested, no host= was given and a user name is present.
// Otherwise the line is forwarded unchanged.
bool auth_reply_needs_host(const AuthReply &reply);

// The user name to hash: reply.username, cut before the first occurrence of the first
// character of `master_user_separator` (stock uses only that one character); unchanged
// when the separator is empty. A view into reply.username, valid while `reply` is
// alive and unchanged. Call only when auth_reply_needs_host().
std::string_view auth_reply_hash_name(const AuthReply &reply,
				      std::string_view master_user_separator);

// Stock's proxy-maybe self check: the chosen host is this server if its IP equals lip
// and, when both port and lport are non-zero, they are equal.
bool auth_reply_host_is_self(const AuthReply &reply, const IpAddr &host_ip);

// The line to send once a host was found: with proxy_maybe and a host that is self,
// the original line unchanged; otherwise the original line plus
// "\tproxy_refresh=<proxy_refresh_secs>" and "\thost=<ip>" (empty hostname) or
// "\thost=<hostname>\thostip=<ip>". proxy_refresh_secs is director_user_expire/2.
// Stock appends the hostname raw; we tab-escape it, which is the same bytes for every
// valid DNS name and keeps a hostile ring-supplied name from adding fields.
std::string format_auth_reply_with_host(const AuthReply &reply, std::string_view original_line,
					uint32_t proxy_refresh_secs, const IpAddr &host_ip,
					std::string_view hostname);

// The line to send when the host lookup failed: "FAIL\t<id>\tcode=temp_fail", where
// <id> is the original id field as written. `original_line` must be an inspected
// line.
std::string format_auth_reply_fail(std::string_view original_line);

// The authreply listener's handshake: the client must send
// "VERSION\tdirector-authreply-client\t1\t<minor>"; the server sends
// "VERSION\tdirector-authreply-server\t1\t0".
Status parse_authreply_handshake(std::string_view line);
std::string format_authreply_handshake();

// How many requests a login/director connection has open at auth: AUTH lines
// the client sent, minus its CANCEL lines and the OK and FAIL lines auth sent
// back (CONT goes both ways and opens or ends nothing). The client's bytes are
// copied to auth in raw chunks, so the start of a line may arrive split over
// two chunks. Ids are not matched: a CANCEL for a request auth already
// answered ends one too many, so the count can only fall short of the truth
// (never below zero), and a shortfall only means a batching wait not taken.
class AuthRequestCounter {
public:
	void client_bytes(std::string_view data);
	void auth_line(std::string_view line);
	unsigned open() const { return open_; }

private:
	void count_line_start();

	unsigned open_ = 0;
	// The first bytes of the client's current line, enough to tell
	// "AUTH\t" and "CANCEL\t" from the rest.
	std::array<char, 7> head_{};
	size_t head_len_ = 0;
	bool head_done_ = false; // head_ was counted; skipping to the LF
};

} // namespace director::core
