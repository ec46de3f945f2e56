/* Dovecot 2.3: the director_state_* settings. module_name is "director", so
   the config process hands them to the director service together with the
   stock director settings. */
#include "lib.h"
#include "settings-parser.h"
#include "state-settings-shim.h"

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct director_state_settings_shim)

static const struct setting_define director_state_shim_defines[] = {
	DEF(STR, director_state_file),
	DEF(TIME, director_state_interval),
	SETTING_DEFINE_LIST_END
};

static const struct director_state_settings_shim director_state_shim_defaults = {
	.director_state_file = DIRECTOR_STATE_FILE_DEFAULT,
	.director_state_interval = DIRECTOR_STATE_INTERVAL_DEFAULT,
};

const struct setting_parser_info director_state_settings_shim_info = {
	.module_name = "director",
	.defines = director_state_shim_defines,
	.defaults = &director_state_shim_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_state_settings_shim),
	.parent_offset = SIZE_MAX,
};
