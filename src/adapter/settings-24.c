/* Dovecot 2.4: the director settings and "service director", which 2.4 no
   longer knows. Linked into the director binary (settings_get() needs the
   parser info) and built as the settings plugin lib10_director_settings.so,
   from which the config process learns the director_* settings and the
   service with its listeners. Names, types, defaults and listeners are those
   of the 2.3 stock director, so a 2.3 director configuration carries over. */
#include "lib.h"
#include "array.h"
#include "settings.h"
#include "settings-parser.h"
#include "service-settings.h"
#include "settings-shim.h"
#include "state-settings-shim.h"
#include "health-settings-shim.h"

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct director_settings_shim)

/* The values are used as written: %variables in director_username_hash and
   director_flush_socket are the director's own, not settings_get()'s. */
static const struct setting_define director_shim_defines[] = {
	DEF(STR, master_user_separator),
	DEF(STR_NOVARS, director_servers),
	DEF(STR_NOVARS, director_mail_servers),
	DEF(STR_NOVARS, director_username_hash),
	DEF(STR_NOVARS, director_flush_socket),
	DEF(TIME, director_ping_idle_timeout),
	DEF(TIME, director_ping_max_timeout),
	DEF(TIME, director_user_expire),
	DEF(TIME, director_user_kick_delay),
	DEF(UINT, director_max_parallel_moves),
	DEF(UINT, director_max_parallel_kicks),
	DEF(SIZE, director_output_buffer_size),
	SETTING_DEFINE_LIST_END
};

static const struct director_settings_shim director_shim_defaults = {
	.master_user_separator = "",
	.director_servers = "",
	.director_mail_servers = "",
	.director_username_hash = "%Lu",
	.director_flush_socket = "",
	.director_ping_idle_timeout = 30,
	.director_ping_max_timeout = 60,
	.director_user_expire = 60 * 15,
	.director_user_kick_delay = 2,
	.director_max_parallel_moves = 100,
	.director_max_parallel_kicks = 100,
	.director_output_buffer_size = 10 * 1024 * 1024,
};

const struct setting_parser_info director_settings_shim_info = {
	.name = "director",
	.defines = director_shim_defines,
	.defaults = &director_shim_defaults,
	.struct_size = sizeof(struct director_settings_shim),
	.pool_offset1 = 1 + offsetof(struct director_settings_shim, pool),
};

int director_settings_shim_get(struct event *event, const struct director_settings_shim **set_r,
			       const char **error_r)
{
	return settings_get(event, &director_settings_shim_info, 0, set_r, error_r);
}

void director_settings_shim_free(const struct director_settings_shim **set)
{
	settings_free(*set);
}

/* The state file (director_state_*): its own parser info, so it can move to a
   unified settings table without touching the stock-named ones above. */
#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct director_state_settings_shim)

static const struct setting_define director_state_shim_defines[] = {
	DEF(STR_NOVARS, director_state_file),
	DEF(TIME, director_state_interval),
	SETTING_DEFINE_LIST_END
};

static const struct director_state_settings_shim director_state_shim_defaults = {
	.director_state_file = DIRECTOR_STATE_FILE_DEFAULT,
	.director_state_interval = DIRECTOR_STATE_INTERVAL_DEFAULT,
};

const struct setting_parser_info director_state_settings_shim_info = {
	.name = "director_state",
	.defines = director_state_shim_defines,
	.defaults = &director_state_shim_defaults,
	.struct_size = sizeof(struct director_state_settings_shim),
	.pool_offset1 = 1 + offsetof(struct director_state_settings_shim, pool),
};

int director_state_settings_shim_get(struct event *event,
				     const struct director_state_settings_shim **set_r,
				     const char **error_r)
{
	return settings_get(event, &director_state_settings_shim_info, 0, set_r, error_r);
}

void director_state_settings_shim_free(const struct director_state_settings_shim **set)
{
	settings_free(*set);
}

/* director_health_*: the names, types and defaults of the 2.3 build
   (health-settings-23.c). Strings are taken as written: "30%" in
   director_health_max_down is not a %variable. Defaults keep health
   checks off. */
#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct director_health_settings_shim)

static const struct setting_define director_health_shim_defines[] = {
	DEF(STR_NOVARS, director_health_checks),
	DEF(TIME_MSECS, director_health_interval),
	DEF(TIME_MSECS, director_health_timeout),
	DEF(UINT, director_health_fail_rounds),
	DEF(TIME_MSECS, director_health_rapid_interval),
	DEF(UINT, director_health_rapid_polls),
	DEF(UINT, director_health_rapid_threshold),
	DEF(STR_NOVARS, director_health_max_down),
	DEF(STR_NOVARS, director_health_deciders),
	DEF(TIME, director_health_decider_timeout),
	DEF(STR_NOVARS, director_health_login_file),
	DEF(STR_NOVARS, director_health_lmtp_from),
	DEF(STR_NOVARS, director_health_lmtp_rcpt),
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
	.name = "director_health",
	.defines = director_health_shim_defines,
	.defaults = &director_health_shim_defaults,
	.struct_size = sizeof(struct director_health_settings_shim),
	.pool_offset1 = 1 + offsetof(struct director_health_settings_shim, pool),
};

int director_health_settings_shim_get(struct event *event,
				      const struct director_health_settings_shim **set_r,
				      const char **error_r)
{
	return settings_get(event, &director_health_settings_shim_info, 0, set_r, error_r);
}

void director_health_settings_shim_free(const struct director_health_settings_shim **set)
{
	settings_free(*set);
}

/* The settings plugin's exports (module "director_settings"). */
extern const char *director_settings_version;
extern const struct setting_parser_info *const director_settings_set_infos[];
extern struct service_settings director_settings_service_settings;
extern const struct setting_keyvalue director_settings_service_settings_defaults[];
extern const char *director_settings_config_import;

const char *director_settings_version = DOVECOT_ABI_VERSION;

const struct setting_parser_info *const director_settings_set_infos[] = {
	&director_settings_shim_info,
	&director_state_settings_shim_info,
	&director_health_settings_shim_info,
	NULL
};

struct service_settings director_settings_service_settings = {
	.name = "director",
	.protocol = "",
	.type = "",
	.executable = "director",
	.user = "$SET:default_internal_user",
	.group = "",
	.privileged_group = "",
	.extra_groups = ARRAY_INIT,
	.chroot = ".",

	.drop_priv_before_exec = FALSE,

	.process_min_avail = 0,
	.process_limit = 1,
	.client_limit = 0,
	.restart_request_count = 0,
	.idle_kill_interval = SET_TIME_INFINITE,
	.vsz_limit = UOFF_T_MAX,

	.unix_listeners = ARRAY_INIT,
	.fifo_listeners = ARRAY_INIT,
	.inet_listeners = ARRAY_INIT,

	.process_limit_1 = TRUE
};

/* As 2.3's stock service: login/director and login/proxy-notify get their
   mode from the operator, director-userdb and director-admin are 0600, and
   the ring listener has no port until one is configured. Listener names
   with '/' are written with "\s". */
const struct setting_keyvalue director_settings_service_settings_defaults[] = {
	{ "unix_listener", "login\\sdirector director-admin director-userdb" },

	{ "unix_listener/login\\sdirector/path", "login/director" },
	{ "unix_listener/login\\sdirector/mode", "0" },

	{ "unix_listener/director-admin/path", "director-admin" },
	{ "unix_listener/director-admin/mode", "0600" },

	{ "unix_listener/director-userdb/path", "director-userdb" },
	{ "unix_listener/director-userdb/mode", "0600" },

	{ "fifo_listener", "login\\sproxy-notify" },
	{ "fifo_listener/login\\sproxy-notify/path", "login/proxy-notify" },
	{ "fifo_listener/login\\sproxy-notify/mode", "0" },

	{ "inet_listener", "director" },
	{ "inet_listener/director/name", "director" },
	{ "inet_listener/director/port", "0" },

	{ NULL, NULL }
};

/* Kicks go through anvil, whose own socket is root's (mode 0600): the
   director, running as default_internal_user, could not reconnect to it after
   anvil restarts. This extra anvil listener, owned by that user and speaking
   the same protocol, is the one the director uses (2.3's ipc socket had the
   same owner). Parsed by the config process as defaults, so an operator's
   "service anvil { unix_listener anvil-director { ... } }" overrides it. */
const char *director_settings_config_import =
	"service anvil {\n"
	"  unix_listener anvil-director {\n"
	"    path = anvil-director\n"
	"    mode = 0600\n"
	"    user = $SET:default_internal_user\n"
	"  }\n"
	"}\n";
