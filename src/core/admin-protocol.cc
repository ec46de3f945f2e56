// director-admin (doveadm) protocol parsing and reply formatting. No I/O here.
#include "admin-protocol.h"

#include <vector>

#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

std::string_view admin_result_line(AdminResult r)
{
	switch (r) {
	case AdminResult::ok:
		return admin_reply_ok;
	case AdminResult::not_found:
		return admin_reply_notfound;
	case AdminResult::try_again:
		return admin_reply_tryagain;
	case AdminResult::vhost_count_too_large:
		return "vhost count too large";
	case AdminResult::too_many_tags:
		return "too many tags";
	case AdminResult::too_many_hosts:
		return "too many hosts";
	case AdminResult::tag_cant_change:
		return "host tag can't be changed";
	case AdminResult::host_being_updated:
		return "host is already being updated - try again later";
	case AdminResult::director_list_full:
		return "director list is full";
	case AdminResult::ring_sync_timeout:
		return "Ring sync timed out";
	}
	return "unknown result";
}

namespace {

struct CommandInfo {
	AdminCommandKind kind;
	std::string_view name;
	bool waits_for_sync;
};

// Same order as the kinds, so the table can be indexed by kind.
constexpr CommandInfo commands[] = {
	{AdminCommandKind::host_list, "HOST-LIST", false},
	{AdminCommandKind::host_list_removed, "HOST-LIST-REMOVED", false},
	{AdminCommandKind::director_list, "DIRECTOR-LIST", false},
	{AdminCommandKind::director_add, "DIRECTOR-ADD", true},
	{AdminCommandKind::director_remove, "DIRECTOR-REMOVE", true},
	{AdminCommandKind::host_set, "HOST-SET", true},
	{AdminCommandKind::host_update, "HOST-UPDATE", true},
	{AdminCommandKind::host_up, "HOST-UP", true},
	{AdminCommandKind::host_down, "HOST-DOWN", true},
	{AdminCommandKind::host_remove, "HOST-REMOVE", true},
	{AdminCommandKind::host_flush, "HOST-FLUSH", true},
	{AdminCommandKind::host_reset_users, "HOST-RESET-USERS", false},
	{AdminCommandKind::user_lookup, "USER-LOOKUP", false},
	{AdminCommandKind::user_list, "USER-LIST", false},
	{AdminCommandKind::user_move, "USER-MOVE", false},
	{AdminCommandKind::user_kick, "USER-KICK", false},
	{AdminCommandKind::user_kick_alt, "USER-KICK-ALT", false},
};

Error invalid(AdminCommandKind kind)
{
	return make_error("doveadm sent invalid " + std::string(admin_command_name(kind)) +
			  " parameters");
}

// Stock takes a numeric user argument as the user hash (str_to_uint).
void set_user(AdminCommand &cmd, const std::string &user)
{
	cmd.user = user;
	cmd.user_hash = parse_stock_uint32(user);
}

} // namespace

std::string_view admin_command_name(AdminCommandKind kind)
{
	return commands[static_cast<size_t>(kind)].name;
}

bool admin_command_waits_for_sync(AdminCommandKind kind)
{
	return commands[static_cast<size_t>(kind)].waits_for_sync;
}

bool operator==(const AdminCommand &a, const AdminCommand &b)
{
	return a.kind == b.kind && a.ip == b.ip && a.port == b.port && a.tag == b.tag &&
	       a.vhost_count == b.vhost_count && a.user == b.user && a.user_hash == b.user_hash &&
	       a.field == b.field && a.value == b.value && a.nowait == b.nowait &&
	       a.max_parallel == b.max_parallel;
}

Status parse_admin_handshake(std::string_view line)
{
	const Error incompatible =
		make_error("doveadm not compatible with this server (mixed old and new binaries?)");
	line = line.substr(0, line.find('\0'));
	constexpr std::string_view prefix = "VERSION\tdirector-doveadm\t";
	if (line.substr(0, prefix.size()) != prefix)
		return incompatible;
	line.remove_prefix(prefix.size());
	size_t tab = line.find('\t');
	if (tab == std::string_view::npos)
		return incompatible;
	auto major = parse_stock_uint64(line.substr(0, tab));
	if (!major || *major != 1 || !parse_stock_uint32(line.substr(tab + 1)))
		return incompatible;
	return Status::success();
}

std::string format_admin_handshake()
{
	return "VERSION\tdirector-doveadm\t1\t0";
}

Result<AdminCommand> parse_admin_command(std::string_view line)
{
	std::vector<std::string> f = split_c_fields(line);
	if (f.empty())
		return make_error("doveadm sent empty command line");

	const CommandInfo *info = nullptr;
	for (const CommandInfo &c : commands) {
		if (c.name == f[0])
			info = &c;
	}
	if (info == nullptr) {
		return make_error("doveadm sent unknown command: " +
				  quote_for_log(line.substr(0, line.find('\0'))));
	}

	AdminCommand cmd;
	cmd.kind = info->kind;
	const size_t argc = f.size() - 1;
	// arg(i) is stock's args[i]: nullptr when missing.
	auto arg = [&](size_t i) -> const std::string * {
		return i < argc ? &f[i + 1] : nullptr;
	};

	switch (cmd.kind) {
	case AdminCommandKind::host_list:
	case AdminCommandKind::host_list_removed:
	case AdminCommandKind::director_list:
		break;
	case AdminCommandKind::director_add:
	case AdminCommandKind::director_remove:
		if (arg(0) == nullptr || !(cmd.ip = parse_stock_ip(*arg(0))))
			return invalid(cmd.kind);
		if (arg(1) != nullptr && !(cmd.port = parse_stock_port(*arg(1))))
			return invalid(cmd.kind);
		break;
	case AdminCommandKind::host_set:
	case AdminCommandKind::host_update: {
		if (arg(0) == nullptr)
			return invalid(cmd.kind);
		std::string_view ip_text = *arg(0);
		size_t at = ip_text.find('@');
		if (at != std::string_view::npos) {
			cmd.tag = std::string(ip_text.substr(at + 1));
			ip_text = ip_text.substr(0, at);
		}
		if (!(cmd.ip = parse_stock_ip(ip_text)))
			return invalid(cmd.kind);
		if (arg(1) != nullptr) {
			if (!(cmd.vhost_count = parse_stock_uint32(*arg(1))))
				return invalid(cmd.kind);
			// Stock uses UINT_MAX as its "not given" marker.
			if (*cmd.vhost_count == UINT32_MAX)
				cmd.vhost_count.reset();
		} else if (cmd.kind == AdminCommandKind::host_update) {
			return invalid(cmd.kind);
		}
		break;
	}
	case AdminCommandKind::host_up:
	case AdminCommandKind::host_down:
		if (arg(0) == nullptr || !(cmd.ip = parse_stock_ip(*arg(0)))) {
			return make_error(invalid(cmd.kind).message + ": " +
					  quote_for_log(arg(0) == nullptr ? "" : *arg(0)));
		}
		break;
	case AdminCommandKind::host_remove:
		if (arg(0) == nullptr || !(cmd.ip = parse_stock_ip(*arg(0))))
			return invalid(cmd.kind);
		break;
	case AdminCommandKind::host_flush:
	case AdminCommandKind::user_list:
		if (arg(0) != nullptr && !arg(0)->empty() && !(cmd.ip = parse_stock_ip(*arg(0))))
			return invalid(cmd.kind);
		break;
	case AdminCommandKind::host_reset_users:
		if (arg(0) != nullptr && arg(1) != nullptr) {
			cmd.max_parallel = parse_stock_uint32(*arg(1));
			if (!cmd.max_parallel || *cmd.max_parallel == 0)
				return invalid(cmd.kind);
		}
		if (arg(0) != nullptr && !arg(0)->empty() && !(cmd.ip = parse_stock_ip(*arg(0)))) {
			return make_error("doveadm sent invalid HOST-RESET-USERS ip: " +
					  quote_for_log(*arg(0)));
		}
		break;
	case AdminCommandKind::user_lookup:
		set_user(cmd, arg(0) == nullptr ? std::string() : *arg(0));
		if (arg(0) != nullptr && arg(1) != nullptr)
			cmd.tag = *arg(1);
		break;
	case AdminCommandKind::user_move:
		if (arg(0) == nullptr || arg(1) == nullptr || !(cmd.ip = parse_stock_ip(*arg(1))))
			return invalid(cmd.kind);
		set_user(cmd, *arg(0));
		break;
	case AdminCommandKind::user_kick:
		if (arg(0) == nullptr)
			return invalid(cmd.kind);
		cmd.user = *arg(0);
		cmd.nowait = arg(1) != nullptr && *arg(1) == "nowait";
		break;
	case AdminCommandKind::user_kick_alt:
		if (argc < 2)
			return invalid(cmd.kind);
		cmd.field = *arg(0);
		cmd.value = *arg(1);
		cmd.nowait = arg(2) != nullptr && *arg(2) == "nowait";
		break;
	}
	return cmd;
}

bool vhost_count_too_large(const AdminCommand &cmd)
{
	return (cmd.kind == AdminCommandKind::host_set ||
		cmd.kind == AdminCommandKind::host_update) &&
	       cmd.vhost_count && *cmd.vhost_count > max_vhost_count;
}

std::string format_admin_command(const AdminCommand &cmd)
{
	std::string out(admin_command_name(cmd.kind));
	auto field = [&out](std::string_view text) {
		out += '\t';
		tab_escape_append(out, text);
	};
	switch (cmd.kind) {
	case AdminCommandKind::host_list:
	case AdminCommandKind::host_list_removed:
	case AdminCommandKind::director_list:
		break;
	case AdminCommandKind::director_add:
	case AdminCommandKind::director_remove:
		field(cmd.ip ? cmd.ip->to_string() : "");
		if (cmd.port)
			field(std::to_string(*cmd.port));
		break;
	case AdminCommandKind::host_set:
	case AdminCommandKind::host_update:
		field((cmd.ip ? cmd.ip->to_string() : "") + (cmd.tag.empty() ? "" : "@" + cmd.tag));
		if (cmd.vhost_count)
			field(std::to_string(*cmd.vhost_count));
		break;
	case AdminCommandKind::host_up:
	case AdminCommandKind::host_down:
	case AdminCommandKind::host_remove:
		field(cmd.ip ? cmd.ip->to_string() : "");
		break;
	case AdminCommandKind::host_flush:
	case AdminCommandKind::user_list:
		if (cmd.ip)
			field(cmd.ip->to_string());
		break;
	case AdminCommandKind::host_reset_users:
		if (cmd.ip || cmd.max_parallel)
			field(cmd.ip ? cmd.ip->to_string() : "");
		if (cmd.max_parallel)
			field(std::to_string(*cmd.max_parallel));
		break;
	case AdminCommandKind::user_lookup:
		field(cmd.user);
		if (!cmd.tag.empty())
			field(cmd.tag);
		break;
	case AdminCommandKind::user_move:
		field(cmd.user);
		field(cmd.ip ? cmd.ip->to_string() : "");
		break;
	case AdminCommandKind::user_kick:
		field(cmd.user);
		if (cmd.nowait)
			field("nowait");
		break;
	case AdminCommandKind::user_kick_alt:
		field(cmd.field);
		field(cmd.value);
		if (cmd.nowait)
			field("nowait");
		break;
	}
	return out;
}

std::string format_host_list_line(const IpAddr &ip, uint32_t vhost_count, uint32_t user_count,
				  std::string_view tag, bool down, int64_t last_updown_change)
{
	std::string out = ip.to_string();
	out += '\t';
	out += std::to_string(vhost_count);
	out += '\t';
	out += std::to_string(user_count);
	out += '\t';
	tab_escape_append(out, tag);
	out += down ? "\tD\t" : "\tU\t";
	out += std::to_string(last_updown_change);
	return out;
}

std::string format_user_lookup_line(const std::optional<IpAddr> &current_ip,
				    uint32_t expire_time, const std::optional<IpAddr> &hashed_ip,
				    const std::optional<IpAddr> &initial_ip)
{
	std::string out;
	if (current_ip) {
		out += current_ip->to_string();
		out += '\t';
		out += std::to_string(expire_time);
	} else {
		out += "\t0";
	}
	out += '\t';
	if (hashed_ip)
		out += hashed_ip->to_string();
	out += '\t';
	if (initial_ip)
		out += initial_ip->to_string();
	return out;
}

std::string format_user_list_line(uint32_t user_hash, uint32_t expire_time,
				  const IpAddr &host_ip)
{
	return std::to_string(user_hash) + "\t" + std::to_string(expire_time) + "\t" +
	       host_ip.to_string();
}

namespace {

void append_director_host(std::string &out, const DirectorListHost &host)
{
	out += host.ip.to_string();
	out += '\t';
	out += std::to_string(host.port);
	out += '\t';
	out += host.type;
	out += '\t';
	out += std::to_string(host.last_failed);
	out += '\t';
}

} // namespace

std::string format_director_list_connection_line(const std::optional<DirectorListHost> &host,
						 const DirectorListConnection &conn)
{
	std::string out;
	if (host)
		append_director_host(out, *host);
	out += conn.status;
	for (uint64_t n : {uint64_t(conn.last_ping_msecs), conn.bytes_read, conn.bytes_sent,
			   conn.bytes_buffered, conn.peak_bytes_buffered}) {
		out += '\t';
		out += std::to_string(n);
	}
	out += '\t';
	out += std::to_string(conn.last_input);
	out += '\t';
	out += std::to_string(conn.last_output);
	return out;
}

std::string format_director_list_entry_line(const DirectorListHost &host,
					    std::optional<std::string_view> ring_status,
					    uint32_t last_sync_msecs)
{
	std::string out;
	append_director_host(out, host);
	if (ring_status) {
		out += *ring_status;
		out += '\t';
		out += std::to_string(last_sync_msecs);
	}
	return out;
}

std::string director_ring_status_text(bool ring_handshaked, bool ring_synced,
				      int64_t secs_since_last_sync)
{
	if (!ring_handshaked)
		return "ring handshaking";
	if (ring_synced)
		return "ring synced";
	return "ring syncing - last sync " + std::to_string(int32_t(secs_since_last_sync)) +
	       " secs ago";
}

std::string director_connection_status_text(bool handshaked, bool incoming, bool synced,
					    uint32_t handshake_users)
{
	if (!handshaked) {
		return "handshaking - " + std::to_string(handshake_users) +
		       (incoming ? " USERs received" : " USERs sent");
	}
	return synced ? "synced" : "syncing";
}

} // namespace director::core
