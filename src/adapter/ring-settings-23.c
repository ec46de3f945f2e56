/* Dovecot 2.3: declares director_ring_secret_file to the config process and
   doveconf, which do not know it (stock has no authenticated ring). Built only
   into the config settings module; the director binary reads the value through
   settings-23.c. module_name is "director", so the config process hands the key
   to the director service with the others. */
#include "lib.h"
#include "settings-parser.h"
#include "ring-settings-23.h"

struct director_ring_settings_config {
	const char *director_ring_secret_file;
};

static const struct setting_define director_ring_config_defines[] = {
	SETTING_DEFINE_STRUCT_STR("director_ring_secret_file", director_ring_secret_file,
				  struct director_ring_settings_config),
	SETTING_DEFINE_LIST_END
};

static const struct director_ring_settings_config director_ring_config_defaults = {
	.director_ring_secret_file = "",
};

const struct setting_parser_info director_ring_settings_config_info = {
	.module_name = "director",
	.defines = director_ring_config_defines,
	.defaults = &director_ring_config_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_ring_settings_config),
	.parent_offset = SIZE_MAX,
};
