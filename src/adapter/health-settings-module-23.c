/* Dovecot 2.3 config settings module: installed as
   $moduledir/settings/libdirector_health_settings.so, it adds the
   director_health_* keys and director_ring_secret_file to the config process
   and doveconf, which load every module of that directory. It exports only the
   two symbols they look up. */
#include "lib.h"
#include "settings-parser.h"
#include "health-settings-shim.h"
#include "ring-settings-23.h"

#define DIRECTOR_EXPORT __attribute__((visibility("default")))
DIRECTOR_EXPORT extern const struct setting_parser_info *director_health_settings_set_roots[];
DIRECTOR_EXPORT extern const char *director_health_settings_version;

const struct setting_parser_info *director_health_settings_set_roots[] = {
	&director_health_settings_shim_info,
	&director_ring_settings_config_info,
	NULL
};

const char *director_health_settings_version = DOVECOT_ABI_VERSION;
