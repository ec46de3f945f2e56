// The director's user hash: director_username_hash expanded for a user name,
// MD5'd, first four bytes big-endian, 0 mapped to 1. No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace director::core {

// A parsed director_username_hash template. The stock director expands it
// with Dovecot's var_expand at every lookup and fails the lookup when it has
// an unknown variable; we parse it once so that a bad template is refused at
// startup instead. Supported: literal text, %%, %u %n %d and %{user}
// %{username} %{domain}, the modifiers L U E X R H N M D T, and the
// [-][0]<width>[.<offset>] field widths. Anything else is an error.
class UsernameHash {
public:
	static Result<UsernameHash> parse(std::string_view format);

	// The default "%Lu".
	UsernameHash();

	// The bytes that get hashed for `username`.
	std::string expand(std::string_view username) const;
	// The 32-bit user hash of `username` (never 0).
	uint32_t hash(std::string_view username) const;

	const std::string &format() const { return format_; }

private:
	enum class Fast : uint8_t { none, as_is, lowercase };
	enum class Key : uint8_t { user, username, domain };
	struct Segment {
		std::string literal; // used when is_literal
		bool is_literal = true;
		Key key = Key::user;
		std::string modifiers;
		int offset = 0;
		int width = 0;
		bool zero_padding = false;
	};

	std::string format_;
	std::vector<Segment> segments_;
	Fast fast_ = Fast::lowercase;
};

// md5_prefix_be32() with the stock 0 -> 1 substitution.
uint32_t user_hash_of_bytes(std::string_view expanded);

// ASCII-only lowercasing, as Dovecot's t_str_lcase() (bytes >= 0x80 stay).
std::string ascii_lowercase(std::string_view text);

} // namespace director::core
