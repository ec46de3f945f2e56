// director_username_hash parsing and expansion, and the user hash itself.
// No I/O here.
#include "user-hash.h"

#include <algorithm>
#include <cstdio>

#include "digest.h"
#include "settings-table.h"

namespace director::core {

namespace {

constexpr std::string_view modifier_keys = "LUEXRHNMDT";
// Widths and offsets beyond this make no sense for a user name; refusing them
// keeps a typo from costing every lookup megabytes of padding.
constexpr int max_field_width = 1024;
// var_expand stops collecting modifiers after this many.
constexpr size_t max_modifiers = 10;

// Dovecot's str_hash(): the ELF/ASU string hash.
uint32_t elf_hash(std::string_view s)
{
	uint32_t h = 0;
	for (unsigned char c : s) {
		h = (h << 4) + c;
		uint32_t g = h & 0xf0000000u;
		if (g != 0) {
			h ^= g >> 24;
			h ^= g;
		}
	}
	return h;
}

std::string hex_u32(uint32_t v)
{
	char buf[16];
	std::snprintf(buf, sizeof(buf), "%x", v);
	return buf;
}

bool is_c_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

} // namespace

std::string ascii_lowercase(std::string_view text)
{
	std::string out(text);
	for (char &c : out) {
		if (c >= 'A' && c <= 'Z')
			c = static_cast<char>(c - 'A' + 'a');
	}
	return out;
}

uint32_t user_hash_of_bytes(std::string_view expanded)
{
	uint32_t h = md5_prefix_be32(expanded);
	return h == 0 ? 1 : h;
}

// The segments of director_username_hash's default, "%Lu" (check-settings-table
// compares this hash with the parsed default).
UsernameHash::UsernameHash() : format_(setting_default::director_username_hash)
{
	Segment seg;
	seg.is_literal = false;
	seg.modifiers = "L";
	segments_.push_back(seg);
}

Result<UsernameHash> UsernameHash::parse(std::string_view format)
{
	UsernameHash h;
	h.format_ = std::string(format);
	h.segments_.clear();
	h.fast_ = format == "%u" ? Fast::as_is : format == "%Lu" ? Fast::lowercase : Fast::none;

	std::string literal;
	auto flush_literal = [&]() {
		if (!literal.empty()) {
			Segment seg;
			seg.literal = std::move(literal);
			h.segments_.push_back(std::move(seg));
			literal.clear();
		}
	};
	auto parse_number = [&](size_t &i) {
		int n = 0;
		while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
			if (n < 100000)
				n = n * 10 + (format[i] - '0');
			i++;
		}
		return n;
	};

	for (size_t i = 0; i < format.size(); i++) {
		if (format[i] != '%') {
			literal += format[i];
			continue;
		}
		i++;
		Segment seg;
		seg.is_literal = false;
		int sign = 1;
		if (i < format.size() && format[i] == '-') {
			sign = -1;
			i++;
		}
		if (i < format.size() && format[i] == '0') {
			seg.zero_padding = true;
			i++;
		}
		seg.width = parse_number(i);
		if (i < format.size() && format[i] == '.') {
			seg.offset = sign * seg.width;
			sign = 1;
			seg.width = 0;
			i++;
			seg.zero_padding = false;
			if (i < format.size() && format[i] == '0') {
				seg.zero_padding = true;
				i++;
			}
			if (i < format.size() && format[i] == '-') {
				sign = -1;
				i++;
			}
			seg.width = sign * parse_number(i);
		}
		if (seg.width > max_field_width || seg.width < -max_field_width ||
		    seg.offset > max_field_width || seg.offset < -max_field_width)
			return make_error("Field width or offset over " + std::to_string(max_field_width) +
					  " in '" + std::string(format) + "'");
		while (i < format.size() && seg.modifiers.size() < max_modifiers &&
		       modifier_keys.find(format[i]) != std::string_view::npos)
			seg.modifiers += format[i++];
		if (i >= format.size())
			break; // a dangling '%' expands to nothing, as in var_expand

		std::string_view key;
		if (format[i] == '{' && format.find('}', i) != std::string_view::npos) {
			size_t end = format.find('}', i);
			key = format.substr(i + 1, end - i - 1);
			i = end;
		} else {
			key = format.substr(i, 1);
		}
		if (key == "%") {
			literal += '%';
			continue;
		}
		if (key == "u" || key == "user")
			seg.key = Key::user;
		else if (key == "n" || key == "username")
			seg.key = Key::username;
		else if (key == "d" || key == "domain")
			seg.key = Key::domain;
		else
			return make_error("Unknown variable '%" + std::string(key) + "' in '" +
					  std::string(format) + "' (only %u, %n, %d are known)");
		flush_literal();
		h.segments_.push_back(std::move(seg));
	}
	flush_literal();
	return h;
}

std::string UsernameHash::expand(std::string_view username) const
{
	if (fast_ == Fast::as_is)
		return std::string(username);
	if (fast_ == Fast::lowercase)
		return ascii_lowercase(username);

	std::string out;
	for (const Segment &seg : segments_) {
		if (seg.is_literal) {
			out += seg.literal;
			continue;
		}
		std::string value;
		size_t at = username.find('@');
		switch (seg.key) {
		case Key::user:
			value = std::string(username);
			break;
		case Key::username:
			value = std::string(username.substr(0, at));
			break;
		case Key::domain:
			if (at != std::string_view::npos)
				value = std::string(username.substr(at + 1));
			break;
		}
		int offset = seg.offset, width = seg.width;
		for (char m : seg.modifiers) {
			switch (m) {
			case 'L':
				value = ascii_lowercase(value);
				break;
			case 'U':
				for (char &c : value) {
					if (c >= 'a' && c <= 'z')
						c = static_cast<char>(c - 'a' + 'A');
				}
				break;
			case 'E': {
				std::string esc;
				for (char c : value) {
					if (c == '"' || c == '\\' || c == '\'')
						esc += '\\';
					esc += c;
				}
				value = std::move(esc);
				break;
			}
			case 'X': {
				unsigned long long n = 0;
				bool ok = !value.empty();
				for (char c : value) {
					if (c < '0' || c > '9') {
						ok = false;
						break;
					}
					n = n * 10 + unsigned(c - '0');
				}
				char buf[32];
				std::snprintf(buf, sizeof(buf), "%llx", ok ? n : 0ULL);
				value = buf;
				break;
			}
			case 'R':
				std::reverse(value.begin(), value.end());
				break;
			case 'H':
			case 'N': {
				uint64_t v;
				if (m == 'H') {
					v = elf_hash(value);
				} else {
					auto d = md5_digest(value);
					v = 0;
					for (int k = 0; k < 8; k++)
						v = v << 8 | d[k];
				}
				if (width != 0) {
					v %= static_cast<uint64_t>(static_cast<int64_t>(width));
					width = 0;
				}
				value = hex_u32(static_cast<uint32_t>(v));
				if (static_cast<int>(value.size()) < offset)
					value.insert(0, size_t(offset) - value.size(), '0');
				offset = 0;
				break;
			}
			case 'M': {
				static const char hex[] = "0123456789abcdef";
				auto d = md5_digest(value);
				value.clear();
				for (uint8_t b : d) {
					value += hex[b >> 4];
					value += hex[b & 15];
				}
				break;
			}
			case 'D': {
				std::string dn;
				for (char c : value) {
					if (c == '.')
						dn += ",dc=";
					else
						dn += c;
				}
				value = std::move(dn);
				break;
			}
			case 'T':
				while (!value.empty() && is_c_space(value.back()))
					value.pop_back();
				break;
			}
		}
		std::string_view v = value;
		if (offset < 0) {
			size_t from_end = static_cast<size_t>(-offset);
			if (v.size() > from_end)
				v.remove_prefix(v.size() - from_end);
		} else {
			v.remove_prefix(std::min(v.size(), static_cast<size_t>(offset)));
		}
		if (width == 0) {
			out += v;
		} else if (!seg.zero_padding) {
			long w = width;
			if (w < 0)
				w = static_cast<long>(v.size()) + w;
			// A negative result wraps to "no limit" in var_expand.
			out += w < 0 ? v : v.substr(0, static_cast<size_t>(w));
		} else {
			for (long pad = width - static_cast<long>(v.size()); pad > 0; pad--)
				out += '0';
			out += v;
		}
	}
	return out;
}

uint32_t UsernameHash::hash(std::string_view username) const
{
	return user_hash_of_bytes(expand(username));
}

} // namespace director::core
