// Entry points of the doveadm director plugin. On Dovecot 2.3 doveadm has the
// director commands built in and talks to our director-admin socket itself, so
// the plugin only adds "director health" (cmd-health.cc); on 2.4 it registers
// them all (cmd-director.cc) and "director health".
#include "adapter/dovecot.h"

#if DIRECTOR_DOVECOT_API == 24
#include "doveadm-director/cmd-director.h"
#endif
#include "doveadm-director/cmd-health.h"

extern "C" {
__attribute__((visibility("default"))) extern const char *doveadm_director_plugin_version;
__attribute__((visibility("default"))) void doveadm_director_plugin_init(struct module *module);
__attribute__((visibility("default"))) void doveadm_director_plugin_deinit(void);

const char *doveadm_director_plugin_version = DOVECOT_ABI_VERSION;

void doveadm_director_plugin_init(struct module *module ATTR_UNUSED)
{
#if DIRECTOR_DOVECOT_API == 24
	director_doveadm_commands_register();
#endif
	director::doveadm::register_health_command();
}

void doveadm_director_plugin_deinit(void) {}
}
