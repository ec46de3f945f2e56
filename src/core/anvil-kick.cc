// Translation of ipc kick lines into anvil commands (Dovecot 2.4).
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

Result<AnvilKick> anvil_kick_from_ipc(std::string_view ipc_line)
{
	std::vector<std::string> f = split_tabescaped(ipc_line);
	if (f.size() < 4 || f[0] != "proxy" || f[1] != "*")
		return make_error("not a proxy kick: " + quote_for_log(ipc_line));
	AnvilKick out;
	if (f[2] == "KICK" && f.size() == 4) {
		out.command = "KICK-USER\t" + tab_escape(f[3]);
	} else if (f[2] == "KICK-ALT" && f.size() == 5) {
		out.command = "KICK-ALT-USER\t" + tab_escape(f[3]) + "\t" + tab_escape(f[4]);
	} else if (f[2] == "KICK-DIRECTOR-HASH" && (f.size() == 4 || f.size() == 5)) {
		auto hash = parse_u32(f[3]);
		if (!hash.ok())
			return make_error("KICK-DIRECTOR-HASH: user hash " + hash.error());
		out.by_hash = true;
		out.user_hash = *hash;
		if (f.size() == 5 && !f[4].empty()) {
			out.except_ip = IpAddr::parse(f[4]);
			if (!out.except_ip)
				return make_error("KICK-DIRECTOR-HASH: invalid IP " +
						  quote_for_log(f[4]));
		}
	} else {
		return make_error("unknown kick command: " + quote_for_log(ipc_line));
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
