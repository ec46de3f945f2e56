/* Dovecot 2.3: the director_health_* settings. module_name is "director", so
   the config process hands them to the director service together with the
   stock director settings. Defaults keep health checks off. */
#include "lib.h"
#include "settings-parser.h"
#include "health-settings-shim.h"

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct director_health_settings_shim)

static const struct setting_define director_health_shim_defines[] = {
	DEF(STR, director_health_checks),
	DEF(TIME_MSECS, director_health_interval),
	DEF(TIME_MSECS, director_health_timeout),
	DEF(UINT, director_health_fail_rounds),
	DEF(TIME_MSECS, director_health_rapid_interval),
	DEF(UINT, director_health_rapid_polls),
	DEF(UINT, director_health_rapid_threshold),
	DEF(STR, director_health_max_down),
	DEF(STR, director_health_deciders),
	DEF(TIME, director_health_decider_timeout),
	DEF(STR, director_health_login_file),
	DEF(STR, director_health_lmtp_from),
	DEF(STR, director_health_lmtp_rcpt),
	SETTING_DEFINE_LIST_END
};

static const struct director_health_settings_shim director_health_shim_defaults = {
	.director_health_checks = "",
	.director_health_interval = 10 * 1000,
	.director_health_timeout = 5 * 1000,
	.director_health_fail_rounds = 3,
	.director_health_rapid_interval = 1000,
	.director_health_rapid_polls = 10,
	.director_health_rapid_threshold = 7,
	.director_health_max_down = "30%",
	.director_health_deciders = "",
	.director_health_decider_timeout = 30,
	.director_health_login_file = "",
	.director_health_lmtp_from = "",
	.director_health_lmtp_rcpt = "",
};

const struct setting_parser_info director_health_settings_shim_info = {
	.module_name = "director",
	.defines = director_health_shim_defines,
	.defaults = &director_health_shim_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_health_settings_shim),
	.parent_offset = SIZE_MAX,
};
