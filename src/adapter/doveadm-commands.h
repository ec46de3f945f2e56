// Which "doveadm director ..." commands the doveadm plugin brings, per Dovecot
// version: the doveadm plugin's only 2.3/2.4 difference. No code here.
#pragma once

#include "adapter/dovecot.h"

namespace director::adapter {

// Dovecot 2.3's doveadm has the director commands built in and talks to the
// director-admin socket itself, so the plugin adds only "director health".
// 2.4's doveadm has none: the plugin registers them all
// (doveadm-director/cmd-director.cc, compiled on 2.4 only). Callers test it
// with `if constexpr`, so on 2.3 the 2.4-only registration is never linked.
#if DIRECTOR_DOVECOT_API == 24
inline constexpr bool doveadm_lacks_director_commands = true;
#else
inline constexpr bool doveadm_lacks_director_commands = false;
#endif

} // namespace director::adapter
