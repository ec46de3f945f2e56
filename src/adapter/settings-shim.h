/* The director's settings as lib-dovecot's settings parser fills them. C,
   because Dovecot's SETTING_DEFINE macros do not compile as C++; only
   settings.cc reads this struct. */
#ifndef DIRECTOR_SETTINGS_SHIM_H
#define DIRECTOR_SETTINGS_SHIM_H

struct director_settings_shim {
	const char *master_user_separator;
	const char *director_servers;
	const char *director_mail_servers;
	const char *director_username_hash;
	const char *director_flush_socket;
	unsigned int director_ping_idle_timeout;
	unsigned int director_ping_max_timeout;
	unsigned int director_user_expire;
	unsigned int director_user_kick_delay;
	unsigned int director_max_parallel_moves;
	unsigned int director_max_parallel_kicks;
	uoff_t director_output_buffer_size;
};

extern const struct setting_parser_info director_settings_shim_info;

#endif
