/* The director's settings: every name, kind and default, written once.

   Each list below is an X-macro: DIRECTOR_SETTINGS_x(X) expands X(kind, name,
   default) once per setting, in the order doveconf and the parser infos list
   them. The adapter generates from it the structs lib-dovecot's settings
   parser fills, the 2.3 setting_define arrays and defaults
   (settings-23.c, health-settings-23.c, state-settings-23.c,
   ring-settings-23.c) and the 2.4 ones (settings-24.c); the core takes its
   defaults (DirectorConfig, HealthConfig, UsernameHash) from the constants in
   setting_default below, and tests/unit/check-settings-table.cc checks that
   they agree. A default is changed here and nowhere else.

   This header is read by C as well (the settings parser's macros do not
   compile as C++), so the lists are plain macros; nothing here includes
   lib-dovecot.

   Kinds:
     STR           a string; 2.4's settings_get() expands %variables in it
     STR_VERBATIM  a string the director interprets itself (its own
                   %variables, "30%"): taken as written
     TIME          seconds ("15 min" in the configuration)
     TIME_MSECS    milliseconds ("10 s", "100 ms")
     UINT          a count
     SIZE          bytes ("10 M")

   The names, kinds and defaults of the first list are those of Dovecot 2.3's
   stock director, so a stock configuration carries over unchanged. */
#ifndef DIRECTOR_SETTINGS_TABLE_H
#define DIRECTOR_SETTINGS_TABLE_H

/* The stock director's settings (2.3's config process knows them itself). */
#define DIRECTOR_SETTINGS_STOCK(X) \
	X(STR, master_user_separator, "") \
	X(STR_VERBATIM, director_servers, "") \
	X(STR_VERBATIM, director_mail_servers, "") \
	X(STR_VERBATIM, director_username_hash, "%Lu") \
	X(STR_VERBATIM, director_flush_socket, "") \
	X(TIME, director_ping_idle_timeout, 30) \
	X(TIME, director_ping_max_timeout, 60) \
	X(TIME, director_user_expire, 15 * 60) \
	X(TIME, director_user_kick_delay, 2) \
	X(UINT, director_max_parallel_moves, 100) \
	X(UINT, director_max_parallel_kicks, 100) \
	X(SIZE, director_output_buffer_size, 10 * 1024 * 1024)

/* The authenticated ring: a root-only file holding the shared secret;
   empty = off. Not known to stock. */
#define DIRECTOR_SETTINGS_RING(X) \
	X(STR_VERBATIM, director_ring_secret_file, "")

/* The settings struct of the director binary: the stock ones and the ring's. */
#define DIRECTOR_SETTINGS_MAIN(X) \
	DIRECTOR_SETTINGS_STOCK(X) \
	DIRECTOR_SETTINGS_RING(X)

/* The state file. A relative file name is placed in the director's directory
   under state_dir; empty = no state file. The interval bounds what a crash can
   lose: assignments made since the last write. */
#define DIRECTOR_SETTINGS_STATE(X) \
	X(STR_VERBATIM, director_state_file, "director.state") \
	X(TIME, director_state_interval, 30)

/* Health checks of the mail hosts; director_health_checks empty = off. */
#define DIRECTOR_SETTINGS_HEALTH(X) \
	X(STR_VERBATIM, director_health_checks, "") \
	X(TIME_MSECS, director_health_interval, 10 * 1000) \
	X(TIME_MSECS, director_health_timeout, 5 * 1000) \
	X(UINT, director_health_fail_rounds, 3) \
	X(TIME_MSECS, director_health_rapid_interval, 1000) \
	X(UINT, director_health_rapid_polls, 10) \
	X(UINT, director_health_rapid_threshold, 7) \
	X(STR_VERBATIM, director_health_max_down, "30%") \
	X(STR_VERBATIM, director_health_deciders, "") \
	X(TIME, director_health_decider_timeout, 30) \
	X(STR_VERBATIM, director_health_login_file, "") \
	X(STR_VERBATIM, director_health_lmtp_from, "") \
	X(STR_VERBATIM, director_health_lmtp_rcpt, "")

#define DIRECTOR_SETTINGS_ALL(X) \
	DIRECTOR_SETTINGS_MAIN(X) \
	DIRECTOR_SETTINGS_STATE(X) \
	DIRECTOR_SETTINGS_HEALTH(X)

#ifdef __cplusplus

#include <cstdint>

/* The defaults as C++ constants: setting_default::director_user_expire is
   900 (unsigned), setting_default::director_username_hash is "%Lu". */
namespace director::core::setting_default {

using Kind_STR = const char *;
using Kind_STR_VERBATIM = const char *;
using Kind_TIME = unsigned;
using Kind_TIME_MSECS = unsigned;
using Kind_UINT = unsigned;
using Kind_SIZE = uint64_t;

#define DIRECTOR_SETTING_DEFAULT_CONSTANT(kind, name, value) \
	inline constexpr Kind_##kind name = value;
DIRECTOR_SETTINGS_ALL(DIRECTOR_SETTING_DEFAULT_CONSTANT)
#undef DIRECTOR_SETTING_DEFAULT_CONSTANT

} // namespace director::core::setting_default

#endif

#endif
