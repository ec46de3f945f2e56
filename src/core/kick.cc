// Kick constructors and the 2.3 ipc wording (see kick.h).
#include "kick.h"

#include "tab-escape.h"

namespace director::core {

const char *kick_reason_name(KickReason reason)
{
	switch (reason) {
	case KickReason::admin:
		return "admin";
	case KickReason::move:
		return "move";
	case KickReason::conflict:
		return "conflict";
	}
	return "unknown";
}

Kick Kick::by_user(std::string user, KickReason reason)
{
	Kick k;
	k.by = By::user;
	k.user = std::move(user);
	k.reason = reason;
	return k;
}

Kick Kick::by_alt_field(std::string field, std::string value, KickReason reason)
{
	Kick k;
	k.by = By::alt_field;
	k.field = std::move(field);
	k.value = std::move(value);
	k.reason = reason;
	return k;
}

Kick Kick::by_user_hash(uint32_t hash, std::optional<IpAddr> except_ip, std::string tag,
			KickReason reason)
{
	Kick k;
	k.by = By::user_hash;
	k.user_hash = hash;
	k.except_ip = except_ip;
	k.tag = std::move(tag);
	k.reason = reason;
	return k;
}

std::string kick_ipc_line(const Kick &kick)
{
	std::string line = "proxy\t*\t";
	switch (kick.by) {
	case Kick::By::user:
		line += "KICK\t";
		tab_escape_append(line, kick.user);
		break;
	case Kick::By::alt_field:
		line += "KICK-ALT\t";
		tab_escape_append(line, kick.field);
		line += '\t';
		tab_escape_append(line, kick.value);
		break;
	case Kick::By::user_hash:
		line += "KICK-DIRECTOR-HASH\t" + std::to_string(kick.user_hash);
		if (kick.except_ip)
			line += "\t" + kick.except_ip->to_string();
		break;
	}
	return line;
}

} // namespace director::core
