// Tab-escaping, field splitting and log quoting. No I/O here.
#include "tab-escape.h"

namespace director::core {

void tab_escape_append(std::string &out, std::string_view text)
{
	for (char c : text) {
		switch (c) {
		case '\0':
			out += "\001" "0";
			break;
		case '\001':
			out += "\001" "1";
			break;
		case '\t':
			out += "\001" "t";
			break;
		case '\r':
			out += "\001" "r";
			break;
		case '\n':
			out += "\001" "n";
			break;
		default:
			out += c;
		}
	}
}

std::string tab_escape(std::string_view text)
{
	std::string out;
	out.reserve(text.size());
	tab_escape_append(out, text);
	return out;
}

std::string tab_unescape(std::string_view text)
{
	if (text.find('\001') == std::string_view::npos)
		return std::string(text);
	std::string out;
	out.reserve(text.size());
	for (size_t i = 0; i < text.size(); i++) {
		if (text[i] != '\001') {
			out += text[i];
			continue;
		}
		if (++i == text.size())
			break;
		switch (text[i]) {
		case '0':
			out += '\0';
			break;
		case '1':
			out += '\001';
			break;
		case 't':
			out += '\t';
			break;
		case 'r':
			out += '\r';
			break;
		case 'n':
			out += '\n';
			break;
		default:
			out += text[i];
		}
	}
	return out;
}

std::vector<std::string_view> split_on(std::string_view s, char sep)
{
	std::vector<std::string_view> fields;
	size_t start = 0;
	for (;;) {
		size_t pos = s.find(sep, start);
		if (pos == std::string_view::npos) {
			fields.push_back(s.substr(start));
			return fields;
		}
		fields.push_back(s.substr(start, pos - start));
		start = pos + 1;
	}
}

std::vector<std::string> split_tabescaped(std::string_view line)
{
	std::vector<std::string> fields;
	for (std::string_view f : split_tabs(line))
		fields.push_back(tab_unescape(f));
	return fields;
}

std::vector<std::string> split_c_fields(std::string_view line)
{
	line = line.substr(0, line.find('\0'));
	if (line.empty())
		return {};
	std::vector<std::string> fields = split_tabescaped(line);
	for (std::string &f : fields) {
		size_t nul = f.find('\0');
		if (nul != std::string::npos)
			f.resize(nul);
	}
	return fields;
}

std::string quote_for_log(std::string_view text, size_t max_bytes)
{
	static const char hex[] = "0123456789abcdef";
	std::string out;
	size_t n = text.size() > max_bytes ? max_bytes : text.size();
	out.reserve(n + 8);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = static_cast<unsigned char>(text[i]);
		if ((c >= 0x20 && c < 0x7f && c != '\\') || c == '\t') {
			out += static_cast<char>(c);
		} else {
			out += "\\x";
			out += hex[c >> 4];
			out += hex[c & 15];
		}
	}
	if (n < text.size())
		out += "...";
	return out;
}

} // namespace director::core
