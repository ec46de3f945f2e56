/* The director_health_* settings (issue #7) as lib-dovecot's settings parser
   fills them. Stock 2.3 does not know these keys: the same definitions are
   also built as a config settings module (libdirector_health_settings.so in
   $moduledir/settings), which makes doveconf accept them. Only settings.cc and
   the module read this struct. On 2.4 the same struct is declared by
   settings-24.c for settings_get(), which needs the pool member. Its
   members, kinds and defaults are DIRECTOR_SETTINGS_HEALTH in
   core/settings-table.h. */
#ifndef DIRECTOR_HEALTH_SETTINGS_SHIM_H
#define DIRECTOR_HEALTH_SETTINGS_SHIM_H

#include "settings-define.h"

struct director_health_settings_shim {
	pool_t pool; /* 2.4's settings_get() needs one; 2.3 leaves it unused */
	DIRECTOR_SETTINGS_HEALTH(DIRECTOR_SHIM_MEMBER)
};

extern const struct setting_parser_info director_health_settings_shim_info;

struct event;

/* 2.4: the health settings for `event` (settings_get()); release them with
   director_health_settings_shim_free(). -1 and *error_r on failure. */
int director_health_settings_shim_get(struct event *event,
				      const struct director_health_settings_shim **set_r,
				      const char **error_r);
void director_health_settings_shim_free(const struct director_health_settings_shim **set);

#endif
