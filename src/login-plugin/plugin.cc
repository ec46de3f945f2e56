// Entry points of the director login plugin. Dovecot 2.3's login processes
// already speak to the director themselves (login/director, proxy-notify,
// KICK-DIRECTOR-HASH), so on 2.3 the plugin hooks nothing.
#include "adapter/dovecot.h"

extern "C" {
__attribute__((visibility("default"))) extern const char *director_login_plugin_version;
__attribute__((visibility("default"))) void director_login_plugin_init(struct module *module);
__attribute__((visibility("default"))) void director_login_plugin_deinit(void);

const char *director_login_plugin_version = DOVECOT_ABI_VERSION;

void director_login_plugin_init(struct module *module ATTR_UNUSED) {}

void director_login_plugin_deinit(void) {}
}
