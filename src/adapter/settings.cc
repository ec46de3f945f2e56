// Reads the director settings from lib-dovecot (2.3: master-service settings).
#include "adapter/settings.h"

#include "adapter/dovecot.h"

extern "C" {
#include "settings-parser.h"
#include "master-service.h"
#include "master-service-settings.h"
#include "settings-shim.h"
#include "health-settings-shim.h"
}

namespace director::adapter {

const setting_parser_info *const *director_setting_roots()
{
	static const setting_parser_info *const roots[] = {&director_settings_shim_info,
							      &director_health_settings_shim_info,
							      nullptr};
	return roots;
}

DirectorSettings director_settings_get()
{
	const auto *set = static_cast<const director_settings_shim *>(
		master_service_settings_get_others(master_service)[0]);
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
	out.verbose_proctitle = master_service_settings_get(master_service)->verbose_proctitle;

	const auto *hs = static_cast<const director_health_settings_shim *>(
		master_service_settings_get_others(master_service)[1]);
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

} // namespace director::adapter
