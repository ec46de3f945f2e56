// Entry points of the director login plugin. Dovecot 2.3's login processes
// already speak to the director themselves (login/director, proxy-notify,
// KICK-DIRECTOR-HASH), so on 2.3 the plugin hooks nothing. Neither on 2.4,
// as tested against 2.4.1: login_socket_path (or "imap-login director")
// routes auth through login/director, the proxy-notify fifo is unchanged,
// and the kick by user hash the login processes lost is done by the
// director through anvil (adapter/kick-client-24.cc).
#include "adapter/dovecot.h"

extern "C" {
__attribute__((visibility("default"))) extern const char *director_login_plugin_version;
__attribute__((visibility("default"))) void director_login_plugin_init(struct module *module);
__attribute__((visibility("default"))) void director_login_plugin_deinit(void);

const char *director_login_plugin_version = DOVECOT_ABI_VERSION;

void director_login_plugin_init(struct module *module ATTR_UNUSED) {}

void director_login_plugin_deinit(void) {}
}
