// Kicks on Dovecot 2.4, where the ipc service is gone and login processes take
// kick commands from anvil. This translates the core's typed kicks (kick.h)
// into anvil commands and reads anvil's CONNECT-DUMP, which a kick by user hash needs because 2.4's login
// processes no longer know director user hashes. Pure functions, no I/O.
//
// anvil (anvil-client protocol 2.0, after "VERSION\tanvil-client\t2\t0" and an
// empty handshake line):
//   KICK-USER\t<user>[\t<conn-guid>]          -> "<count>"
//   KICK-ALT-USER\t<field>\t<value>           -> "<count>"
//   CONNECT-DUMP -> a header line (the alt username field names), one line per
//     session "<pid>\t<user>\t<service>\t<client-ip>\t<conn-guid>\t<dest-ip>[\t<alt>...]",
//     and an empty line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ip-addr.h"
#include "kick.h"
#include "result.h"
#include "user-hash.h"

namespace director::core {

struct AnvilKick {
	// KICK and KICK-ALT map to one anvil command; KICK-DIRECTOR-HASH needs
	// the session list first.
	bool by_hash = false;
	std::string command;             // !by_hash: the anvil line, without LF
	uint32_t user_hash = 0;          // by_hash
	std::optional<IpAddr> except_ip; // by_hash: sessions proxied there stay
};

// The anvil form of a kick.
AnvilKick anvil_kick(const Kick &kick);

// One session line of CONNECT-DUMP.
struct AnvilSession {
	std::string username;
	std::string conn_guid;
	std::optional<IpAddr> dest_ip; // nullopt: not a proxied session
};
Result<AnvilSession> parse_anvil_session(std::string_view line);

// The KICK-USER line for `session` when a kick by hash matches it: its user
// name hashes to `kick.user_hash` with `hash`, and it is not proxied to
// kick.except_ip. nullopt when it does not match.
std::optional<std::string> anvil_kick_session(const AnvilKick &kick, const AnvilSession &session,
					      const UsernameHash &hash);

// The reply to KICK-USER / KICK-ALT-USER: the number of sessions kicked.
Result<unsigned> parse_anvil_kick_reply(std::string_view line);

} // namespace director::core
