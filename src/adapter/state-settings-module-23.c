/* Dovecot 2.3 config settings module: installed as
   $moduledir/settings/libdirector_state_settings.so, it adds the
   director_state_* keys to the config process and doveconf, which load every
   module of that directory. It exports only the two symbols they look up. */
#include "lib.h"
#include "settings-parser.h"
#include "state-settings-shim.h"

#define DIRECTOR_EXPORT __attribute__((visibility("default")))
DIRECTOR_EXPORT extern const struct setting_parser_info *director_state_settings_set_roots[];
DIRECTOR_EXPORT extern const char *director_state_settings_version;

const struct setting_parser_info *director_state_settings_set_roots[] = {
	&director_state_settings_shim_info,
	NULL
};

const char *director_state_settings_version = DOVECOT_ABI_VERSION;
