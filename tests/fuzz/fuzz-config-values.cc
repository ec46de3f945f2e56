// libFuzzer target: setting values and Dovecot's value syntax. The first byte picks
// the parser: director_mail_servers, director_servers, a director_username_hash
// template (then expanded for a few fixed names), the parse_stock_* helpers against
// reference implementations, or IpAddr::parse against inet_pton.
#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "config-values.h"
#include "ip-addr.h"
#include "user-hash.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view input)
{
	fprintf(stderr, "fuzz-config-values: %s\n  input: '%.*s'\n", what, int(input.size()),
		input.data());
	abort();
}

// Plain reference: digits only, not empty, value within `max`.
std::optional<unsigned __int128> ref_digits(std::string_view text, unsigned __int128 max)
{
	if (text.empty())
		return std::nullopt;
	unsigned __int128 n = 0;
	for (char c : text) {
		if (c < '0' || c > '9')
			return std::nullopt;
		n = n * 10 + unsigned(c - '0');
		if (n > max)
			return std::nullopt;
	}
	return n;
}

void check_mail_servers(std::string_view value)
{
	auto r = parse_mail_servers(value);
	if (!r.ok()) {
		if (r.error().empty())
			fail("mail servers: error without a message", value);
		return;
	}
	if (r->empty())
		fail("mail servers: success with no entries", value);
	for (const MailServerEntry &e : *r) {
		if (e.needs_dns == e.hostname.empty())
			fail("mail servers: needs_dns and hostname disagree", value);
		if (e.hostname.find(' ') != std::string::npos || e.tag.find(' ') != std::string::npos)
			fail("mail servers: entry contains a space", value);
		if (!e.needs_dns && IpAddr::parse(e.ip.to_string()) != e.ip)
			fail("mail servers: IP does not round trip", value);
	}
}

void check_director_servers(std::string_view value, uint16_t port)
{
	auto r = parse_director_servers(value, port);
	if (!r.ok()) {
		if (r.error().empty())
			fail("director servers: error without a message", value);
		return;
	}
	for (const DirectorServerEntry &e : *r) {
		if (e.port == 0 || e.host.empty())
			fail("director servers: empty host or port 0", value);
		if (e.ip && IpAddr::parse(e.ip->to_string()) != *e.ip)
			fail("director servers: IP does not round trip", value);
	}
}

void check_username_hash(std::string_view format)
{
	auto r = UsernameHash::parse(format);
	if (!r.ok()) {
		if (r.error().empty())
			fail("username hash: error without a message", format);
		return;
	}
	static const std::string names[] = {
		"user1@example.com", "User1@Example.COM", "", "a", "@", "x@", "@y", "a@b@c",
		"\xc3\xbcn\xc3\xaf@c\xc3\xb8" "de", std::string(300, 'Z') + "@" + std::string(40, 'd'),
		std::string("nul\0inside@x", 12), "%u%{user}",
	};
	for (const std::string &n : names) {
		uint32_t h = r->hash(n);
		if (h == 0)
			fail("username hash: hash 0", format);
		if (h != user_hash_of_bytes(r->expand(n)))
			fail("username hash: hash() differs from hashing expand()", format);
	}
}

void check_stock_values(std::string_view text)
{
	auto u32 = parse_stock_uint32(text);
	auto r32 = ref_digits(text, UINT32_MAX);
	if (u32.has_value() != r32.has_value() || (u32 && *u32 != *r32))
		fail("parse_stock_uint32 differs from the reference", text);
	auto u64 = parse_stock_uint64(text);
	auto r64 = ref_digits(text, UINT64_MAX);
	if (u64.has_value() != r64.has_value() || (u64 && *u64 != *r64))
		fail("parse_stock_uint64 differs from the reference", text);
	auto port = parse_stock_port(text);
	auto rport = ref_digits(text, 65535);
	if (rport && *rport == 0)
		rport.reset();
	if (port.has_value() != rport.has_value() || (port && *port != *rport))
		fail("parse_stock_port differs from the reference", text);
	auto t = parse_stock_time(text);
	bool neg = !text.empty() && text[0] == '-';
	auto rt = ref_digits(neg ? text.substr(1) : text,
			     neg ? (unsigned __int128)INT64_MAX + 1 : (unsigned __int128)INT64_MAX);
	if (t.has_value() != rt.has_value() ||
	    (t && (neg ? *t != int64_t(-(__int128)*rt) : *t != int64_t(*rt))))
		fail("parse_stock_time differs from the reference", text);

	auto ip = parse_stock_ip(text);
	if (ip && parse_stock_ip(ip->to_string()) != ip)
		fail("parse_stock_ip does not round trip its canonical text", text);
	auto strict = IpAddr::parse(text);
	if (strict && ip != strict)
		fail("parse_stock_ip refuses or changes what IpAddr::parse accepts", text);
	(void)proxy_notify_user(text);
}

void check_ip_addr(std::string_view text)
{
	auto ip = IpAddr::parse(text);
	uint8_t buf[16];
	std::string s(text);
	bool v4 = false, v6 = false;
	if (text.find('\0') == std::string_view::npos) {
		v4 = inet_pton(AF_INET, s.c_str(), buf) == 1;
		if (!v4)
			v6 = inet_pton(AF_INET6, s.c_str(), buf) == 1;
	}
	if (ip.has_value() != (v4 || v6))
		fail("IpAddr::parse differs from inet_pton", text);
	if (!ip)
		return;
	if (ip->is_v4() != v4 || memcmp(ip->bytes(), buf, ip->size()) != 0)
		fail("IpAddr::parse gives other bytes than inet_pton", text);
	auto again = IpAddr::parse(ip->to_string());
	if (!again || *again != *ip || again->to_string() != ip->to_string())
		fail("IpAddr text does not round trip", text);
	(void)ip->stock_hash();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	std::string_view text(reinterpret_cast<const char *>(data) + 1, size - 1);
	switch (data[0] % 5) {
	case 0:
		// Ranges expand to up to 65536 entries each; keep values short enough
		// that one input stays cheap.
		if (text.size() <= 256)
			check_mail_servers(text);
		break;
	case 1:
		check_director_servers(text, uint16_t(9090 + (data[0] >> 3)));
		break;
	case 2:
		check_username_hash(text);
		break;
	case 3:
		check_stock_values(text);
		break;
	default:
		check_ip_addr(text);
		break;
	}
	return 0;
}
