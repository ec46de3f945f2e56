// "doveadm director health": registered by the plugin on every Dovecot version.
#pragma once

namespace director::doveadm {

// Adds the command to doveadm's list (plugin init only).
void register_health_command();

} // namespace director::doveadm
