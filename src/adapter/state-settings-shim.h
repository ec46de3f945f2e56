/* The director_state_* settings (state file) as lib-dovecot's settings parser
   fills them. Kept apart from the stock director settings: stock 2.3 does not
   know these keys, so for 2.3 they are also built as a config settings module
   (libdirector_state_settings.so in $moduledir/settings); for 2.4
   settings-24.c lists them in the settings plugin. Only director-settings.cc
   and the modules read this struct. Its members, kinds and defaults are
   DIRECTOR_SETTINGS_STATE in core/settings-table.h. */
#ifndef DIRECTOR_STATE_SETTINGS_SHIM_H
#define DIRECTOR_STATE_SETTINGS_SHIM_H

#include "settings-define.h"

struct event;

struct director_state_settings_shim {
	pool_t pool; /* 2.4's settings_get() needs one; 2.3 leaves it unused */
	DIRECTOR_SETTINGS_STATE(DIRECTOR_SHIM_MEMBER)
};

extern const struct setting_parser_info director_state_settings_shim_info;

/* 2.4: the settings for `event`; release with director_state_settings_shim_free(). */
int director_state_settings_shim_get(struct event *event,
				     const struct director_state_settings_shim **set_r,
				     const char **error_r);
void director_state_settings_shim_free(const struct director_state_settings_shim **set);

#endif
