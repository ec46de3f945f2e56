// Kick: what the core asks of the login processes when a user's proxied
// sessions must end. The core decides who and why; the adapters carry it out:
// on Dovecot 2.3 as an ipc command to every login process (kick_ipc_line()),
// on 2.4 as anvil commands (anvil-kick.h). Nothing parses a kick back from
// text.
//
// Three ways to name the sessions:
//   user       doveadm director kick <user>: by user name.
//   alt_field  doveadm director kick -f <field> <value>: by an alternative
//              user name field the login process knows.
//   user_hash  a moved or disputed user: by director_username_hash of the
//              user name, sparing sessions proxied to except_ip (the host the
//              user is on now), when set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ip-addr.h"

namespace director::core {

// Why a kick runs; the director_user_kicked event's "reason".
enum class KickReason {
	admin,    // doveadm director kick, here or on another director
	move,     // the user moved: its sessions on the old host end
	conflict, // two directors disagreed about the user's host
};
const char *kick_reason_name(KickReason reason);

struct Kick {
	enum class By { user, alt_field, user_hash };
	By by = By::user;
	std::string user;  // by user
	std::string field; // by alt_field: the field's name
	std::string value; // by alt_field: its value
	uint32_t user_hash = 0;          // by user_hash
	std::optional<IpAddr> except_ip; // by user_hash: sessions proxied there stay
	std::string tag; // by user_hash: the user's tag, when the core knows it
	KickReason reason = KickReason::admin;

	static Kick by_user(std::string user, KickReason reason);
	static Kick by_alt_field(std::string field, std::string value, KickReason reason);
	static Kick by_user_hash(uint32_t hash, std::optional<IpAddr> except_ip, std::string tag,
				 KickReason reason);
};

// The kick as a 2.3 ipc command line for the login processes (no LF):
// "proxy\t*\tKICK\t<user>", "proxy\t*\tKICK-ALT\t<field>\t<value>" or
// "proxy\t*\tKICK-DIRECTOR-HASH\t<hash>[\t<except-ip>]", values tab-escaped.
std::string kick_ipc_line(const Kick &kick);

} // namespace director::core
