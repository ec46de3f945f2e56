/* Generates lib-dovecot settings-parser structures from the one settings
   table (core/settings-table.h), for the C files that define the parser infos
   (settings-23.c, health-settings-23.c, state-settings-23.c,
   ring-settings-23.c, settings-24.c) and the shim headers that declare the
   structs.

   - DIRECTOR_SHIM_MEMBER: a struct member of the setting's C type.
   - DIRECTOR_SHIM_DEFINE: a setting_define for struct DIRECTOR_SHIM_STRUCT,
     which the including file defines before expanding a list. The file also
     defines DIRECTOR_SHIM_DEFINE_STR_VERBATIM(name) as the API's verbatim
     string (2.3: STR, 2.4: STR_NOVARS).
   - DIRECTOR_SHIM_DEFAULT: a designated initializer with the default. */
#ifndef DIRECTOR_SETTINGS_DEFINE_H
#define DIRECTOR_SETTINGS_DEFINE_H

#include "core/settings-table.h"

#define DIRECTOR_SHIM_MEMBER_STR(name) const char *name;
#define DIRECTOR_SHIM_MEMBER_STR_VERBATIM(name) const char *name;
#define DIRECTOR_SHIM_MEMBER_TIME(name) unsigned int name;
#define DIRECTOR_SHIM_MEMBER_TIME_MSECS(name) unsigned int name;
#define DIRECTOR_SHIM_MEMBER_UINT(name) unsigned int name;
#define DIRECTOR_SHIM_MEMBER_SIZE(name) uoff_t name;
#define DIRECTOR_SHIM_MEMBER(kind, name, value) DIRECTOR_SHIM_MEMBER_##kind(name)

#define DIRECTOR_SHIM_DEFINE_STR(name) \
	SETTING_DEFINE_STRUCT_STR(#name, name, DIRECTOR_SHIM_STRUCT)
#define DIRECTOR_SHIM_DEFINE_TIME(name) \
	SETTING_DEFINE_STRUCT_TIME(#name, name, DIRECTOR_SHIM_STRUCT)
#define DIRECTOR_SHIM_DEFINE_TIME_MSECS(name) \
	SETTING_DEFINE_STRUCT_TIME_MSECS(#name, name, DIRECTOR_SHIM_STRUCT)
#define DIRECTOR_SHIM_DEFINE_UINT(name) \
	SETTING_DEFINE_STRUCT_UINT(#name, name, DIRECTOR_SHIM_STRUCT)
#define DIRECTOR_SHIM_DEFINE_SIZE(name) \
	SETTING_DEFINE_STRUCT_SIZE(#name, name, DIRECTOR_SHIM_STRUCT)
#define DIRECTOR_SHIM_DEFINE(kind, name, value) DIRECTOR_SHIM_DEFINE_##kind(name),

#define DIRECTOR_SHIM_DEFAULT(kind, name, value) .name = value,

#endif
