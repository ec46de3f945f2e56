// libFuzzer target: auth replies passing through the director, on both socket kinds
// (auth-client "OK" and auth-master "PASS"). The first byte picks the chosen host and
// host name; the rest is one line. Rewriting must keep the original line (as the C
// string stock sees) as a prefix and add exactly the host fields. The whole input
// is also a login client's bytes to AuthRequestCounter, in one chunk and split in
// two (the first byte picks where): both must count as a line-by-line reference.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth-reply.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view line, const std::string &out)
{
	fprintf(stderr, "fuzz-auth-reply: %s\n  input:  '%.*s'\n  output: '%s'\n", what,
		int(line.size()), line.data(), out.c_str());
	abort();
}

bool starts_with(std::string_view s, std::string_view prefix)
{
	return s.substr(0, prefix.size()) == prefix;
}

bool ends_with(std::string_view s, std::string_view suffix)
{
	return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void check_socket(std::string_view line, AuthReplySocket socket, const IpAddr &host_ip,
		  std::string_view hostname)
{
	std::string_view c_line = line.substr(0, line.find('\0'));
	std::string_view prefix = socket == AuthReplySocket::login ? "OK\t" : "PASS\t";
	AuthReply reply = inspect_auth_reply(line, socket);
	if (reply.inspected != starts_with(c_line, prefix))
		fail("inspected does not match the OK/PASS prefix", line, "");
	if (!reply.inspected)
		return;
	if (reply.id.find('\t') != std::string::npos)
		fail("request id contains a TAB", line, reply.id);

	std::string failed = format_auth_reply_fail(line);
	if (!starts_with(failed, "FAIL\t" + reply.id + "\t") || !ends_with(failed, "\tcode=temp_fail") ||
	    failed.find_first_of(std::string_view("\n\0", 2)) != std::string::npos)
		fail("bad FAIL line", line, failed);

	if (!auth_reply_needs_host(reply))
		return;
	std::string name(auth_reply_hash_name(reply, "*"));
	if (!starts_with(*reply.username, name))
		fail("hash name is not a prefix of the user name", line, name);

	std::string out = format_auth_reply_with_host(reply, line, 450, host_ip, hostname);
	if (!starts_with(out, c_line))
		fail("rewritten line lost the original line as prefix", line, out);
	std::string_view added = std::string_view(out).substr(c_line.size());
	if (added.find_first_of(std::string_view("\n\r\0", 3)) != std::string_view::npos)
		fail("added fields contain LF, CR or NUL", line, out);
	if (added.empty()) {
		if (!reply.proxy_maybe || !auth_reply_host_is_self(reply, host_ip))
			fail("nothing added although the host is not self", line, out);
		return;
	}
	if (!starts_with(added, "\tproxy_refresh=450\thost="))
		fail("added fields do not start with proxy_refresh and host", line, out);
	AuthReply again = inspect_auth_reply(out, socket);
	if (!again.inspected || !again.has_host || again.id != reply.id ||
	    again.username != reply.username || again.tag != reply.tag ||
	    again.proxy != reply.proxy || again.proxy_maybe != reply.proxy_maybe)
		fail("rewritten line inspects differently", line, out);
	if (auth_reply_needs_host(again))
		fail("rewritten line still needs a host", line, out);
}

void check_counter(std::string_view bytes, size_t split)
{
	AuthRequestCounter whole, parts;
	whole.client_bytes(bytes);
	parts.client_bytes(bytes.substr(0, split));
	parts.client_bytes(bytes.substr(split));
	// A line counts once its LF or its seventh byte arrived.
	unsigned expected = 0;
	for (size_t pos = 0; pos < bytes.size();) {
		size_t lf = bytes.find('\n', pos);
		std::string_view line = bytes.substr(pos, lf == std::string_view::npos ? lf : lf - pos);
		if (lf != std::string_view::npos || line.size() >= 7) {
			if (starts_with(line, "AUTH\t"))
				expected++;
			else if (starts_with(line, "CANCEL\t") && expected > 0)
				expected--;
		}
		if (lf == std::string_view::npos)
			break;
		pos = lf + 1;
	}
	if (whole.open() != expected || parts.open() != expected)
		fail("open requests differ from the reference", bytes,
		     std::to_string(whole.open()) + " whole, " + std::to_string(parts.open()) +
			     " split, " + std::to_string(expected) + " expected");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const char *const ips[] = {"10.0.0.2", "127.0.77.1", "::1", "2001:db8::5"};
	static const char *const names[] = {"", "mail2.example.com", "a\tb\nc\001d", "x"};
	IpAddr host_ip = *IpAddr::parse(ips[data[0] & 3]);
	std::string_view hostname = names[(data[0] >> 2) & 3];
	std::string_view line(reinterpret_cast<const char *>(data) + 1, size - 1);
	check_counter(line, data[0] * line.size() / 256);
	// Lines come from a LineReader: never with an LF inside.
	line = line.substr(0, line.find('\n'));

	check_socket(line, AuthReplySocket::login, host_ip, hostname);
	check_socket(line, AuthReplySocket::userdb, host_ip, hostname);

	Status hs = parse_authreply_handshake(line);
	if (hs.ok() && !starts_with(line, "VERSION\tdirector-authreply-client\t1\t"))
		fail("accepted a bad authreply handshake", line, "");
	return 0;
}
