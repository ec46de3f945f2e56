// The "doveadm director ..." commands for doveadm versions that lack them
// (Dovecot 2.4; defined only in 2.4 builds, see adapter/doveadm-commands.h).
#pragma once

void director_doveadm_commands_register();
