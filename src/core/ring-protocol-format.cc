// format_ring_command(): ring commands as stock writes them, for the peer's version
// (ring-protocol.h). No I/O here.
#include "ring-protocol.h"

#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

namespace {

void append_num(std::string &out, int64_t n)
{
	out += '\t';
	out += std::to_string(n);
}

void append_text(std::string &out, std::string_view text)
{
	out += '\t';
	tab_escape_append(out, text);
}

void append_origin(std::string &out, const RingOrigin &o)
{
	out += '\t';
	out += o.ip.to_string();
	append_num(out, o.port);
	append_num(out, o.seq);
}

void append_updown(std::string &out, const RingCommand &c)
{
	RingUpDown ud = c.updown.value_or(RingUpDown{});
	out += ud.down ? "\tD" : "\tU";
	out += std::to_string(ud.last_updown_change);
	append_text(out, c.hostname);
}

} // namespace

std::string format_ring_command(const RingCommand &c, const RingFormatContext &ctx)
{
	std::string out(ring_command_name(c.kind));
	switch (c.kind) {
	case RingCommandKind::version:
		out += "\tdirector";
		append_num(out, ring_version_major);
		append_num(out, c.minor_version);
		break;
	case RingCommandKind::me:
		out += '\t' + c.ip.to_string();
		append_num(out, c.port);
		if (c.timestamp)
			append_num(out, *c.timestamp);
		break;
	case RingCommandKind::director:
	case RingCommandKind::director_remove:
	case RingCommandKind::connect:
		out += '\t' + c.ip.to_string();
		append_num(out, c.port);
		break;
	case RingCommandKind::host_hand_start:
	case RingCommandKind::host_hand_end:
		append_num(out, c.ring_handshaked ? 1 : 0);
		break;
	case RingCommandKind::handshake_host: {
		bool updown = ctx.peer_minor >= ring_minor_updown;
		out += '\t' + c.ip.to_string();
		append_num(out, c.vhost_count);
		if (!c.tag.empty() || updown)
			append_text(out, c.tag);
		if (updown)
			append_updown(out, c);
		break;
	}
	case RingCommandKind::host:
		append_origin(out, c.origin);
		out += '\t' + c.ip.to_string();
		append_num(out, c.vhost_count);
		if (ctx.ring_min_version >= ring_minor_tags_v2)
			append_text(out, c.tag);
		if (ctx.ring_min_version >= ring_minor_updown)
			append_updown(out, c);
		break;
	case RingCommandKind::handshake_user:
		out = ctx.peer_minor >= ring_minor_handshake_u ? "U" : "USER";
		append_num(out, c.user_hash);
		out += '\t' + c.ip.to_string();
		append_num(out, c.timestamp.value_or(0));
		if (c.weak)
			out += "\tw";
		break;
	case RingCommandKind::user:
		append_num(out, c.user_hash);
		out += '\t' + c.ip.to_string();
		if (ctx.peer_minor >= ring_minor_user_timestamp)
			append_num(out, c.timestamp.value_or(0));
		break;
	case RingCommandKind::options:
		for (const std::string &o : c.options)
			append_text(out, o);
		break;
	case RingCommandKind::done:
		break;
	case RingCommandKind::host_remove:
	case RingCommandKind::host_flush:
		append_origin(out, c.origin);
		out += '\t' + c.ip.to_string();
		break;
	case RingCommandKind::user_move:
	case RingCommandKind::user_weak:
	case RingCommandKind::user_kick_hash:
		append_origin(out, c.origin);
		append_num(out, c.user_hash);
		out += '\t' + c.ip.to_string();
		break;
	case RingCommandKind::user_killed:
		append_num(out, c.user_hash);
		break;
	case RingCommandKind::user_killed_everywhere:
		append_origin(out, c.origin);
		append_num(out, c.user_hash);
		break;
	case RingCommandKind::user_kick:
		append_origin(out, c.origin);
		append_text(out, c.username);
		break;
	case RingCommandKind::user_kick_alt:
		append_origin(out, c.origin);
		append_text(out, c.field);
		append_text(out, c.value);
		break;
	case RingCommandKind::ping:
	case RingCommandKind::pong:
		if (c.timestamp && c.buffer_bytes) {
			append_num(out, *c.timestamp);
			out += '\t' + std::to_string(*c.buffer_bytes);
		}
		break;
	case RingCommandKind::sync:
		append_origin(out, c.origin);
		if (c.sync_minor.value_or(0) > 0 && ctx.peer_minor > 0) {
			append_num(out, *c.sync_minor);
			append_num(out, c.sync_timestamp.value_or(0));
			append_num(out, c.hosts_hash.value_or(0));
		}
		break;
	case RingCommandKind::quit:
		append_text(out, c.reason);
		break;
	}
	return out;
}

} // namespace director::core
