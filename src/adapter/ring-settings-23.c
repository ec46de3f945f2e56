/* Dovecot 2.3: declares director_ring_secret_file (DIRECTOR_SETTINGS_RING in
   core/settings-table.h) to the config process and doveconf, which do not
   know it (stock has no authenticated ring). Built only into the config
   settings module; the director binary reads the value through
   settings-23.c. module_name is "director", so the config process hands the
   key to the director service with the others. */
#include "lib.h"
#include "settings-parser.h"
#include "settings-define.h"
#include "ring-settings-23.h"

struct director_ring_settings_config {
	DIRECTOR_SETTINGS_RING(DIRECTOR_SHIM_MEMBER)
};

#define DIRECTOR_SHIM_DEFINE_STR_VERBATIM DIRECTOR_SHIM_DEFINE_STR
#define DIRECTOR_SHIM_STRUCT struct director_ring_settings_config

static const struct setting_define director_ring_config_defines[] = {
	DIRECTOR_SETTINGS_RING(DIRECTOR_SHIM_DEFINE)
	SETTING_DEFINE_LIST_END
};

static const struct director_ring_settings_config director_ring_config_defaults = {
	DIRECTOR_SETTINGS_RING(DIRECTOR_SHIM_DEFAULT)
};

const struct setting_parser_info director_ring_settings_config_info = {
	.module_name = "director",
	.defines = director_ring_config_defines,
	.defaults = &director_ring_config_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_ring_settings_config),
	.parent_offset = SIZE_MAX,
};
