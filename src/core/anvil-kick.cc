// Translation of typed kicks into anvil commands (Dovecot 2.4).
#include "anvil-kick.h"

#include <charconv>
#include <vector>

#include "tab-escape.h"

namespace director::core {

namespace {

Result<uint32_t> parse_u32(std::string_view text)
{
	uint32_t value = 0;
	auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
	if (text.empty() || ec != std::errc() || end != text.data() + text.size())
		return make_error("not a number: " + quote_for_log(text));
	return value;
}

} // namespace

AnvilKick anvil_kick(const Kick &kick)
{
	AnvilKick out;
	switch (kick.by) {
	case Kick::By::user:
		out.command = "KICK-USER\t" + tab_escape(kick.user);
		break;
	case Kick::By::alt_field:
		out.command = "KICK-ALT-USER\t" + tab_escape(kick.field) + "\t" + tab_escape(kick.value);
		break;
	case Kick::By::user_hash:
		out.by_hash = true;
		out.user_hash = kick.user_hash;
		out.except_ip = kick.except_ip;
		break;
	}
	return out;
}

Result<AnvilSession> parse_anvil_session(std::string_view line)
{
	std::vector<std::string> f = split_tabescaped(line);
	if (f.size() < 6)
		return make_error("CONNECT-DUMP line has too few fields: " + quote_for_log(line));
	AnvilSession out;
	out.username = f[1];
	out.conn_guid = f[4];
	if (!f[5].empty()) {
		out.dest_ip = IpAddr::parse(f[5]);
		if (!out.dest_ip)
			return make_error("CONNECT-DUMP line has an invalid dest IP: " +
					  quote_for_log(line));
	}
	return out;
}

std::optional<std::string> anvil_kick_session(const AnvilKick &kick, const AnvilSession &session,
					      const UsernameHash &hash)
{
	if (!kick.by_hash || !session.dest_ip)
		return std::nullopt;
	if (kick.except_ip && *session.dest_ip == *kick.except_ip)
		return std::nullopt;
	if (hash.hash(session.username) != kick.user_hash)
		return std::nullopt;
	std::string line = "KICK-USER\t" + tab_escape(session.username);
	if (!session.conn_guid.empty())
		line += "\t" + tab_escape(session.conn_guid);
	return line;
}

Result<unsigned> parse_anvil_kick_reply(std::string_view line)
{
	auto n = parse_u32(line);
	if (!n.ok())
		return make_error("invalid kick reply from anvil: " + quote_for_log(line));
	return unsigned(*n);
}

} // namespace director::core
