// Setting-value parsers and Dovecot's numeric/IP syntax. No I/O, no DNS here.
#include "config-values.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <limits>

#include "tab-escape.h"

namespace director::core {

namespace {

// Parses leading decimal digits like str_parse_uintmax(): at least one digit, no
// overflow. Returns the number of digits consumed, 0 on failure.
size_t parse_digits(std::string_view text, uint64_t &value_r)
{
	uint64_t n = 0;
	size_t i = 0;
	for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; i++) {
		unsigned digit = static_cast<unsigned>(text[i] - '0');
		if (n > (std::numeric_limits<uint64_t>::max() - digit) / 10)
			return 0;
		n = n * 10 + digit;
	}
	value_r = n;
	return i;
}

// Stock's fast IPv4 path: "N" (one 32-bit number) or "a.b.c.d" with decimal parts.
std::optional<IpAddr> parse_ipv4_fast(std::string_view text)
{
	uint64_t num;
	size_t used = parse_digits(text, num);
	if (used == 0 || num > 0xffffffffu)
		return std::nullopt;
	if (used == text.size()) {
		return IpAddr::v4(uint8_t(num >> 24), uint8_t(num >> 16), uint8_t(num >> 8),
				  uint8_t(num));
	}
	uint8_t parts[4];
	for (size_t i = 0;; i++) {
		if (num >= 256)
			return std::nullopt;
		parts[i] = uint8_t(num);
		text.remove_prefix(used);
		if (i == 3)
			break;
		if (text.empty() || text[0] != '.')
			return std::nullopt;
		text.remove_prefix(1);
		used = parse_digits(text, num);
		if (used == 0 || num > 0xffffffffu)
			return std::nullopt;
	}
	if (!text.empty())
		return std::nullopt;
	return IpAddr::v4(parts[0], parts[1], parts[2], parts[3]);
}

} // namespace

std::optional<uint64_t> parse_stock_uint64(std::string_view text)
{
	uint64_t n;
	if (text.empty() || parse_digits(text, n) != text.size())
		return std::nullopt;
	return n;
}

std::optional<uint32_t> parse_stock_uint32(std::string_view text)
{
	auto n = parse_stock_uint64(text);
	if (!n || *n > std::numeric_limits<uint32_t>::max())
		return std::nullopt;
	return uint32_t(*n);
}

std::optional<int64_t> parse_stock_time(std::string_view text)
{
	bool neg = !text.empty() && text[0] == '-';
	if (neg)
		text.remove_prefix(1);
	auto n = parse_stock_uint64(text);
	if (!n)
		return std::nullopt;
	constexpr uint64_t max = uint64_t(std::numeric_limits<int64_t>::max());
	if (!neg)
		return *n <= max ? std::optional<int64_t>(int64_t(*n)) : std::nullopt;
	if (*n > max + 1)
		return std::nullopt;
	return *n == max + 1 ? std::numeric_limits<int64_t>::min() : -int64_t(*n);
}

std::optional<uint16_t> parse_stock_port(std::string_view text)
{
	auto n = parse_stock_uint64(text);
	if (!n || *n == 0 || *n > 65535)
		return std::nullopt;
	return uint16_t(*n);
}

std::optional<IpAddr> parse_stock_ip(std::string_view text)
{
	if (auto ip = parse_ipv4_fast(text))
		return ip;
	if (text.find('\0') != std::string_view::npos)
		return std::nullopt;
	if (text.find(':') != std::string_view::npos) {
		if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
			text = text.substr(1, text.size() - 2);
		auto ip = IpAddr::parse(text);
		if (!ip || ip->is_v4())
			return std::nullopt;
		return ip;
	}
	std::string buf(text);
	struct in_addr addr;
	if (inet_aton(buf.c_str(), &addr) == 0)
		return std::nullopt;
	const auto *b = reinterpret_cast<const uint8_t *>(&addr.s_addr);
	return IpAddr::v4(b[0], b[1], b[2], b[3]);
}

namespace {

// Splits at runs of spaces like t_strsplit_spaces(value, " "); no empty entries.
std::vector<std::string_view> split_spaces(std::string_view value)
{
	std::vector<std::string_view> out;
	size_t pos = 0;
	while (pos < value.size()) {
		if (value[pos] == ' ') {
			pos++;
			continue;
		}
		size_t end = value.find(' ', pos);
		if (end == std::string_view::npos)
			end = value.size();
		out.push_back(value.substr(pos, end - pos));
		pos = end;
	}
	return out;
}

// Expands ip1..ip2 (inclusive) into `out` under stock's rules.
Status add_range(const IpAddr &ip1, const IpAddr &ip2, const std::string &tag,
		 std::string_view entry, std::vector<MailServerEntry> &out)
{
	std::string range = ip1.to_string() + "-" + ip2.to_string();
	std::string where = " (entry \"" + quote_for_log(entry) + "\")";
	if (ip1.family() != ip2.family()) {
		return make_error("IP address family mismatch: " + ip1.to_string() + " vs " +
				  ip2.to_string() + where);
	}
	if (ip1.compare(ip2) > 0)
		return make_error("IP addresses reversed: " + range + where);
	// Only the last byte (IPv4) or the last two bytes (IPv6) may differ.
	size_t fixed = ip1.is_v4() ? 3 : 14;
	if (std::memcmp(ip1.bytes(), ip2.bytes(), fixed) != 0)
		return make_error("IP address range too large: " + range + where);

	unsigned first = ip1.is_v4() ? ip1.bytes()[3]
				     : unsigned(ip1.bytes()[14]) << 8 | ip1.bytes()[15];
	unsigned last = ip2.is_v4() ? ip2.bytes()[3]
				    : unsigned(ip2.bytes()[14]) << 8 | ip2.bytes()[15];
	for (unsigned n = first; n <= last; n++) {
		MailServerEntry e;
		e.tag = tag;
		if (ip1.is_v4()) {
			const uint8_t *b = ip1.bytes();
			e.ip = IpAddr::v4(b[0], b[1], b[2], uint8_t(n));
		} else {
			// Build the text form and parse it back: IpAddr has no byte setter.
			uint8_t raw[16];
			std::memcpy(raw, ip1.bytes(), 16);
			raw[14] = uint8_t(n >> 8);
			raw[15] = uint8_t(n);
			char text[INET6_ADDRSTRLEN];
			if (inet_ntop(AF_INET6, raw, text, sizeof(text)) == nullptr)
				return make_error("IP address range too large: " + range + where);
			e.ip = *IpAddr::parse(text);
		}
		out.push_back(std::move(e));
	}
	return Status::success();
}

} // namespace

Result<std::vector<MailServerEntry>> parse_mail_servers(std::string_view value)
{
	std::vector<MailServerEntry> out;
	for (std::string_view entry : split_spaces(value)) {
		std::string_view host = entry;
		std::string tag;
		size_t at = host.find('@');
		if (at != std::string_view::npos) {
			tag = std::string(host.substr(at + 1));
			host = host.substr(0, at);
		}
		size_t dash = host.find('-');
		if (dash != std::string_view::npos) {
			auto ip1 = parse_stock_ip(host.substr(0, dash));
			auto ip2 = parse_stock_ip(host.substr(dash + 1));
			if (ip1 && ip2) {
				Status st = add_range(*ip1, *ip2, tag, entry, out);
				if (!st)
					return make_error(st.error());
				continue;
			}
		}
		MailServerEntry e;
		e.tag = tag;
		if (auto ip = parse_stock_ip(host)) {
			e.ip = *ip;
		} else if (host.empty()) {
			return make_error("Unknown mail host: (empty) (entry \"" +
					  quote_for_log(entry) + "\")");
		} else {
			e.needs_dns = true;
			e.hostname = std::string(host);
		}
		out.push_back(std::move(e));
	}
	if (out.empty())
		return make_error("Empty server list");
	return out;
}

Result<std::vector<DirectorServerEntry>> parse_director_servers(std::string_view value,
								uint16_t default_port)
{
	std::vector<DirectorServerEntry> out;
	for (std::string_view entry : split_spaces(value)) {
		auto invalid = [&]() {
			return make_error("Invalid director host:port in '" + quote_for_log(entry) +
					  "'");
		};
		std::string_view host;
		std::string_view rest; // "" or ":port"
		if (entry[0] == '[') {
			size_t close = entry.find(']');
			if (close == std::string_view::npos)
				return invalid();
			host = entry.substr(1, close - 1);
			rest = entry.substr(close + 1);
		} else {
			size_t colon = entry.find(':');
			if (colon == std::string_view::npos ||
			    entry.find(':', colon + 1) != std::string_view::npos) {
				host = entry;
			} else {
				host = entry.substr(0, colon);
				rest = entry.substr(colon);
			}
		}
		DirectorServerEntry e;
		e.port = default_port;
		if (!rest.empty()) {
			if (rest[0] != ':')
				return invalid();
			auto port = parse_stock_port(rest.substr(1));
			if (!port)
				return invalid();
			e.port = *port;
		}
		if (host.empty())
			return invalid();
		e.host = std::string(host);
		e.ip = parse_stock_ip(host);
		out.push_back(std::move(e));
	}
	return out;
}

std::string_view proxy_notify_user(std::string_view line)
{
	return line.substr(0, line.find('\0'));
}

} // namespace director::core
