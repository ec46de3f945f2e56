// Director ring protocol parsing (formatting: ring-protocol-format.cc). No I/O, no
// state here.
#include "ring-protocol.h"

#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

namespace {

struct KindInfo {
	std::string_view name;
	bool has_origin;
	unsigned min_minor;
};

// Indexed by RingCommandKind.
constexpr KindInfo kinds[] = {
	{"VERSION", false, 0},
	{"ME", false, 0},
	{"DIRECTOR", false, 0},
	{"DIRECTOR-REMOVE", false, ring_minor_ring_remove},
	{"CONNECT", false, 0},
	{"HOST-HAND-START", false, 0},
	{"HOST-HAND-END", false, 0},
	{"HOST", false, 0},
	{"U", false, 0},
	{"OPTIONS", false, ring_minor_options},
	{"DONE", false, 0},
	{"USER", false, 0},
	{"HOST", true, 0},
	{"HOST-REMOVE", true, 0},
	{"HOST-FLUSH", true, 0},
	{"USER-MOVE", true, 0},
	{"USER-WEAK", true, ring_minor_weak_users},
	{"USER-KILLED", false, 0},
	{"USER-KILLED-EVERYWHERE", true, 0},
	{"USER-KICK", true, ring_minor_user_kick},
	{"USER-KICK-ALT", true, ring_minor_user_kick_alt},
	{"USER-KICK-HASH", true, ring_minor_user_kick},
	{"PING", false, 0},
	{"PONG", false, 0},
	{"SYNC", true, 0},
	{"QUIT", false, ring_minor_quit},
};

const KindInfo &info(RingCommandKind kind)
{
	return kinds[static_cast<size_t>(kind)];
}

// One line being parsed: the command name and stock's args[] view.
class Parser {
public:
	Parser(std::string_view line, std::vector<std::string> fields)
		: line_(line), fields_(std::move(fields))
	{
	}

	const std::string &cmd() const { return fields_[0]; }
	size_t argc() const { return fields_.size() - 1 - shift_; }
	// stock's args[i]; nullptr when missing
	const std::string *arg(size_t i) const
	{
		return i < argc() ? &fields_[i + 1 + shift_] : nullptr;
	}
	void skip(size_t n) { shift_ += n; }

	// Stock's director_cmd_error() wording: "Command X: reason (input: ...)".
	Error error(std::string_view reason) const
	{
		return make_error("Command " + quote_for_log(cmd()) + ": " + std::string(reason) +
				  " (input: " + quote_for_log(line_.substr(0, line_.find('\0'))) +
				  ")");
	}
	Error invalid() const { return error("Invalid parameters"); }

	// <ip> <port> at args[0..1], stock's director_args_parse_ip_port().
	Status ip_port(RingCommand &c) const
	{
		if (arg(0) == nullptr || arg(1) == nullptr)
			return error("Missing IP+port parameters");
		auto ip = parse_stock_ip(*arg(0));
		if (!ip)
			return error("Invalid IP address: " + quote_for_log(*arg(0)));
		auto port = parse_stock_port(*arg(1));
		if (!port)
			return error("Invalid port: " + quote_for_log(*arg(1)));
		c.ip = *ip;
		c.port = *port;
		return Status::success();
	}

	// The origin triple at args[0..2]; consumes it.
	Status origin(RingCommand &c)
	{
		if (argc() < 3)
			return invalid();
		auto ip = parse_stock_ip(*arg(0));
		auto port = parse_stock_port(*arg(1));
		auto seq = parse_stock_uint32(*arg(2));
		if (!ip || !port || !seq)
			return invalid();
		c.origin = RingOrigin{*ip, *port, *seq};
		skip(3);
		return Status::success();
	}

	// <ip> <vhost_count> [<tag> [<U|D><time> [<hostname>]]] (extra fields ignored).
	Status host_body(RingCommand &c) const
	{
		auto ip = argc() >= 2 ? parse_stock_ip(*arg(0)) : std::nullopt;
		auto vhosts = argc() >= 2 ? parse_stock_uint32(*arg(1)) : std::nullopt;
		if (!ip || !vhosts)
			return invalid();
		c.ip = *ip;
		c.vhost_count = *vhosts;
		if (argc() >= 3)
			c.tag = *arg(2);
		if (argc() >= 4) {
			const std::string &ud = *arg(3);
			std::optional<int64_t> changed;
			if (!ud.empty() && (ud[0] == 'U' || ud[0] == 'D'))
				changed = parse_stock_time(std::string_view(ud).substr(1));
			if (!changed)
				return error("Invalid updown parameters");
			c.updown = RingUpDown{ud[0] == 'D', *changed};
		}
		if (argc() >= 5)
			c.hostname = *arg(4);
		return Status::success();
	}

	// Exactly <user_hash> <ip>.
	Status hash_ip(RingCommand &c) const
	{
		if (argc() != 2)
			return invalid();
		auto hash = parse_stock_uint32(*arg(0));
		auto ip = parse_stock_ip(*arg(1));
		if (!hash || !ip)
			return invalid();
		c.user_hash = *hash;
		c.ip = *ip;
		return Status::success();
	}

	// Exactly <user_hash>.
	Status hash_only(RingCommand &c) const
	{
		auto hash = argc() == 1 ? parse_stock_uint32(*arg(0)) : std::nullopt;
		if (!hash)
			return invalid();
		c.user_hash = *hash;
		return Status::success();
	}

	// Exactly <ip>.
	Status ip_only(RingCommand &c) const
	{
		auto ip = argc() == 1 ? parse_stock_ip(*arg(0)) : std::nullopt;
		if (!ip)
			return invalid();
		c.ip = *ip;
		return Status::success();
	}

	// PING/PONG: "<time> <buffer>"; anything else is tolerated and ignored.
	void time_buffer(RingCommand &c) const
	{
		if (argc() < 2)
			return;
		auto t = parse_stock_time(*arg(0));
		auto b = parse_stock_uint64(*arg(1));
		if (t && b) {
			c.timestamp = t;
			c.buffer_bytes = b;
		}
	}

private:
	std::string_view line_;
	std::vector<std::string> fields_;
	size_t shift_ = 0;
};

Result<RingCommand> done(Status st, RingCommand &&c)
{
	if (!st)
		return make_error(st.error());
	return std::move(c);
}

// The handshake-only commands; nullopt = not a handshake command in this context.
std::optional<Result<RingCommand>> parse_handshake(Parser &p, const RingParseContext &ctx)
{
	RingCommand c;
	const std::string &cmd = p.cmd();
	if (cmd == "VERSION" && p.argc() >= 3) {
		c.kind = RingCommandKind::version;
		if (*p.arg(0) != "director") {
			return Result<RingCommand>(make_error("Wrong protocol in socket (" +
							      quote_for_log(*p.arg(0)) +
							      " vs director)"));
		}
		auto major = parse_stock_uint32(*p.arg(1));
		auto minor = parse_stock_uint32(*p.arg(2));
		if (!major || !minor) {
			return Result<RingCommand>(make_error("Invalid protocol version: " +
							      quote_for_log(*p.arg(1)) + "." +
							      quote_for_log(*p.arg(2))));
		}
		if (*major != ring_version_major) {
			return Result<RingCommand>(make_error(
				"Incompatible protocol version: " + std::to_string(*major) +
				" vs " + std::to_string(ring_version_major)));
		}
		c.minor_version = *minor;
		return Result<RingCommand>(std::move(c));
	}
	if (!ctx.version_received)
		return Result<RingCommand>(p.error("Incompatible protocol"));
	if (cmd == "ME") {
		c.kind = RingCommandKind::me;
		Status st = p.ip_port(c);
		if (!st)
			return done(st, std::move(c));
		if (ctx.me_received)
			return Result<RingCommand>(p.error("Duplicate ME"));
		if (p.arg(2) != nullptr) {
			c.timestamp = parse_stock_time(*p.arg(2));
			if (!c.timestamp)
				return Result<RingCommand>(p.error("Invalid ME timestamp"));
		}
		return Result<RingCommand>(std::move(c));
	}
	if (!ctx.me_received)
		return Result<RingCommand>(p.error("Expecting ME command first"));
	if (ctx.in_host_list) {
		if (cmd == "HOST") {
			c.kind = RingCommandKind::handshake_host;
			return done(p.host_body(c), std::move(c));
		}
		if (cmd == "HOST-HAND-END") {
			c.kind = RingCommandKind::host_hand_end;
			auto flag = p.arg(0) != nullptr ? parse_stock_uint32(*p.arg(0)) : std::nullopt;
			c.ring_handshaked = flag && *flag != 0;
			return Result<RingCommand>(std::move(c));
		}
		return Result<RingCommand>(p.error("Unexpected command during host list"));
	}
	if (cmd == "OPTIONS") {
		c.kind = RingCommandKind::options;
		bool consistent = false;
		for (size_t i = 0; i < p.argc(); i++) {
			c.options.push_back(*p.arg(i));
			consistent = consistent || *p.arg(i) == ring_option_consistent_hashing;
		}
		if (!consistent) {
			return Result<RingCommand>(make_error(
				"director_consistent_hashing settings differ between directors. "
				"Set director_consistent_hashing=yes on old directors"));
		}
		return Result<RingCommand>(std::move(c));
	}
	if (cmd == "HOST-HAND-START") {
		c.kind = RingCommandKind::host_hand_start;
		if (!ctx.incoming)
			return Result<RingCommand>(p.error("Host list is only for incoming connections"));
		auto flag = p.arg(0) != nullptr ? parse_stock_uint32(*p.arg(0)) : std::nullopt;
		if (!flag)
			return Result<RingCommand>(p.invalid());
		c.ring_handshaked = *flag != 0;
		return Result<RingCommand>(std::move(c));
	}
	if (ctx.incoming &&
	    (cmd == "U" ||
	     (cmd == "USER" && ctx.peer_minor < ring_minor_handshake_u && p.argc() > 2))) {
		c.kind = RingCommandKind::handshake_user;
		if (p.argc() < 3)
			return Result<RingCommand>(p.invalid());
		std::optional<uint32_t> hash = parse_stock_uint32(*p.arg(0));
		std::optional<IpAddr> ip = parse_stock_ip(*p.arg(1));
		std::optional<uint32_t> ts = parse_stock_uint32(*p.arg(2));
		if (!hash.has_value() || !ip.has_value() || !ts.has_value())
			return Result<RingCommand>(p.invalid());
		c.user_hash = hash.value();
		c.ip = ip.value();
		c.timestamp = int64_t(ts.value());
		c.weak = p.arg(3) != nullptr && !p.arg(3)->empty() && (*p.arg(3))[0] == 'w';
		return Result<RingCommand>(std::move(c));
	}
	if (cmd == "DONE") {
		c.kind = RingCommandKind::done;
		return Result<RingCommand>(std::move(c));
	}
	return std::nullopt;
}

} // namespace

std::string_view ring_command_name(RingCommandKind kind)
{
	return info(kind).name;
}

bool ring_command_has_origin(RingCommandKind kind)
{
	return info(kind).has_origin;
}

unsigned ring_command_min_minor(RingCommandKind kind)
{
	return info(kind).min_minor;
}

bool operator==(const RingCommand &a, const RingCommand &b)
{
	return a.kind == b.kind && a.origin == b.origin && a.minor_version == b.minor_version &&
	       a.ip == b.ip && a.port == b.port && a.timestamp == b.timestamp &&
	       a.user_hash == b.user_hash && a.weak == b.weak &&
	       a.ring_handshaked == b.ring_handshaked && a.vhost_count == b.vhost_count &&
	       a.tag == b.tag && a.updown == b.updown && a.hostname == b.hostname &&
	       a.username == b.username && a.field == b.field && a.value == b.value &&
	       a.options == b.options && a.buffer_bytes == b.buffer_bytes &&
	       a.sync_minor == b.sync_minor && a.sync_timestamp == b.sync_timestamp &&
	       a.hosts_hash == b.hosts_hash && a.reason == b.reason;
}

RingParseContext RingParseContext::established(bool incoming, unsigned peer_minor)
{
	RingParseContext ctx;
	ctx.incoming = incoming;
	ctx.peer_minor = peer_minor;
	ctx.handshake_done = true;
	return ctx;
}

RingParseContext RingParseContext::fresh(bool incoming)
{
	RingParseContext ctx;
	ctx.incoming = incoming;
	ctx.peer_minor = 0;
	ctx.version_received = false;
	ctx.me_received = false;
	return ctx;
}

Result<RingCommand> parse_ring_line(std::string_view line, const RingParseContext &ctx)
{
	std::vector<std::string> fields = split_c_fields(line);
	if (fields.empty())
		return make_error("Received empty line");
	Parser p(line, std::move(fields));

	if (!ctx.handshake_done) {
		if (auto r = parse_handshake(p, ctx))
			return std::move(*r);
	}

	RingCommand c;
	const std::string &cmd = p.cmd();
	if (cmd == "PING" || cmd == "PONG") {
		c.kind = cmd == "PING" ? RingCommandKind::ping : RingCommandKind::pong;
		p.time_buffer(c);
		return c;
	}
	if (cmd == "USER") {
		c.kind = RingCommandKind::user;
		auto hash = p.argc() >= 2 ? parse_stock_uint32(*p.arg(0)) : std::nullopt;
		auto ip = p.argc() >= 2 ? parse_stock_ip(*p.arg(1)) : std::nullopt;
		if (!hash || !ip)
			return p.invalid();
		if (p.arg(2) != nullptr && !(c.timestamp = parse_stock_time(*p.arg(2))))
			return p.invalid();
		c.user_hash = *hash;
		c.ip = *ip;
		return c;
	}
	if (cmd == "USER-KILLED") {
		c.kind = RingCommandKind::user_killed;
		return done(p.hash_only(c), std::move(c));
	}
	if (cmd == "DIRECTOR" || cmd == "DIRECTOR-REMOVE") {
		c.kind = cmd == "DIRECTOR" ? RingCommandKind::director
					   : RingCommandKind::director_remove;
		return done(p.ip_port(c), std::move(c));
	}
	if (cmd == "CONNECT") {
		c.kind = RingCommandKind::connect;
		if (p.argc() != 2)
			return p.invalid();
		return done(p.ip_port(c), std::move(c));
	}
	if (cmd == "QUIT") {
		c.kind = RingCommandKind::quit;
		for (size_t i = 0; i < p.argc(); i++) {
			if (i > 0)
				c.reason += ' ';
			c.reason += *p.arg(i);
		}
		return c;
	}
	if (cmd == "SYNC") {
		c.kind = RingCommandKind::sync;
		if (p.argc() < 3)
			return p.invalid();
		Status st = p.ip_port(c);
		if (!st)
			return make_error(st.error());
		auto seq = parse_stock_uint32(*p.arg(2));
		if (!seq)
			return p.invalid();
		c.origin = RingOrigin{c.ip, c.port, *seq};
		c.ip = IpAddr();
		c.port = 0;
		std::optional<uint32_t> *extra[] = {&c.sync_minor, &c.sync_timestamp, &c.hosts_hash};
		for (size_t i = 0; i < 3 && p.arg(3 + i) != nullptr; i++) {
			if (!(*extra[i] = parse_stock_uint32(*p.arg(3 + i))))
				return p.invalid();
		}
		return c;
	}

	// The rest carry an origin triple.
	static const std::pair<std::string_view, RingCommandKind> origin_cmds[] = {
		{"HOST", RingCommandKind::host},
		{"HOST-REMOVE", RingCommandKind::host_remove},
		{"HOST-FLUSH", RingCommandKind::host_flush},
		{"USER-MOVE", RingCommandKind::user_move},
		{"USER-WEAK", RingCommandKind::user_weak},
		{"USER-KILLED-EVERYWHERE", RingCommandKind::user_killed_everywhere},
		{"USER-KICK", RingCommandKind::user_kick},
		{"USER-KICK-ALT", RingCommandKind::user_kick_alt},
		{"USER-KICK-HASH", RingCommandKind::user_kick_hash},
	};
	bool found = false;
	for (const auto &oc : origin_cmds) {
		if (oc.first == cmd) {
			c.kind = oc.second;
			found = true;
		}
	}
	if (!found)
		return p.error("Unknown command " + quote_for_log(cmd));
	Status st = p.origin(c);
	if (!st)
		return make_error(st.error());
	switch (c.kind) {
	case RingCommandKind::host:
		st = p.host_body(c);
		break;
	case RingCommandKind::host_remove:
	case RingCommandKind::host_flush:
		st = p.ip_only(c);
		break;
	case RingCommandKind::user_move:
	case RingCommandKind::user_weak:
	case RingCommandKind::user_kick_hash:
		st = p.hash_ip(c);
		break;
	case RingCommandKind::user_killed_everywhere:
		st = p.hash_only(c);
		break;
	case RingCommandKind::user_kick:
		if (p.argc() != 1)
			return p.invalid();
		c.username = *p.arg(0);
		break;
	case RingCommandKind::user_kick_alt:
		if (p.argc() != 2)
			return p.invalid();
		c.field = *p.arg(0);
		c.value = *p.arg(1);
		break;
	default:
		break;
	}
	return done(st, std::move(c));
}

std::optional<RingOrigin> ring_origin_checked_before_body(std::string_view line,
							  const RingParseContext &ctx)
{
	std::vector<std::string> fields = split_c_fields(line);
	if (fields.empty())
		return std::nullopt;
	const std::string &cmd = fields[0];
	if (!ctx.handshake_done && (!ctx.version_received || !ctx.me_received || ctx.in_host_list))
		return std::nullopt;
	if (cmd != "HOST" && cmd != "HOST-REMOVE" && cmd != "HOST-FLUSH" && cmd != "USER-MOVE" &&
	    cmd != "USER-KICK" && cmd != "USER-KICK-ALT" && cmd != "USER-KICK-HASH")
		return std::nullopt;
	Parser p(line, std::move(fields));
	RingCommand c;
	if (!p.origin(c))
		return std::nullopt;
	return c.origin;
}

std::optional<FastHandshakeUser> parse_handshake_user_fast(std::string_view line,
							   const RingParseContext &ctx)
{
	if (!ctx.incoming || ctx.handshake_done || !ctx.me_received || ctx.in_host_list ||
	    line.size() < 2 || line[0] != 'U' || line[1] != '\t' ||
	    line.find_first_of(std::string_view("\001\0", 2)) != std::string_view::npos)
		return std::nullopt;
	std::string_view f[4];
	size_t n = 0, start = 2;
	while (n < 4) {
		size_t tab = line.find('\t', start);
		f[n++] = line.substr(start, tab == std::string_view::npos ? tab : tab - start);
		if (tab == std::string_view::npos)
			break;
		start = tab + 1;
	}
	if (n < 3)
		return std::nullopt;
	auto hash = parse_stock_uint32(f[0]);
	auto ts = parse_stock_uint32(f[2]);
	if (!hash || !ts || f[1].empty())
		return std::nullopt;
	return FastHandshakeUser{*hash, f[1], *ts, n == 4 && !f[3].empty() && f[3][0] == 'w'};
}

} // namespace director::core
