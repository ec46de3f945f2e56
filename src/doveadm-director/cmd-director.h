// The "doveadm director ..." commands (Dovecot 2.4 builds only).
#pragma once

void director_doveadm_commands_register();
