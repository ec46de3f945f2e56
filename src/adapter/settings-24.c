/* Dovecot 2.4: the director settings and "service director", which 2.4 no
   longer knows. Linked into the director binary (settings_get() needs the
   parser info) and built as the settings plugin lib10_director_settings.so,
   from which the config process learns the director_* settings and the
   service with its listeners. Names, types and defaults come from
   core/settings-table.h, the listeners are those of the 2.3 stock director,
   so a 2.3 director configuration carries over. */
#include "lib.h"
#include "array.h"
#include "settings.h"
#include "settings-parser.h"
#include "service-settings.h"
#include "settings-shim.h"
#include "state-settings-shim.h"
#include "health-settings-shim.h"

/* Verbatim strings (the director's own %variables in
   director_username_hash and director_flush_socket, "30%" in
   director_health_max_down) are not expanded by settings_get(). */
#define DIRECTOR_SHIM_DEFINE_STR_VERBATIM(name) \
	SETTING_DEFINE_STRUCT_STR_NOVARS(#name, name, DIRECTOR_SHIM_STRUCT)

#define DIRECTOR_SHIM_STRUCT struct director_settings_shim
static const struct setting_define director_shim_defines[] = {
	DIRECTOR_SETTINGS_MAIN(DIRECTOR_SHIM_DEFINE)
	SETTING_DEFINE_LIST_END
};

static const struct director_settings_shim director_shim_defaults = {
	DIRECTOR_SETTINGS_MAIN(DIRECTOR_SHIM_DEFAULT)
};
#undef DIRECTOR_SHIM_STRUCT

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

/* The state file (director_state_*): its own parser info. */
#define DIRECTOR_SHIM_STRUCT struct director_state_settings_shim
static const struct setting_define director_state_shim_defines[] = {
	DIRECTOR_SETTINGS_STATE(DIRECTOR_SHIM_DEFINE)
	SETTING_DEFINE_LIST_END
};

static const struct director_state_settings_shim director_state_shim_defaults = {
	DIRECTOR_SETTINGS_STATE(DIRECTOR_SHIM_DEFAULT)
};
#undef DIRECTOR_SHIM_STRUCT

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

/* director_health_*: defaults keep health checks off. */
#define DIRECTOR_SHIM_STRUCT struct director_health_settings_shim
static const struct setting_define director_health_shim_defines[] = {
	DIRECTOR_SETTINGS_HEALTH(DIRECTOR_SHIM_DEFINE)
	SETTING_DEFINE_LIST_END
};

static const struct director_health_settings_shim director_health_shim_defaults = {
	DIRECTOR_SETTINGS_HEALTH(DIRECTOR_SHIM_DEFAULT)
};
#undef DIRECTOR_SHIM_STRUCT

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
