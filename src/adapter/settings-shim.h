/* The director's settings as lib-dovecot's settings parser fills them. C,
   because Dovecot's SETTING_DEFINE macros do not compile as C++; only
   settings.cc reads this struct. settings-23.c and settings-24.c define it
   for each Dovecot version. */
#ifndef DIRECTOR_SETTINGS_SHIM_H
#define DIRECTOR_SETTINGS_SHIM_H

struct event;

struct director_settings_shim {
	pool_t pool; /* 2.4's settings_get() needs one; 2.3 leaves it unused */
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
	/* the authenticated ring; "" = off */
	const char *director_ring_secret_file;
};

extern const struct setting_parser_info director_settings_shim_info;

/* 2.4: the settings for `event` (settings_get()); release them with
   director_settings_shim_free(). -1 and *error_r on failure. */
int director_settings_shim_get(struct event *event, const struct director_settings_shim **set_r,
			       const char **error_r);
void director_settings_shim_free(const struct director_settings_shim **set);

#endif
