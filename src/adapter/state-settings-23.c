/* Dovecot 2.3: the director_state_* settings (DIRECTOR_SETTINGS_STATE in
   core/settings-table.h). module_name is "director", so the config process
   hands them to the director service together with the stock director
   settings. */
#include "lib.h"
#include "settings-parser.h"
#include "state-settings-shim.h"

#define DIRECTOR_SHIM_DEFINE_STR_VERBATIM DIRECTOR_SHIM_DEFINE_STR
#define DIRECTOR_SHIM_STRUCT struct director_state_settings_shim

static const struct setting_define director_state_shim_defines[] = {
	DIRECTOR_SETTINGS_STATE(DIRECTOR_SHIM_DEFINE)
	SETTING_DEFINE_LIST_END
};

static const struct director_state_settings_shim director_state_shim_defaults = {
	DIRECTOR_SETTINGS_STATE(DIRECTOR_SHIM_DEFAULT)
};

const struct setting_parser_info director_state_settings_shim_info = {
	.module_name = "director",
	.defines = director_state_shim_defines,
	.defaults = &director_state_shim_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_state_settings_shim),
	.parent_offset = SIZE_MAX,
};
