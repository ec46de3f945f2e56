/* The director's settings as lib-dovecot's settings parser fills them, one
   member per entry of DIRECTOR_SETTINGS_MAIN (core/settings-table.h). C,
   because Dovecot's SETTING_DEFINE macros do not compile as C++; only
   director-settings.cc reads this struct. settings-23.c and settings-24.c
   define its parser info for each Dovecot version. */
#ifndef DIRECTOR_SETTINGS_SHIM_H
#define DIRECTOR_SETTINGS_SHIM_H

#include "settings-define.h"

struct event;

struct director_settings_shim {
	pool_t pool; /* 2.4's settings_get() needs one; 2.3 leaves it unused */
	DIRECTOR_SETTINGS_MAIN(DIRECTOR_SHIM_MEMBER)
};

extern const struct setting_parser_info director_settings_shim_info;

/* 2.4: the settings for `event` (settings_get()); release them with
   director_settings_shim_free(). -1 and *error_r on failure. */
int director_settings_shim_get(struct event *event, const struct director_settings_shim **set_r,
			       const char **error_r);
void director_settings_shim_free(const struct director_settings_shim **set);

#endif
