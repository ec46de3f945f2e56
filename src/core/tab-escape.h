// Dovecot's tab-escaping (escape byte 0x01) and TAB-separated line splitting:
// the one implementation every protocol codec uses. No I/O here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace director::core {

// Escapes NUL, 0x01, TAB, CR and LF as 0x01 followed by '0', '1', 't', 'r', 'n'.
std::string tab_escape(std::string_view text);
void tab_escape_append(std::string &out, std::string_view text);

// Reverses tab_escape(). Like Dovecot: an unknown escape yields the byte after
// 0x01 as is, and a trailing lone 0x01 is dropped.
std::string tab_unescape(std::string_view text);

// Splits a line (without its LF) at TABs and unescapes every field. An empty
// line gives one empty field (Dovecot's t_strsplit_tabescaped() gives none:
// callers deal with empty lines before splitting).
std::vector<std::string> split_tabescaped(std::string_view line);

// The fields of a protocol line as stock's C code sees them: split and
// unescaped as by t_strsplit_tabescaped(), the line and every field cut at an
// embedded NUL. An empty line has no fields.
std::vector<std::string> split_c_fields(std::string_view line);

// Splits at every `sep` (n separators give n + 1 fields, empty ones kept); the
// views point into `s`.
std::vector<std::string_view> split_on(std::string_view s, char sep);

// Splits at TABs without unescaping; the views point into `line`.
inline std::vector<std::string_view> split_tabs(std::string_view line)
{
	return split_on(line, '\t');
}

// Quotes untrusted text for a log line: printable ASCII and TAB are kept (as
// stock logs them), anything else becomes \xHH, and text longer than max_bytes is cut with "...".
std::string quote_for_log(std::string_view text, size_t max_bytes = 80);

} // namespace director::core
