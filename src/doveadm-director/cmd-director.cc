// "doveadm director ..." for Dovecot 2.4, whose doveadm no longer has these
// commands: the same subcommands, parameters, output and exit codes as 2.3's
// built-in ones, talking the director-admin protocol to our director.
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "adapter/dovecot.h"
#include "core/admin-protocol.h"
#include "core/ip-addr.h"
#include "core/tab-escape.h"
#include "core/user-hash.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
extern "C" {
#include "auth-master.h"
#include "doveadm.h"
#include "doveadm-print.h"
#include "doveadm-settings.h"
#include "doveadm-protocol.h"
#include "settings-shim.h"
}
#pragma GCC diagnostic pop

#include "doveadm-director/admin-client.h"
#include "doveadm-director/cmd-director.h"

namespace {

using director::core::AdminCommand;
using director::core::AdminCommandKind;
namespace core = director::core;
using director::doveadm::AdminClient;

using director::doveadm::admin_fail;

AdminCommand admin_cmd(AdminCommandKind kind)
{
	AdminCommand c;
	c.kind = kind;
	return c;
}

// An address doveadm resolved itself (host_ips()): always parses.
director::core::IpAddr resolved_ip(const std::string &ip)
{
	auto parsed = director::core::IpAddr::parse(ip);
	i_assert(parsed.has_value());
	return *parsed;
}

// doveadm's printers may keep the pointer until they flush: print a copy
// that lives as long as the command.
void print(struct doveadm_cmd_context *cctx, const std::string &value)
{
	doveadm_print(p_strdup(cctx->pool, value.c_str()));
}

std::string param_str(struct doveadm_cmd_context *cctx, const char *name)
{
	const char *value;
	return doveadm_cmd_param_str(cctx, name, &value) ? value : "";
}

bool param_given(struct doveadm_cmd_context *cctx, const char *name)
{
	const char *value;
	return doveadm_cmd_param_str(cctx, name, &value);
}

bool open_admin(struct doveadm_cmd_context *cctx, AdminClient &admin)
{
	const char *path = nullptr;
	(void)doveadm_cmd_param_str(cctx, "socket-path", &path);
	return admin.open(director::doveadm::admin_socket_path(path));
}

void usage_error(struct doveadm_cmd_context *cctx)
{
	doveadm_exit_code = EX_USAGE;
	i_error("Usage: doveadm %s %s", cctx->cmd->name, cctx->cmd->usage);
}

std::string time_str(const std::string &secs_text)
{
	unsigned long long secs = strtoull(secs_text.c_str(), nullptr, 10);
	if (secs == 0)
		return "-";
	time_t t = time_t(secs);
	struct tm tm;
	char buf[32];
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

// The IPs a host argument names, as 2.3 doveadm resolves it.
std::vector<std::string> host_ips(const std::string &host)
{
	std::vector<std::string> out;
	struct ip_addr ip;
	if (net_addr2ip(host.c_str(), &ip) == 0) {
		out.push_back(net_ip2addr(&ip));
		return out;
	}
	struct ip_addr *ips;
	unsigned int count;
	int ret = net_gethostbyname(host.c_str(), &ips, &count);
	if (ret != 0) {
		admin_fail(EX_NOHOST, "gethostname(%s) failed: %s", host.c_str(), net_gethosterror(ret));
		return out;
	}
	for (unsigned i = 0; i < count; i++)
		out.push_back(net_ip2addr(&ips[i]));
	return out;
}

director::core::UsernameHash username_hash(struct doveadm_cmd_context *cctx)
{
	const struct director_settings_shim *set;
	const char *error;
	std::string format = director::core::setting_default::director_username_hash;
	if (director_settings_shim_get(cctx->set_event, &set, &error) == 0) {
		format = set->director_username_hash;
		director_settings_shim_free(&set);
	} else {
		i_error("%s", error);
	}
	auto hash = director::core::UsernameHash::parse(format);
	if (!hash.ok()) {
		i_error("Invalid director_username_hash=%s: %s", format.c_str(),
			hash.error().c_str());
		return director::core::UsernameHash();
	}
	return std::move(hash).value();
}

void cmd_status(struct doveadm_cmd_context *cctx)
{
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	if (param_given(cctx, "user")) {
		std::string user = param_str(cctx, "user");
		AdminCommand c = admin_cmd(AdminCommandKind::user_lookup);
		c.user = user;
		c.tag = param_str(cctx, "tag");
		auto reply = admin.command(c);
		if (!reply)
			return;
		auto f = director::core::split_tabescaped(*reply);
		char *end = nullptr;
		unsigned long expires = f.size() == 4 ? strtoul(f[1].c_str(), &end, 10) : 0;
		if (f.size() != 4 || end == nullptr || *end != '\0') {
			admin_fail(EX_PROTOCOL, "Invalid reply from director");
			return;
		}
		doveadm_print_init(DOVEADM_PRINT_TYPE_FORMATTED);
		doveadm_print_formatted_set_format("Current: %{current} (expires %{expires})\n"
						   "Hashed: %{hashed}\n"
						   "Initial config: %{initial}\n");
		doveadm_print_header_simple("current");
		doveadm_print_header_simple("expires");
		doveadm_print_header_simple("hashed");
		doveadm_print_header_simple("initial");
		print(cctx, f[0].empty() ? std::string("n/a") : f[0]);
		print(cctx, expires == 0 ? std::string("-1") : time_str(f[1]));
		print(cctx, f[2]);
		print(cctx, f[3]);
		return;
	}
	auto rows = admin.listing(admin_cmd(AdminCommandKind::host_list));
	if (!rows)
		return;
	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	doveadm_print_header_simple("mail server ip");
	doveadm_print_header_simple("tag");
	doveadm_print_header_simple("vhosts");
	doveadm_print_header_simple("state");
	doveadm_print_header_simple("state changed");
	doveadm_print_header_simple("users");
	for (const auto &f : *rows) {
		if (f.size() < 6) {
			admin_fail(EX_PROTOCOL, "Invalid reply from director");
			return;
		}
		print(cctx, f[0]);
		print(cctx, f[3]);
		print(cctx, f[1]);
		print(cctx, f[4] == "D" ? "down" : "up");
		print(cctx, time_str(f[5]));
		print(cctx, f[2]);
	}
}

// Without -f the names come from the userdb's user list, as on 2.3; a
// failed listing is logged and the map printed with what was read. 2.4's
// auth lists nobody for the empty mask 2.3's doveadm used: "*" lists all.
void userdb_names(const director::core::UsernameHash &hash,
		  std::multimap<uint32_t, std::string> &names)
{
	const char *path = t_strconcat(doveadm_settings->base_dir, "/auth-userdb", nullptr);
	struct auth_master_connection *conn = auth_master_init(path, auth_master_flags(0));
	struct auth_master_user_list_ctx *ctx = auth_master_user_list_init(conn, "*", nullptr);
	const char *name;
	while ((name = auth_master_user_list_next(ctx)) != nullptr)
		names.emplace(hash.hash(name), name);
	if (auth_master_user_list_deinit(&ctx) < 0)
		admin_fail(EX_TEMPFAIL, "user listing failed");
	auth_master_deinit(&conn);
}

void cmd_map(struct doveadm_cmd_context *cctx)
{
	director::core::UsernameHash hash = username_hash(cctx);
	if (param_given(cctx, "user-map")) {
		doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
		doveadm_print_header("hash", "hash", DOVEADM_PRINT_HEADER_FLAG_HIDE_TITLE);
		doveadm_print_num(hash.hash(param_str(cctx, "user-map")));
		return;
	}
	std::multimap<uint32_t, std::string> names;
	if (param_given(cctx, "users-file")) {
		std::ifstream in(param_str(cctx, "users-file"));
		if (!in) {
			admin_fail(EX_NOINPUT, "open(%s) failed: %m",
			     param_str(cctx, "users-file").c_str());
			return;
		}
		for (std::string name; std::getline(in, name);) {
			if (!name.empty())
				names.emplace(hash.hash(name), name);
		}
	} else {
		userdb_names(hash, names);
	}
	if (param_given(cctx, "hash-map")) {
		uint32_t h = uint32_t(strtoul(param_str(cctx, "hash-map").c_str(), nullptr, 10));
		doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
		doveadm_print_header("user", "user", DOVEADM_PRINT_HEADER_FLAG_HIDE_TITLE);
		auto range = names.equal_range(h);
		for (auto it = range.first; it != range.second; ++it)
			print(cctx, it->second);
		return;
	}
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	AdminCommand cmd = admin_cmd(AdminCommandKind::user_list);
	std::vector<std::string> ips;
	if (param_given(cctx, "host")) {
		ips = host_ips(param_str(cctx, "host"));
		if (ips.empty())
			return;
		if (ips.size() == 1)
			cmd.ip = resolved_ip(ips[0]);
	}
	auto rows = admin.listing(cmd);
	if (!rows)
		return;
	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	doveadm_print_header_simple("user");
	doveadm_print_header_simple("hash");
	doveadm_print_header_simple("mail server ip");
	doveadm_print_header_simple("expire time");
	for (const auto &f : *rows) {
		if (f.size() < 3) {
			admin_fail(EX_PROTOCOL, "Invalid USER-LIST reply: %s", f.empty() ? "" : f[0].c_str());
			return;
		}
		if (ips.size() > 1) {
			bool wanted = false;
			for (const auto &ip : ips)
				wanted = wanted || ip == f[2];
			if (!wanted)
				continue;
		}
		uint32_t h = uint32_t(strtoul(f[0].c_str(), nullptr, 10));
		auto range = names.equal_range(h);
		std::vector<std::string> users;
		for (auto it = range.first; it != range.second; ++it)
			users.push_back(it->second);
		if (users.empty())
			users.push_back("<unknown>");
		for (const auto &u : users) {
			print(cctx, u);
			print(cctx, f[0]);
			print(cctx, f[2]);
			print(cctx, time_str(f[1]));
		}
	}
}

// HOST-SET / HOST-UPDATE per resolved IP.
void host_set(struct doveadm_cmd_context *cctx, const char *cmd_name, bool count_required)
{
	std::string host = param_str(cctx, "host");
	std::string tag;
	bool have_tag = param_given(cctx, "tag");
	if (have_tag)
		tag = param_str(cctx, "tag");
	size_t at = host.find('@');
	if (at != std::string::npos) {
		if (!have_tag) {
			tag = host.substr(at + 1);
			have_tag = true;
		}
		host.erase(at);
	}
	std::string count = param_str(cctx, "vhost-count");
	if (host.empty() || (count_required && count.empty())) {
		usage_error(cctx);
		return;
	}
	if (host.find_first_not_of("0123456789") == std::string::npos) {
		admin_fail(EX_USAGE, "Invalid host '%s'", host.c_str());
		return;
	}
	std::vector<std::string> ips = host_ips(host);
	if (ips.empty())
		return;
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	for (const auto &ip : ips) {
		std::string cmd = std::string(cmd_name) + "\t" + ip;
		if (have_tag && !tag.empty())
			cmd += "@" + tag;
		if (!count.empty())
			cmd += "\t" + count;
		auto reply = admin.command_line(cmd);
		if (!reply)
			return;
		if (*reply == core::admin_reply_ok) {
			if (doveadm_verbose)
				printf("%s: OK\n", ip.c_str());
		} else {
			admin_fail(EX_TEMPFAIL, "%s: %s", ip.c_str(),
			     *reply == core::admin_reply_notfound ? "doesn't exist" : reply->c_str());
		}
	}
}

void cmd_add(struct doveadm_cmd_context *cctx)
{
	host_set(cctx, "HOST-SET", false);
}

void cmd_update(struct doveadm_cmd_context *cctx)
{
	host_set(cctx, "HOST-UPDATE", true);
}

// HOST-UP / HOST-DOWN / HOST-REMOVE per resolved IP.
void host_cmd(struct doveadm_cmd_context *cctx, AdminCommandKind kind, const char *done_word)
{
	std::string host = param_str(cctx, "host");
	if (host.empty()) {
		usage_error(cctx);
		return;
	}
	std::vector<std::string> ips = host_ips(host);
	if (ips.empty())
		return;
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	for (const auto &ip : ips) {
		AdminCommand c = admin_cmd(kind);
		c.ip = resolved_ip(ip);
		auto reply = admin.command(c);
		if (!reply)
			return;
		if (*reply == core::admin_reply_ok) {
			if (doveadm_verbose)
				printf("%s: %s\n", ip.c_str(), done_word);
		} else if (*reply == core::admin_reply_notfound) {
			admin_fail(DOVEADM_EX_NOTFOUND, "%s: doesn't exist", ip.c_str());
		} else {
			admin_fail(EX_TEMPFAIL, "%s: %s", ip.c_str(), reply->c_str());
		}
	}
}

void cmd_up(struct doveadm_cmd_context *cctx)
{
	host_cmd(cctx, AdminCommandKind::host_up, "up");
}

void cmd_down(struct doveadm_cmd_context *cctx)
{
	host_cmd(cctx, AdminCommandKind::host_down, "down");
}

void cmd_remove(struct doveadm_cmd_context *cctx)
{
	host_cmd(cctx, AdminCommandKind::host_remove, "removed");
}

void cmd_move(struct doveadm_cmd_context *cctx)
{
	std::string user = param_str(cctx, "user");
	std::string host = param_str(cctx, "host");
	if (user.empty() || host.empty()) {
		usage_error(cctx);
		return;
	}
	uint32_t hash = username_hash(cctx).hash(user);
	std::vector<std::string> ips = host_ips(host);
	if (ips.empty())
		return;
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	AdminCommand c = admin_cmd(AdminCommandKind::user_move);
	c.user = std::to_string(hash);
	c.ip = resolved_ip(ips[0]);
	auto reply = admin.command(c);
	if (!reply)
		return;
	if (*reply == core::admin_reply_ok) {
		if (doveadm_verbose)
			printf("User hash %u moved to %s\n", hash, ips[0].c_str());
	} else if (*reply == core::admin_reply_notfound) {
		admin_fail(DOVEADM_EX_NOTFOUND, "Host '%s' doesn't exist", ips[0].c_str());
	} else if (*reply == core::admin_reply_tryagain) {
		admin_fail(EX_TEMPFAIL, "User is already being moved, wait a while for it to be finished");
	} else {
		admin_fail(EX_TEMPFAIL, "failed: %s", reply->c_str());
	}
}

void cmd_kick(struct doveadm_cmd_context *cctx)
{
	std::string user = param_str(cctx, "user");
	if (user.empty()) {
		usage_error(cctx);
		return;
	}
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	AdminCommand cmd = admin_cmd(AdminCommandKind::user_kick);
	cmd.user = user;
	if (param_given(cctx, "passdb-field")) {
		cmd.kind = AdminCommandKind::user_kick_alt;
		cmd.field = param_str(cctx, "passdb-field");
		cmd.value = user;
	}
	auto reply = admin.command(cmd);
	if (reply && *reply != core::admin_reply_ok)
		admin_fail(EX_TEMPFAIL, "failed: %s", reply->c_str());
}

void cmd_flush(struct doveadm_cmd_context *cctx)
{
	std::string host = param_str(cctx, "host");
	if (host.empty()) {
		usage_error(cctx);
		return;
	}
	bool force = false;
	(void)doveadm_cmd_param_bool(cctx, "force-flush", &force);
	int64_t max_parallel = 0;
	(void)doveadm_cmd_param_int64(cctx, "max-parallel", &max_parallel);
	std::string suffix = max_parallel > 0 ? "\t" + std::to_string(max_parallel) : "";
	AdminClient admin;
	if (host == "all") {
		if (!open_admin(cctx, admin))
			return;
		auto reply = admin.command_line(force ? "HOST-FLUSH" : "HOST-RESET-USERS" +
								   (suffix.empty() ? "" : "\t" + suffix));
		if (reply && *reply != core::admin_reply_ok)
			admin_fail(EX_TEMPFAIL, "failed: %s", reply->c_str());
		return;
	}
	std::vector<std::string> ips = host_ips(host);
	if (ips.empty() || !open_admin(cctx, admin))
		return;
	for (const auto &ip : ips) {
		auto reply = admin.command_line((force ? "HOST-FLUSH\t" : "HOST-RESET-USERS\t") + ip +
					   (force ? "" : suffix));
		if (!reply)
			return;
		if (*reply == core::admin_reply_notfound) {
			i_warning("%s: doesn't exist", ip.c_str());
			doveadm_exit_code = DOVEADM_EX_NOTFOUND;
		} else if (*reply != core::admin_reply_ok) {
			admin_fail(EX_TEMPFAIL, "%s: %s", ip.c_str(), reply->c_str());
		}
	}
}

void cmd_dump(struct doveadm_cmd_context *cctx)
{
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	std::string args = param_given(cctx, "socket-path")
				   ? " -a " + param_str(cctx, "socket-path")
				   : "";
	auto hosts = admin.listing(admin_cmd(AdminCommandKind::host_list));
	if (!hosts)
		return;
	doveadm_print_init(DOVEADM_PRINT_TYPE_FLOW);
	doveadm_print_header("command", "command", DOVEADM_PRINT_HEADER_FLAG_HIDE_TITLE);
	for (const auto &f : *hosts) {
		if (f.size() < 4)
			continue;
		std::string host = f[0] + (f[3].empty() ? "" : "@" + f[3]);
		print(cctx, ("doveadm director add" + args + " " + host + " " + f[1]));
	}
	auto removed = admin.listing(admin_cmd(AdminCommandKind::host_list_removed));
	if (!removed)
		return;
	for (const auto &f : *removed) {
		if (!f.empty())
			print(cctx, ("doveadm director remove" + args + " " + f[0]));
	}
}

void ring_cmd(struct doveadm_cmd_context *cctx, const char *cmd_name)
{
	std::string ip = param_str(cctx, "ip");
	if (ip.empty()) {
		usage_error(cctx);
		return;
	}
	std::string cmd = std::string(cmd_name) + "\t" + ip;
	if (param_given(cctx, "port"))
		cmd += "\t" + param_str(cctx, "port");
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	auto reply = admin.command_line(cmd);
	if (!reply || *reply == core::admin_reply_ok)
		return;
	if (*reply == core::admin_reply_notfound)
		admin_fail(DOVEADM_EX_NOTFOUND, "Not found");
	else
		admin_fail(EX_TEMPFAIL, "Failed: %s", reply->c_str());
}

void cmd_ring_add(struct doveadm_cmd_context *cctx)
{
	ring_cmd(cctx, "DIRECTOR-ADD");
}

void cmd_ring_remove(struct doveadm_cmd_context *cctx)
{
	ring_cmd(cctx, "DIRECTOR-REMOVE");
}

void cmd_ring_status(struct doveadm_cmd_context *cctx)
{
	AdminClient admin;
	if (!open_admin(cctx, admin))
		return;
	auto rows = admin.listing(admin_cmd(AdminCommandKind::director_list));
	if (!rows)
		return;
	static const char *const headers[] = {
		"director ip", "port", "type", "last failed", "status", "ping ms",
		"input", "output", "buffered", "buffered peak", "last read", "last write",
	};
	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	for (const char *h : headers)
		doveadm_print_header_simple(h);
	for (const auto &f : *rows) {
		for (size_t i = 0; i < 12; i++) {
			if (i >= f.size()) {
				print(cctx, "-");
			} else if (i == 3 || i == 10 || i == 11) {
				std::string t = time_str(f[i]);
				print(cctx, t == "-" ? std::string("never") : t);
			} else {
				print(cctx, f[i]);
			}
		}
	}
}

// Dovecot's DOVEADM_CMD_PARAM macros leave members to zero-initialisation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define SOCKET_PARAM DOVEADM_CMD_PARAM('a', "socket-path", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE)
#define POSITIONAL(name) DOVEADM_CMD_PARAM('\0', name, CMD_PARAM_STR, CMD_PARAM_FLAG_POSITIONAL)

struct doveadm_cmd_ver2 director_commands[] = {
	{
		.cmd = cmd_status,
		.name = "director status",
		.usage = "[-a <director socket path>] [<user>] [<tag>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("user")
		POSITIONAL("tag")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_map,
		.name = "director map",
		.usage = "[-a <director socket path>] [-f <users file>] [-h | -u] [<host>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		DOVEADM_CMD_PARAM('f', "users-file", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE)
		DOVEADM_CMD_PARAM('h', "hash-map", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE)
		DOVEADM_CMD_PARAM('u', "user-map", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE)
		POSITIONAL("host")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_add,
		.name = "director add",
		.usage = "[-a <director socket path>] [-t <tag>] <host> [<vhost count>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		DOVEADM_CMD_PARAM('t', "tag", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE)
		POSITIONAL("host")
		POSITIONAL("vhost-count")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_update,
		.name = "director update",
		.usage = "[-a <director socket path>] <host> <vhost count>",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("host")
		POSITIONAL("vhost-count")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_up,
		.name = "director up",
		.usage = "[-a <director socket path>] <host>",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("host")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_down,
		.name = "director down",
		.usage = "[-a <director socket path>] <host>",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("host")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_remove,
		.name = "director remove",
		.usage = "[-a <director socket path>] <host>",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("host")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_move,
		.name = "director move",
		.usage = "[-a <director socket path>] <user> <host>",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("user")
		POSITIONAL("host")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_kick,
		.name = "director kick",
		.usage = "[-a <director socket path>] [-f <passdb field>] <user>",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		DOVEADM_CMD_PARAM('f', "passdb-field", CMD_PARAM_STR, CMD_PARAM_FLAG_NONE)
		POSITIONAL("user")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_flush,
		.name = "director flush",
		.usage = "[-a <director socket path>] [-F] [--max-parallel <n>] <host>|all",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		DOVEADM_CMD_PARAM('F', "force-flush", CMD_PARAM_BOOL, CMD_PARAM_FLAG_NONE)
		DOVEADM_CMD_PARAM('\0', "max-parallel", CMD_PARAM_INT64, CMD_PARAM_FLAG_UNSIGNED)
		POSITIONAL("host")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_dump,
		.name = "director dump",
		.usage = "[-a <director socket path>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_ring_add,
		.name = "director ring add",
		.usage = "[-a <director socket path>] <ip> [<port>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("ip")
		POSITIONAL("port")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_ring_remove,
		.name = "director ring remove",
		.usage = "[-a <director socket path>] <ip> [<port>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		POSITIONAL("ip")
		POSITIONAL("port")
		DOVEADM_CMD_PARAMS_END
	},
	{
		.cmd = cmd_ring_status,
		.name = "director ring status",
		.usage = "[-a <director socket path>]",
		DOVEADM_CMD_PARAMS_START
		SOCKET_PARAM
		DOVEADM_CMD_PARAMS_END
	},
};

#pragma GCC diagnostic pop

} // namespace

void director_doveadm_commands_register()
{
	for (auto &cmd : director_commands)
		doveadm_cmd_register_ver2(&cmd);
}
