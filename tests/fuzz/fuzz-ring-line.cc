// libFuzzer target: ring protocol lines. The first two bytes pick the connection
// context (direction, handshake stage, peer minor); the rest is one line. A line that
// parses must format to a line without LF/CR/NUL that parses back to the same command.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ring-protocol.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view line, const std::string &formatted)
{
	fprintf(stderr, "fuzz-ring-line: %s\n  input:     '%.*s'\n  formatted: '%s'\n", what,
		int(line.size()), line.data(), formatted.c_str());
	abort();
}

RingParseContext context_from(uint8_t b0, uint8_t b1)
{
	bool incoming = (b0 & 1) != 0;
	unsigned minor = b1 % (ring_version_minor + 1);
	switch ((b0 >> 1) % 5) {
	case 0:
		return RingParseContext::fresh(incoming);
	case 1: {
		RingParseContext c = RingParseContext::fresh(incoming);
		c.version_received = true;
		c.peer_minor = minor;
		return c;
	}
	case 2: {
		RingParseContext c = RingParseContext::established(incoming, minor);
		c.handshake_done = false;
		return c;
	}
	case 3: {
		RingParseContext c = RingParseContext::established(true, minor);
		c.handshake_done = false;
		c.in_host_list = true;
		return c;
	}
	default:
		return RingParseContext::established(incoming, minor);
	}
}

// What format_ring_command() documents as not carried for this peer: the command
// as the peer will read it back.
RingCommand as_sent(RingCommand cmd, const RingFormatContext &f)
{
	bool has_updown = (cmd.kind == RingCommandKind::handshake_host && f.peer_minor >= 6) ||
			  (cmd.kind == RingCommandKind::host && f.ring_min_version >= 6);
	if (cmd.kind == RingCommandKind::handshake_host || cmd.kind == RingCommandKind::host) {
		if (has_updown && !cmd.updown)
			cmd.updown = RingUpDown{}; // a missing field reads as "U0"
		if (!has_updown) {
			cmd.updown.reset();
			cmd.hostname.clear();
		}
	}
	switch (cmd.kind) {
	case RingCommandKind::user:
		// Minor >= 9 always carries a timestamp (0 when there was none).
		if (f.peer_minor >= ring_minor_user_timestamp)
			cmd.timestamp = cmd.timestamp.value_or(0);
		else
			cmd.timestamp.reset();
		break;
	case RingCommandKind::sync:
		if (cmd.sync_minor.value_or(0) > 0 && f.peer_minor > 0) {
			cmd.sync_timestamp = cmd.sync_timestamp.value_or(0);
			cmd.hosts_hash = cmd.hosts_hash.value_or(0);
		} else {
			cmd.sync_minor.reset();
			cmd.sync_timestamp.reset();
			cmd.hosts_hash.reset();
		}
		break;
	case RingCommandKind::ping:
	case RingCommandKind::pong:
		if (!cmd.timestamp || !cmd.buffer_bytes) {
			cmd.timestamp.reset();
			cmd.buffer_bytes.reset();
		}
		break;
	default:
		break;
	}
	return cmd;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	RingParseContext ctx = context_from(data[0], data[1]);
	std::string_view line(reinterpret_cast<const char *>(data) + 2, size - 2);

	auto r = parse_ring_line(line, ctx);
	if (!r.ok()) {
		if (r.error().empty())
			fail("parse error without a message", line, "");
		(void)ring_origin_checked_before_body(line, ctx);
		return 0;
	}
	const RingCommand &cmd = *r;
	RingFormatContext fctx;
	// A connection still before VERSION has no peer minor yet; VERSION itself is
	// formatted the same for every minor.
	fctx.peer_minor = ctx.peer_minor;
	fctx.ring_min_version = ring_version_minor;
	std::string formatted = format_ring_command(cmd, fctx);
	if (formatted.find_first_of(std::string_view("\n\r\0", 3)) != std::string::npos)
		fail("formatted line contains LF, CR or NUL", line, formatted);

	auto again = parse_ring_line(formatted, ctx);
	if (!again.ok())
		fail(("formatted line does not parse: " + again.error()).c_str(), line, formatted);
	if (*again != as_sent(cmd, fctx))
		fail("format -> parse is not the same command", line, formatted);
	if (format_ring_command(*again, fctx) != formatted)
		fail("format is not stable", line, formatted);
	return 0;
}
