// libFuzzer target: director-admin (doveadm) lines. The handshake check must not
// crash; a command that parses must format to a line doveadm could send, which
// parses back to the same command and formats to the same bytes again.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "admin-protocol.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view line, const std::string &formatted)
{
	fprintf(stderr, "fuzz-admin-line: %s\n  input:     '%.*s'\n  formatted: '%s'\n", what,
		int(line.size()), line.data(), formatted.c_str());
	abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view line(reinterpret_cast<const char *>(data), size);

	Status hs = parse_admin_handshake(line);
	if (!hs.ok() && hs.error().empty())
		fail("handshake error without a message", line, "");
	if (hs.ok()) {
		// Stock's str_to_uint() takes leading zeros: major "0001" is 1.
		constexpr std::string_view prefix = "VERSION\tdirector-doveadm\t";
		std::string_view major = line.substr(0, line.find('\0'));
		if (major.substr(0, prefix.size()) != prefix)
			fail("accepted a handshake of another protocol", line, "");
		major.remove_prefix(prefix.size());
		major = major.substr(0, major.find('\t'));
		major.remove_prefix(std::min(major.find_first_not_of('0'), major.size()));
		if (major != "1")
			fail("accepted a handshake with a major version other than 1", line, "");
	}

	auto r = parse_admin_command(line);
	if (!r.ok()) {
		if (r.error().empty())
			fail("parse error without a message", line, "");
		return 0;
	}
	const AdminCommand &cmd = *r;
	(void)vhost_count_too_large(cmd);
	(void)admin_command_waits_for_sync(cmd.kind);
	std::string formatted = format_admin_command(cmd);
	if (formatted.find_first_of(std::string_view("\n\r\0", 3)) != std::string::npos)
		fail("formatted line contains LF, CR or NUL", line, formatted);
	auto again = parse_admin_command(formatted);
	if (!again.ok())
		fail(("formatted line does not parse: " + again.error()).c_str(), line, formatted);
	if (*again != cmd)
		fail("format -> parse is not the same command", line, formatted);
	if (format_admin_command(*again) != formatted)
		fail("format is not stable", line, formatted);
	return 0;
}
