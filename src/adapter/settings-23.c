/* Dovecot 2.3: the "director" settings module, with the names, types and
   defaults the 2.3 config process already knows for the stock director
   (generated from DIRECTOR_SETTINGS_MAIN in core/settings-table.h). */
#include "lib.h"
#include "settings-parser.h"
#include "settings-shim.h"

#define DIRECTOR_SHIM_DEFINE_STR_VERBATIM DIRECTOR_SHIM_DEFINE_STR
#define DIRECTOR_SHIM_STRUCT struct director_settings_shim

static const struct setting_define director_shim_defines[] = {
	DIRECTOR_SETTINGS_MAIN(DIRECTOR_SHIM_DEFINE)
	SETTING_DEFINE_LIST_END
};

static const struct director_settings_shim director_shim_defaults = {
	DIRECTOR_SETTINGS_MAIN(DIRECTOR_SHIM_DEFAULT)
};

const struct setting_parser_info director_settings_shim_info = {
	.module_name = "director",
	.defines = director_shim_defines,
	.defaults = &director_shim_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_settings_shim),
	.parent_offset = SIZE_MAX,
};
