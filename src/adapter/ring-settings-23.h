/* Dovecot 2.3: the config-process declaration of director_ring_secret_file
   (ring-settings-23.c), added to the settings module's roots. */
#ifndef DIRECTOR_RING_SETTINGS_23_H
#define DIRECTOR_RING_SETTINGS_23_H

extern const struct setting_parser_info director_ring_settings_config_info;

#endif
