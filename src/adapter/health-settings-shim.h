/* The director_health_* settings (issue #7) as lib-dovecot's settings parser
   fills them. Stock 2.3 does not know these keys: the same definitions are
   also built as a config settings module (libdirector_health_settings.so in
   $moduledir/settings), which makes doveconf accept them. Only settings.cc and
   the module read this struct. */
#ifndef DIRECTOR_HEALTH_SETTINGS_SHIM_H
#define DIRECTOR_HEALTH_SETTINGS_SHIM_H

struct director_health_settings_shim {
	const char *director_health_checks;
	unsigned int director_health_interval;
	unsigned int director_health_timeout;
	unsigned int director_health_fail_rounds;
	unsigned int director_health_rapid_interval;
	unsigned int director_health_rapid_polls;
	unsigned int director_health_rapid_threshold;
	const char *director_health_max_down;
	const char *director_health_deciders;
	unsigned int director_health_decider_timeout;
	const char *director_health_login_file;
	const char *director_health_lmtp_from;
	const char *director_health_lmtp_rcpt;
};

extern const struct setting_parser_info director_health_settings_shim_info;

#endif
