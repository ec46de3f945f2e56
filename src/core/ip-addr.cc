// IpAddr parsing, printing, ordering and the stock net_ip_hash(). No I/O here.
#include "ip-addr.h"

#include <arpa/inet.h>
#include <cstring>

namespace director::core {

IpAddr IpAddr::v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	IpAddr ip;
	ip.bytes_[0] = a;
	ip.bytes_[1] = b;
	ip.bytes_[2] = c;
	ip.bytes_[3] = d;
	return ip;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text)
{
	// inet_pton wants a NUL-terminated string; the longest valid form
	// (IPv6 with an embedded IPv4 tail) is 45 characters.
	char buf[INET6_ADDRSTRLEN + 1];
	// An embedded NUL would end the C string early and let "10.0.0.1\0junk"
	// pass.
	if (text.empty() || text.size() >= sizeof(buf) || text.find('\0') != std::string_view::npos)
		return std::nullopt;
	std::memcpy(buf, text.data(), text.size());
	buf[text.size()] = '\0';

	IpAddr ip;
	if (text.find(':') == std::string_view::npos) {
		if (inet_pton(AF_INET, buf, ip.bytes_.data()) != 1)
			return std::nullopt;
		ip.family_ = Family::v4;
	} else {
		if (inet_pton(AF_INET6, buf, ip.bytes_.data()) != 1)
			return std::nullopt;
		ip.family_ = Family::v6;
	}
	return ip;
}

std::string IpAddr::to_string() const
{
	std::string out;
	append_to(out);
	return out;
}

void IpAddr::append_to(std::string &out) const
{
	if (is_v4()) {
		char buf[16]; // "255.255.255.255"
		char *p = buf;
		for (size_t i = 0; i < 4; i++) {
			unsigned v = bytes_[i];
			if (v >= 100)
				*p++ = char('0' + v / 100);
			if (v >= 10)
				*p++ = char('0' + v / 10 % 10);
			*p++ = char('0' + v % 10);
			*p++ = '.';
		}
		out.append(buf, size_t(p - buf) - 1);
		return;
	}
	char buf[INET6_ADDRSTRLEN];
	if (inet_ntop(AF_INET6, bytes_.data(), buf, sizeof(buf)) != nullptr)
		out += buf;
}

uint32_t IpAddr::stock_hash() const
{
	if (is_v4()) {
		// The in-memory s_addr of a little-endian host.
		return uint32_t(bytes_[0]) | uint32_t(bytes_[1]) << 8 | uint32_t(bytes_[2]) << 16 |
		       uint32_t(bytes_[3]) << 24;
	}
	uint32_t h = 0;
	for (size_t i = 0; i < 16; i++) {
		h = (h << 4) + bytes_[i];
		uint32_t g = h & 0xf0000000u;
		if (g != 0) {
			h ^= g >> 24;
			h ^= g;
		}
	}
	return h;
}

int IpAddr::compare(const IpAddr &other) const
{
	if (family_ != other.family_)
		return family_ == Family::v4 ? -1 : 1;
	return std::memcmp(bytes_.data(), other.bytes_.data(), size());
}

} // namespace director::core
