// Entry points of the doveadm director plugin. On Dovecot 2.3 doveadm has the
// director commands built in and talks to our director-admin socket itself, so
// the plugin only adds "director health" (cmd-health.cc); on 2.4 it registers
// them all (cmd-director.cc) and "director health". Which of the two is
// adapter/doveadm-commands.h's call.
#include "adapter/dovecot.h"

#include "adapter/doveadm-commands.h"
#include "doveadm-director/cmd-director.h"
#include "doveadm-director/cmd-health.h"

extern "C" {
__attribute__((visibility("default"))) extern const char *doveadm_director_plugin_version;
__attribute__((visibility("default"))) void doveadm_director_plugin_init(struct module *module);
__attribute__((visibility("default"))) void doveadm_director_plugin_deinit(void);

const char *doveadm_director_plugin_version = DOVECOT_ABI_VERSION;

void doveadm_director_plugin_init(struct module *module ATTR_UNUSED)
{
	// A discarded statement needs no definition of what it names: on 2.3,
	// where cmd-director.cc is not built, nothing refers to it.
	if constexpr (director::adapter::doveadm_lacks_director_commands)
		director_doveadm_commands_register();
	director::doveadm::register_health_command();
}

void doveadm_director_plugin_deinit(void) {}
}
