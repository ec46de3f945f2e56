// Parsers for setting values the director interprets itself (director_mail_servers,
// director_servers) and for Dovecot's numeric/IP value syntax that every codec shares.
// No I/O here: host names are returned as "needs DNS", never resolved.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ids.h"
#include "ip-addr.h"
#include "result.h"

namespace director::core {

// ---- Dovecot's value syntax ---------------------------------------------------------
// These accept exactly what stock's str_to_*() / net_*() accept for a C string, so a
// codec refuses precisely the fields stock refuses. None of them allocates.

// Decimal digits only (no sign, no spaces, not empty), no overflow; like str_to_uint().
std::optional<uint32_t> parse_stock_uint32(std::string_view text);
// Same for uintmax_t (64 bits), like str_to_uintmax().
std::optional<uint64_t> parse_stock_uint64(std::string_view text);
// Optional '-' then decimal digits, within int64_t; like str_to_time().
std::optional<int64_t> parse_stock_time(std::string_view text);
// 1..65535 in decimal; like net_str2port() (port 0 is refused).
std::optional<uint16_t> parse_stock_port(std::string_view text);
// An IP address as stock's net_addr2ip() reads it: a single decimal number or
// dotted decimal (leading zeros are decimal), anything inet_aton() accepts, or
// IPv6 optionally inside [brackets]. More lenient than IpAddr::parse().
std::optional<IpAddr> parse_stock_ip(std::string_view text);

// ---- director_mail_servers ----------------------------------------------------------


// One mail host named by director_mail_servers. A range entry is expanded into one
// entry per address, in ascending order.
struct MailServerEntry {
	// True when `hostname` is a DNS name that the caller must resolve; every
	// resolved address becomes a host remembering `hostname`. False: `ip` is set
	// and `hostname` is empty.
	bool needs_dns = false;
	IpAddr ip;
	std::string hostname;
	std::string tag; // from an "@tag" suffix, empty if none

	friend bool operator==(const MailServerEntry &a, const MailServerEntry &b)
	{
		return a.needs_dns == b.needs_dns && a.ip == b.ip && a.hostname == b.hostname &&
		       a.tag == b.tag;
	}
};

// Parses a director_mail_servers value: entries separated by one or more spaces, each
// `ip`, `hostname` or `ip1-ip2` (IPv4: only the last 8 bits may differ; IPv6: only the
// last 16), any of them with an `@tag` suffix (the tag is everything after the first
// '@'). An entry with a '-' whose two halves are not both IPs is a host name
// ("mail-1.example.com"). Fails on the first bad entry with a message naming it, and
// on an empty list ("Empty server list"); stock treats either as fatal at startup.
Result<std::vector<MailServerEntry>> parse_mail_servers(std::string_view value);

// ---- director_servers -----------------------------------------------------------------

// One director named by director_servers.
struct DirectorServerEntry {
	std::string host;         // as written (brackets removed)
	std::optional<IpAddr> ip; // set when `host` is numeric; otherwise resolve `host`
	uint16_t port = 0;

	friend bool operator==(const DirectorServerEntry &a, const DirectorServerEntry &b)
	{
		return a.host == b.host && a.ip == b.ip && a.port == b.port;
	}
};

// Parses a director_servers value: space-separated `host`, `host:port`, `[ipv6]` or
// `[ipv6]:port`; a bare IPv6 address (more than one ':') takes the default port.
// `default_port` is the port of the director's own ring listener. An empty value gives
// an empty list (standalone director). Fails with "Invalid director host:port in '<x>'"
// for a bad port or bracket, as stock does at startup.
Result<std::vector<DirectorServerEntry>> parse_director_servers(std::string_view value,
								uint16_t default_port);

// ---- proxy-notify ---------------------------------------------------------------------
// A proxy-notify line needs no parsing: the director hashes the line exactly as the
// login process wrote it (tab-escaped, no unescaping), with the LF and a trailing CR
// already removed by LineReader. Stock sees the line as a C string, so anything from
// an embedded NUL byte on is ignored; this returns the part that is hashed.
std::string_view proxy_notify_user(std::string_view line);

} // namespace director::core
