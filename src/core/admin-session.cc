// AdminSession: command dispatch of one director-admin connection. No I/O here.
#include "admin-session.h"

#include "director.h"
#include "user-list.h"

namespace director::core {

namespace {
// Our extension listing health check states.
constexpr std::string_view health_list_command = "HEALTH-LIST";
} // namespace

AdminSession::AdminSession(Director &director, JobId id, AdminSessionPort &port)
	: director_(director), id_(id), port_(port)
{
}

AdminSession::~AdminSession()
{
	list_.reset();
	director_.admin_gone(id_);
}

std::string AdminSession::greeting()
{
	return format_admin_handshake() + "\n";
}

Status AdminSession::input_line(std::string_view line, Now now, Effects &fx)
{
	if (!handshaked_) {
		Status st = parse_admin_handshake(line);
		if (st.ok())
			handshaked_ = true;
		return st;
	}
	if (line == health_list_command) {
		if (std::optional<std::string> reply = port_.admin_health_list()) {
			port_.admin_send(*reply);
			return Status::success();
		}
	}
	Result<AdminCommand> cmd = parse_admin_command(line);
	if (!cmd.ok())
		return make_error(cmd.error());
	run(*cmd, now, fx);
	return Status::success();
}

void AdminSession::reply_later(AdminResult result)
{
	awaiting_reply_ = false;
	send_line(std::string(admin_result_line(result)));
}

void AdminSession::resume(Now now, Effects &fx)
{
	if (!waiting_)
		return;
	AdminCommand cmd = std::move(*waiting_);
	waiting_.reset();
	run(cmd, now, fx);
}

bool AdminSession::continue_user_list(size_t max_bytes)
{
	if (!list_)
		return true;
	std::string out;
	bool done = list_->next_chunk(out, max_bytes);
	if (done)
		list_.reset();
	if (!out.empty())
		port_.admin_send(out);
	return done;
}

void AdminSession::run(const AdminCommand &cmd, Now now, Effects &fx)
{
	if (admin_command_waits_for_sync(cmd.kind) && !director_.admin_may_run(id_)) {
		// Stock runs these only on a synced ring.
		waiting_ = cmd;
		return;
	}
	dispatch(cmd, now, fx);
}

void AdminSession::send_line(std::string line)
{
	line += '\n';
	port_.admin_send(line);
}

void AdminSession::reply(AdminReply r)
{
	if (r.later)
		awaiting_reply_ = true;
	else
		send_line(std::string(admin_result_line(r.result)));
}

uint32_t AdminSession::hash_of(const AdminCommand &cmd) const
{
	return cmd.user_hash ? *cmd.user_hash : director_.user_hash(cmd.user);
}

std::string AdminSession::host_list_reply() const
{
	std::string out;
	for (const HostListEntry &h : director_.host_list()) {
		out += format_host_list_line(h.ip, h.vhost_count, uint32_t(h.user_count), h.tag,
					     h.down, h.last_updown_change);
		out += '\n';
	}
	return out + "\n";
}

std::string AdminSession::host_list_removed_reply() const
{
	std::string out;
	for (const IpAddr &ip : director_.hosts_removed_from_config())
		out += ip.to_string() + "\n";
	return out + "\n";
}

std::string AdminSession::director_list_reply(Now now)
{
	std::string out;
	for (const DirectorListEntry &e : director_.director_list(now)) {
		if (!e.has_connection) {
			DirectorListHost host{*e.ip, e.port, e.type, e.last_failed};
			out += format_director_list_entry_line(
				host,
				e.type == "self" ? std::optional<std::string_view>(e.status)
						 : std::nullopt,
				e.last_ping_msecs);
		} else {
			DirectorListConnection c;
			c.status = e.status;
			c.last_ping_msecs = e.last_ping_msecs;
			c.last_input = e.last_input;
			c.last_output = e.last_output;
			port_.admin_ring_counters(e.conn, c);
			std::optional<DirectorListHost> host;
			if (e.ip)
				host = DirectorListHost{*e.ip, e.port, e.type, e.last_failed};
			out += format_director_list_connection_line(host, c);
		}
		out += '\n';
	}
	return out + "\n";
}

void AdminSession::dispatch(const AdminCommand &cmd, Now now, Effects &fx)
{
	Director &d = director_;
	switch (cmd.kind) {
	case AdminCommandKind::host_list:
		port_.admin_send(host_list_reply());
		break;
	case AdminCommandKind::host_list_removed:
		port_.admin_send(host_list_removed_reply());
		break;
	case AdminCommandKind::director_list:
		port_.admin_send(director_list_reply(now));
		break;
	case AdminCommandKind::director_add:
		reply(d.director_add(*cmd.ip, cmd.port, now, fx));
		break;
	case AdminCommandKind::director_remove:
		reply(d.director_remove(id_, *cmd.ip, cmd.port, now, fx));
		break;
	case AdminCommandKind::host_set:
	case AdminCommandKind::host_update:
		if (vhost_count_too_large(cmd)) {
			send_line(std::string(admin_result_line(AdminResult::vhost_count_too_large)));
			break;
		}
		reply(d.host_set(id_, *cmd.ip, cmd.tag,
				 cmd.vhost_count ? std::optional<unsigned>(*cmd.vhost_count)
						 : std::nullopt,
				 cmd.kind == AdminCommandKind::host_update, now, fx));
		break;
	case AdminCommandKind::host_up:
	case AdminCommandKind::host_down:
		reply(d.host_set_down(id_, *cmd.ip, cmd.kind == AdminCommandKind::host_down, now,
				      fx));
		break;
	case AdminCommandKind::host_remove:
		reply(d.host_remove(id_, *cmd.ip, now, fx));
		break;
	case AdminCommandKind::host_flush:
		reply(d.host_flush(id_, cmd.ip, now, fx));
		break;
	case AdminCommandKind::host_reset_users:
		reply(d.host_reset_users(id_, cmd.ip,
					 cmd.max_parallel.value_or(d.config().max_parallel_moves),
					 now, fx));
		break;
	case AdminCommandKind::user_lookup: {
		UserLookup l = d.user_lookup(hash_of(cmd), cmd.tag, now);
		send_line(format_user_lookup_line(l.current, uint32_t(l.expire_time), l.hashed,
						  l.initial_config));
		break;
	}
	case AdminCommandKind::user_list:
		// Written by continue_user_list() as the client reads it.
		list_ = d.user_listing(cmd.ip);
		break;
	case AdminCommandKind::user_move:
		reply(d.user_move(hash_of(cmd), *cmd.ip, now, fx));
		break;
	case AdminCommandKind::user_kick:
		reply(d.user_kick(id_, "", cmd.user, cmd.nowait, fx));
		break;
	case AdminCommandKind::user_kick_alt:
		reply(d.user_kick(id_, cmd.field, cmd.value, cmd.nowait, fx));
		break;
	}
}

} // namespace director::core
