// Health checks: the values of the director_health_* settings (probes, the
// max-down limit, deciders, the probe login file) and their validation. No I/O
// here: the login file's contents come in as a string.
#include "health.h"

#include <algorithm>
#include <charconv>

#include "tab-escape.h"

namespace director::core {

namespace {

std::vector<std::string_view> split_words(std::string_view s)
{
	std::vector<std::string_view> out;
	size_t i = 0;
	while (i < s.size()) {
		while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
			i++;
		size_t start = i;
		while (i < s.size() && s[i] != ' ' && s[i] != '\t')
			i++;
		if (i > start)
			out.push_back(s.substr(start, i - start));
	}
	return out;
}

std::optional<unsigned> parse_unsigned(std::string_view s, unsigned max)
{
	unsigned v = 0;
	if (s.empty())
		return std::nullopt;
	auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
	if (ec != std::errc() || p != s.data() + s.size() || v > max)
		return std::nullopt;
	return v;
}

bool has_line_break(std::string_view s)
{
	return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

Result<HealthProbe> parse_probe(std::string_view text)
{
	size_t colon = text.find(':');
	if (colon == std::string_view::npos)
		return make_error("'" + std::string(text) + "' is not <protocol>:<port>");
	std::string_view proto = text.substr(0, colon);
	auto port = parse_unsigned(text.substr(colon + 1), 65535);
	if (!port || *port == 0)
		return make_error("bad port in '" + std::string(text) + "'");
	for (HealthProtocol p : {HealthProtocol::imap, HealthProtocol::pop3, HealthProtocol::lmtp,
				 HealthProtocol::imaps, HealthProtocol::pop3s}) {
		if (health_protocol_name(p) == proto)
			return HealthProbe{p, uint16_t(*port)};
	}
	return make_error("unknown protocol '" + std::string(proto) +
			  "' (imap, pop3, lmtp, imaps or pop3s)");
}

Result<std::vector<HealthProbe>> parse_probe_list(std::string_view text)
{
	std::vector<HealthProbe> out;
	for (std::string_view item : split_on(text, ',')) {
		auto p = parse_probe(item);
		if (!p.ok())
			return make_error(p.error());
		out.push_back(*p);
	}
	return out;
}

} // namespace

// ---- settings values ------------------------------------------------------------------

std::string_view health_protocol_name(HealthProtocol protocol)
{
	switch (protocol) {
	case HealthProtocol::imap:
		return "imap";
	case HealthProtocol::pop3:
		return "pop3";
	case HealthProtocol::lmtp:
		return "lmtp";
	case HealthProtocol::imaps:
		return "imaps";
	case HealthProtocol::pop3s:
		return "pop3s";
	}
	return "?";
}

bool health_protocol_tls(HealthProtocol protocol)
{
	return protocol == HealthProtocol::imaps || protocol == HealthProtocol::pop3s;
}

const std::vector<HealthProbe> &HealthChecks::for_host(const IpAddr &ip) const
{
	auto it = per_host.find(ip);
	return it == per_host.end() ? defaults : it->second;
}

Result<HealthChecks> parse_health_checks(std::string_view value)
{
	HealthChecks out;
	bool have_defaults = false;
	for (std::string_view word : split_words(value)) {
		size_t eq = word.find('=');
		if (eq == std::string_view::npos) {
			if (have_defaults)
				return make_error("more than one list for all hosts: '" +
						  std::string(word) + "'");
			auto list = parse_probe_list(word);
			if (!list.ok())
				return make_error(list.error());
			out.defaults = *list;
			have_defaults = true;
			continue;
		}
		auto ip = IpAddr::parse(word.substr(0, eq));
		if (!ip)
			return make_error("'" + std::string(word.substr(0, eq)) +
					  "' is not an IP address");
		if (out.per_host.count(*ip) != 0)
			return make_error("host " + ip->to_string() + " is listed twice");
		auto list = parse_probe_list(word.substr(eq + 1));
		if (!list.ok())
			return make_error(list.error());
		out.per_host[*ip] = *list;
	}
	return out;
}

unsigned HealthMaxDown::limit(size_t host_count) const
{
	if (!percent)
		return value;
	if (value == 0)
		return 0;
	return std::max<unsigned>(1, unsigned(host_count * value / 100));
}

std::string HealthMaxDown::to_string() const
{
	return std::to_string(value) + (percent ? "%" : "");
}

Result<HealthMaxDown> parse_health_max_down(std::string_view value)
{
	HealthMaxDown out;
	if (!value.empty() && value.back() == '%') {
		out.percent = true;
		value.remove_suffix(1);
	}
	auto n = parse_unsigned(value, out.percent ? 100 : 1'000'000);
	if (!n)
		return make_error(out.percent ? "not a percentage from 0% to 100%"
					      : "not a host count or a percentage");
	out.value = *n;
	return out;
}

std::string HealthDecider::name() const
{
	std::string host = ip.is_v4() ? ip.to_string() : "[" + ip.to_string() + "]";
	return host + ":" + std::to_string(port);
}

Result<std::vector<HealthDecider>> parse_health_deciders(std::string_view value,
							 uint16_t default_port)
{
	std::vector<HealthDecider> out;
	for (std::string_view word : split_words(value)) {
		std::string_view host = word, port_text;
		if (!word.empty() && word.front() == '[') {
			size_t close = word.find(']');
			if (close == std::string_view::npos)
				return make_error("bad director '" + std::string(word) + "'");
			host = word.substr(1, close - 1);
			std::string_view rest = word.substr(close + 1);
			if (!rest.empty()) {
				if (rest.front() != ':')
					return make_error("bad director '" + std::string(word) + "'");
				port_text = rest.substr(1);
			}
		} else if (std::count(word.begin(), word.end(), ':') == 1) {
			size_t colon = word.find(':');
			host = word.substr(0, colon);
			port_text = word.substr(colon + 1);
		}
		auto ip = IpAddr::parse(host);
		if (!ip)
			return make_error("'" + std::string(word) + "' is not a numeric address");
		uint16_t port = default_port;
		if (!port_text.empty() || (word.back() == ':')) {
			auto p = parse_unsigned(port_text, 65535);
			if (!p || *p == 0)
				return make_error("bad port in '" + std::string(word) + "'");
			port = uint16_t(*p);
		}
		HealthDecider d{*ip, port};
		if (std::find(out.begin(), out.end(), d) == out.end())
			out.push_back(d);
	}
	std::sort(out.begin(), out.end());
	return out;
}

Result<HealthLogin> parse_health_login(std::string_view contents)
{
	HealthLogin out;
	bool have_user = false, have_password = false;
	for (std::string_view line : split_on(contents, '\n')) {
		if (!line.empty() && line.back() == '\r')
			line.remove_suffix(1);
		if (line.empty() || line.front() == '#')
			continue;
		size_t eq = line.find('=');
		if (eq == std::string_view::npos)
			return make_error("a line is not key=value");
		std::string_view key = line.substr(0, eq), val = line.substr(eq + 1);
		if (has_line_break(val))
			return make_error("a value contains a NUL or CR byte");
		if (key == "user") {
			out.user = std::string(val);
			have_user = true;
		} else if (key == "password") {
			out.password = std::string(val);
			have_password = true;
		} else {
			return make_error("unknown key '" + std::string(key) +
					  "' (user, password)");
		}
	}
	if (!have_user || out.user.empty())
		return make_error("user= is missing");
	if (!have_password)
		return make_error("password= is missing");
	return out;
}

Status validate_health_config(const HealthConfig &c)
{
	if (c.interval_msecs < 100)
		return make_error("director_health_interval must be at least 100 msecs");
	if (c.timeout_msecs < 10)
		return make_error("director_health_timeout must be at least 10 msecs");
	if (c.rapid_interval_msecs < 10)
		return make_error("director_health_rapid_interval must be at least 10 msecs");
	if (c.fail_rounds == 0)
		return make_error("director_health_fail_rounds must be at least 1");
	if (c.rapid_polls == 0)
		return make_error("director_health_rapid_polls must be at least 1");
	if (c.rapid_threshold == 0 || c.rapid_threshold > c.rapid_polls)
		return make_error("director_health_rapid_threshold must be from 1 to "
				  "director_health_rapid_polls (" + std::to_string(c.rapid_polls) + ")");
	if (c.decider_timeout_secs < 2)
		return make_error("director_health_decider_timeout must be at least 2 secs");
	if (has_line_break(c.lmtp_from) || has_line_break(c.lmtp_rcpt))
		return make_error("director_health_lmtp_from/_rcpt contain a line break");
	return Status::success();
}

} // namespace director::core
