// "doveadm director health [-a <socket>]": the health check state of every
// backend as the director sees it (HEALTH-LIST on director-admin, our
// extension; doc/operator-guide.md section 9), over the plugin's one
// director-admin client (admin-client.h).
#include "doveadm-director/cmd-health.h"

#include <optional>
#include <string>
#include <vector>

#include "adapter/dovecot.h"
#include "doveadm-director/admin-client.h"

extern "C" {
#include "strfuncs.h"
#include "time-util.h"
#include "master-service.h"
#include "doveadm.h"
#include "doveadm-cmd.h"
#include "doveadm-print.h"
#include "doveadm-settings.h"
#include "doveadm-util.h"
}

namespace director::doveadm {

namespace {

std::string decider_text(const std::vector<std::string> &head)
{
	return head[2] == "1" ? head[1] + " (this director)" : head[1];
}

void cmd_director_health(struct doveadm_cmd_context *cctx) noexcept
{
	const char *param = nullptr;
	(void)doveadm_cmd_param_str(cctx, "socket-path", &param);
	std::string path = admin_socket_path(param);
	AdminClient admin;
	if (!admin.open(path))
		return;
	std::optional<AdminClient::Rows> rows = admin.listing_line("HEALTH-LIST");
	if (!rows) {
		i_error("%s: is this our director, with health checks configured?", path.c_str());
		return;
	}
	if (rows->empty() || (*rows)[0].size() < 3 || (*rows)[0][0] != "decider") {
		admin_fail(EX_PROTOCOL, "%s sent a bad HEALTH-LIST reply", path.c_str());
		return;
	}
	std::string decider = decider_text((*rows)[0]);
	for (size_t i = 1; i < rows->size(); i++) {
		if ((*rows)[i].size() < 7) {
			admin_fail(EX_PROTOCOL, "%s sent a bad HEALTH-LIST line", path.c_str());
			return;
		}
	}

	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	doveadm_print_header_simple("mail server ip");
	doveadm_print_header_simple("health");
	doveadm_print_header_simple("state");
	doveadm_print_header_simple("down by");
	doveadm_print_header_simple("guard");
	doveadm_print_header_simple("last check");
	doveadm_print_header_simple("last result");
	doveadm_print_header_simple("decider");
	for (size_t r = 1; r < rows->size(); r++) {
		const std::vector<std::string> &f = (*rows)[r];
		for (size_t i = 0; i < 5; i++)
			doveadm_print(f[i].c_str());
		time_t t = time_t(strtoll(f[5].c_str(), nullptr, 10));
		doveadm_print(t == 0 ? "never" : t_strflocaltime("%Y-%m-%d %H:%M:%S", t));
		doveadm_print(f[6].c_str());
		doveadm_print(decider.c_str());
	}
}

struct doveadm_cmd_param health_params[2];
struct doveadm_cmd_ver2 health_cmd;

} // namespace

void register_health_command()
{
	health_params[0].short_opt = 'a';
	health_params[0].name = "socket-path";
	health_params[0].type = CMD_PARAM_STR;
	health_params[1].name = nullptr; // end of list
	health_cmd.cmd = cmd_director_health;
	health_cmd.name = "director health";
	health_cmd.usage = "[-a <director socket path>]";
	health_cmd.parameters = health_params;
	doveadm_cmd_register_ver2(&health_cmd);
}

} // namespace director::doveadm
