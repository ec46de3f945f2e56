// "doveadm director health [-a <socket>]": the health check state of every
// backend as the director sees it (HEALTH-LIST on director-admin, our
// extension; doc/operator-guide.md section 9). Blocking I/O with a 5 s
// limit per read, as doveadm's own director commands do.
#include "doveadm-director/cmd-health.h"

#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "adapter/dovecot.h"

extern "C" {
#include "istream.h"
#include "strfuncs.h"
#include "time-util.h"
#include "master-service.h"
#include "write-full.h"
#include "doveadm.h"
#include "doveadm-cmd.h"
#include "doveadm-print.h"
#include "doveadm-settings.h"
#include "doveadm-util.h"
}

namespace director::doveadm {

namespace {

constexpr unsigned read_timeout_secs = 5;

std::vector<std::string> split_tabs(const char *line)
{
	std::vector<std::string> out;
	std::string cur;
	for (const char *p = line; *p != '\0'; p++) {
		if (*p == '\t') {
			out.push_back(cur);
			cur.clear();
		} else {
			cur += *p;
		}
	}
	out.push_back(cur);
	return out;
}

const char *read_line(struct istream *input, const char *path)
{
	alarm(read_timeout_secs);
	const char *line = i_stream_read_next_line(input);
	alarm(0);
	if (line != nullptr)
		return line;
	if (input->stream_errno != 0)
		i_fatal("read(%s) failed: %s", path, i_stream_get_error(input));
	if (input->eof)
		i_fatal("%s disconnected (is this our director, with health checks configured?)",
			path);
	i_fatal("read(%s) timed out (is director configured?)", path);
}

void cmd_director_health(struct doveadm_cmd_context *cctx) noexcept
{
	const char *path;
	if (!doveadm_cmd_param_str(cctx, "socket-path", &path))
		path = t_strconcat(doveadm_settings->base_dir, "/director-admin", nullptr);
	int fd = doveadm_connect(path);
	net_set_nonblock(fd, FALSE);
	struct istream *input = i_stream_create_fd_autoclose(&fd, SIZE_MAX);
	const char *request = "VERSION\tdirector-doveadm\t1\t0\nHEALTH-LIST\n";
	if (write_full(i_stream_get_fd(input), request, strlen(request)) < 0)
		i_fatal("write(%s) failed: %m", path);
	const char *line = read_line(input, path);
	// The handshake by hand: version_string_verify() moved to another
	// header in 2.4.
	if (strncmp(line, "VERSION\tdirector-doveadm\t1\t", 27) != 0)
		i_fatal_status(EX_PROTOCOL, "%s not a compatible director-doveadm socket", path);

	std::vector<std::string> head = split_tabs(read_line(input, path));
	if (head.size() < 3 || head[0] != "decider")
		i_fatal_status(EX_PROTOCOL, "%s sent a bad HEALTH-LIST reply", path);
	std::string decider = head[2] == "1" ? head[1] + " (this director)" : head[1];

	doveadm_print_init(DOVEADM_PRINT_TYPE_TABLE);
	doveadm_print_header_simple("mail server ip");
	doveadm_print_header_simple("health");
	doveadm_print_header_simple("state");
	doveadm_print_header_simple("down by");
	doveadm_print_header_simple("guard");
	doveadm_print_header_simple("last check");
	doveadm_print_header_simple("last result");
	doveadm_print_header_simple("decider");
	for (;;) {
		line = read_line(input, path);
		if (*line == '\0')
			break;
		std::vector<std::string> f = split_tabs(line);
		if (f.size() < 7)
			i_fatal_status(EX_PROTOCOL, "%s sent a bad HEALTH-LIST line", path);
		for (size_t i = 0; i < 5; i++)
			doveadm_print(f[i].c_str());
		time_t t = time_t(strtoll(f[5].c_str(), nullptr, 10));
		doveadm_print(t == 0 ? "never" : t_strflocaltime("%Y-%m-%d %H:%M:%S", t));
		doveadm_print(f[6].c_str());
		doveadm_print(decider.c_str());
	}
	i_stream_destroy(&input);
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
