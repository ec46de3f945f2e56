// IpAddr: an IPv4 or IPv6 address as the stock director orders, prints and
// hashes it. Pure value type; parsing is numeric only (no DNS here).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace director::core {

class IpAddr {
public:
	enum class Family : uint8_t { v4 = 4, v6 = 6 };

	IpAddr() = default; // 0.0.0.0
	static IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);

	// Parses a numeric IPv4 or IPv6 address ("10.0.0.1", "2001:db8::5").
	// No brackets, no port, no names. std::nullopt on anything else.
	static std::optional<IpAddr> parse(std::string_view text);

	// Canonical text as Dovecot prints it (inet_ntop form).
	std::string to_string() const;
	// The same text appended to `out`: IPv4 without going through
	// inet_ntop's sprintf (it is printed once per login answered).
	void append_to(std::string &out) const;

	Family family() const { return family_; }
	bool is_v4() const { return family_ == Family::v4; }
	// Address bytes in network order: 4 for IPv4, 16 for IPv6.
	const uint8_t *bytes() const { return bytes_.data(); }
	size_t size() const { return is_v4() ? 4 : 16; }

	// The 32-bit value stock Dovecot's net_ip_hash() gives; part of the SYNC
	// hosts_hash fingerprint (hashing-and-state.md §7).
	uint32_t stock_hash() const;

	// Total order of the stock director: family (IPv4 first), then bytes.
	int compare(const IpAddr &other) const;
	friend bool operator==(const IpAddr &a, const IpAddr &b) { return a.compare(b) == 0; }
	friend bool operator!=(const IpAddr &a, const IpAddr &b) { return a.compare(b) != 0; }
	friend bool operator<(const IpAddr &a, const IpAddr &b) { return a.compare(b) < 0; }

private:
	std::array<uint8_t, 16> bytes_{};
	Family family_ = Family::v4;
};

} // namespace director::core
