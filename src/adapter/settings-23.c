/* Dovecot 2.3: the "director" settings module, with the names, types and
   defaults the 2.3 config process already knows for the stock director. */
#include "lib.h"
#include "settings-parser.h"
#include "settings-shim.h"

#undef DEF
#define DEF(type, name) \
	SETTING_DEFINE_STRUCT_##type(#name, name, struct director_settings_shim)

static const struct setting_define director_shim_defines[] = {
	DEF(STR, master_user_separator),
	DEF(STR, director_servers),
	DEF(STR, director_mail_servers),
	DEF(STR, director_username_hash),
	DEF(STR, director_flush_socket),
	DEF(TIME, director_ping_idle_timeout),
	DEF(TIME, director_ping_max_timeout),
	DEF(TIME, director_user_expire),
	DEF(TIME, director_user_kick_delay),
	DEF(UINT, director_max_parallel_moves),
	DEF(UINT, director_max_parallel_kicks),
	DEF(SIZE, director_output_buffer_size),
	DEF(STR, director_ring_secret_file),
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
	.director_ring_secret_file = "",
};

const struct setting_parser_info director_settings_shim_info = {
	.module_name = "director",
	.defines = director_shim_defines,
	.defaults = &director_shim_defaults,
	.type_offset = SIZE_MAX,
	.struct_size = sizeof(struct director_settings_shim),
	.parent_offset = SIZE_MAX,
};
