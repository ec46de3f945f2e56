// Reads the director settings from lib-dovecot: 2.3 through the
// master-service settings roots, 2.4 through settings_get().
#include "adapter/director-settings.h"

#include "adapter/dovecot.h"

extern "C" {
#include "settings-parser.h"
#include "master-service.h"
#include "master-service-settings.h"
#include "settings-shim.h"
#include "state-settings-shim.h"
#include "health-settings-shim.h"
}

namespace director::adapter {

namespace {

DirectorSettings copy_and_check(const director_settings_shim *set)
{
	DirectorSettings out;
	out.master_user_separator = set->master_user_separator;
	out.director_servers = set->director_servers;
	out.director_mail_servers = set->director_mail_servers;
	out.director_username_hash = set->director_username_hash;
	out.director_flush_socket = set->director_flush_socket;
	out.ping_idle_timeout_secs = set->director_ping_idle_timeout;
	out.ping_max_timeout_secs = set->director_ping_max_timeout;
	out.user_expire_secs = set->director_user_expire;
	out.user_kick_delay_secs = set->director_user_kick_delay;
	out.max_parallel_moves = set->director_max_parallel_moves;
	out.max_parallel_kicks = set->director_max_parallel_kicks;
	out.output_buffer_size = set->director_output_buffer_size;

	if (out.user_expire_secs < 10) {
		i_fatal("Invalid setting director_user_expire=%u secs: must be at least 10 secs",
			out.user_expire_secs);
	}
	if (out.max_parallel_moves == 0)
		i_fatal("Invalid setting director_max_parallel_moves=0: must be at least 1");
	if (out.max_parallel_kicks == 0)
		i_fatal("Invalid setting director_max_parallel_kicks=0: must be at least 1");
	return out;
}

void check_state(const DirectorSettings &out)
{
	if (!out.state_file.empty() && out.state_interval_secs == 0) {
		i_fatal("Invalid setting director_state_interval=0: must be at least 1 sec "
			"(to keep no state file, set director_state_file empty)");
	}
}

void copy_health(const director_health_settings_shim *hs, DirectorSettings &out)
{
	out.health_checks = hs->director_health_checks;
	out.health_interval_msecs = hs->director_health_interval;
	out.health_timeout_msecs = hs->director_health_timeout;
	out.health_fail_rounds = hs->director_health_fail_rounds;
	out.health_rapid_interval_msecs = hs->director_health_rapid_interval;
	out.health_rapid_polls = hs->director_health_rapid_polls;
	out.health_rapid_threshold = hs->director_health_rapid_threshold;
	out.health_max_down = hs->director_health_max_down;
	out.health_deciders = hs->director_health_deciders;
	out.health_decider_timeout_secs = hs->director_health_decider_timeout;
	out.health_login_file = hs->director_health_login_file;
	out.health_lmtp_from = hs->director_health_lmtp_from;
	out.health_lmtp_rcpt = hs->director_health_lmtp_rcpt;
}

} // namespace

#if DIRECTOR_DOVECOT_API == 23

void director_settings_read()
{
	static const setting_parser_info *roots[] = {&director_settings_shim_info,
						     &director_health_settings_shim_info,
						     &director_state_settings_shim_info, nullptr};
	const char *error;
	if (master_service_settings_read_simple(master_service, roots, &error) < 0)
		i_fatal("Error reading configuration: %s", error);
}

DirectorSettings director_settings_get()
{
	void **others = master_service_settings_get_others(master_service);
	DirectorSettings out = copy_and_check(static_cast<const director_settings_shim *>(others[0]));
	out.verbose_proctitle = master_service_settings_get(master_service)->verbose_proctitle;
	out.state_dir = master_service_settings_get(master_service)->state_dir;

	const auto *ss = static_cast<const director_state_settings_shim *>(others[2]);
	out.state_file = ss->director_state_file;
	out.state_interval_secs = ss->director_state_interval;
	check_state(out);

	copy_health(static_cast<const director_health_settings_shim *>(others[1]), out);
	return out;
}

#else

void director_settings_read()
{
	const char *error;
	if (master_service_settings_read_simple(master_service, &error) < 0)
		i_fatal("Error reading configuration: %s", error);
}

DirectorSettings director_settings_get()
{
	struct event *event = master_service_get_event(master_service);
	const director_settings_shim *set;
	const char *error;
	if (director_settings_shim_get(event, &set, &error) < 0)
		i_fatal("Error reading configuration: %s", error);
	DirectorSettings out = copy_and_check(set);
	director_settings_shim_free(&set);

	const director_health_settings_shim *hs;
	if (director_health_settings_shim_get(event, &hs, &error) < 0)
		i_fatal("Error reading configuration: %s", error);
	copy_health(hs, out);
	director_health_settings_shim_free(&hs);
	out.verbose_proctitle =
		master_service_get_service_settings(master_service)->verbose_proctitle;
	out.state_dir = master_service_get_service_settings(master_service)->state_dir;

	const director_state_settings_shim *ss;
	if (director_state_settings_shim_get(master_service_get_event(master_service), &ss,
					     &error) < 0)
		i_fatal("Error reading configuration: %s", error);
	out.state_file = ss->director_state_file;
	out.state_interval_secs = ss->director_state_interval;
	director_state_settings_shim_free(&ss);
	check_state(out);
	return out;
}

#endif

} // namespace director::adapter
