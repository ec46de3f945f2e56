// Auth reply inspection and rewriting. No I/O here.
#include "auth-reply.h"

#include <algorithm>

#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

namespace {

bool starts_with(std::string_view s, std::string_view prefix)
{
	return s.substr(0, prefix.size()) == prefix;
}

// "name" alone or "name=...".
bool is_flag(std::string_view field, std::string_view name)
{
	return starts_with(field, name) &&
	       (field.size() == name.size() || field[name.size()] == '=');
}

// The text after "OK\t" / "PASS\t", or nullopt if the line is not inspected.
std::optional<std::string_view> params_of(std::string_view line, AuthReplySocket socket)
{
	std::string_view prefix = socket == AuthReplySocket::userdb ? "PASS\t" : "OK\t";
	line = line.substr(0, line.find('\0'));
	if (!starts_with(line, prefix))
		return std::nullopt;
	return line.substr(prefix.size());
}

Status parse_version_line(std::string_view line, std::string_view name)
{
	const Error bad = make_error("authreply client sent invalid handshake: " +
				     quote_for_log(line));
	line = line.substr(0, line.find('\0'));
	std::string prefix = "VERSION\t" + std::string(name) + "\t";
	if (!starts_with(line, prefix))
		return bad;
	line.remove_prefix(prefix.size());
	size_t tab = line.find('\t');
	if (tab == std::string_view::npos)
		return bad;
	auto major = parse_stock_uint64(line.substr(0, tab));
	if (!major || *major != 1 || !parse_stock_uint32(line.substr(tab + 1)))
		return bad;
	return Status::success();
}

} // namespace

AuthReply inspect_auth_reply(std::string_view line, AuthReplySocket socket)
{
	AuthReply r;
	auto params = params_of(line, socket);
	if (!params)
		return r;
	r.inspected = true;
	r.id = std::string(params->substr(0, params->find('\t')));
	if (params->empty())
		return r;

	// Walk the fields in place: this runs for every login, and only a few
	// values are kept. A field with an escape is unescaped first (rare).
	bool have_user = false; // user= seen (destuser= may still override)
	std::string unescaped;
	std::string_view rest = *params;
	size_t tab = rest.find('\t');
	rest = tab == std::string_view::npos ? std::string_view() : rest.substr(tab + 1);
	bool more = tab != std::string_view::npos;
	while (more) {
		tab = rest.find('\t');
		std::string_view a = rest.substr(0, tab);
		more = tab != std::string_view::npos;
		if (more)
			rest.remove_prefix(tab + 1);
		if (a.find('\001') != std::string_view::npos) {
			unescaped = tab_unescape(a);
			a = unescaped;
		}
		a = a.substr(0, a.find('\0'));
		if (is_flag(a, "proxy")) {
			r.proxy = true;
		} else if (starts_with(a, "host=")) {
			r.has_host = true;
		} else if (starts_with(a, "lip=")) {
			if (auto ip = parse_stock_ip(a.substr(4)))
				r.local_ip = ip;
			else
				r.warnings.push_back("auth sent invalid lip field: " +
						     quote_for_log(a.substr(4)));
		} else if (starts_with(a, "lport=")) {
			if (auto port = parse_stock_port(a.substr(6)))
				r.local_port = *port;
			else
				r.warnings.push_back("auth sent invalid lport field: " +
						     quote_for_log(a.substr(6)));
		} else if (starts_with(a, "port=")) {
			if (auto port = parse_stock_port(a.substr(5)))
				r.dest_port = *port;
			else
				r.warnings.push_back("auth sent invalid port field: " +
						     quote_for_log(a.substr(5)));
		} else if (starts_with(a, "destuser=")) {
			r.username = std::string(a.substr(9));
			have_user = true;
		} else if (starts_with(a, "director_tag=")) {
			r.tag = std::string(a.substr(13));
		} else if (is_flag(a, "director_proxy_maybe")) {
			r.proxy_maybe = true;
		} else if (starts_with(a, "user=")) {
			if (!have_user) {
				r.username = std::string(a.substr(5));
				have_user = true;
			}
		}
	}
	return r;
}

bool auth_reply_needs_host(const AuthReply &reply)
{
	return reply.inspected && (reply.proxy || reply.proxy_maybe) && !reply.has_host &&
	       reply.username.has_value();
}

std::string_view auth_reply_hash_name(const AuthReply &reply,
				      std::string_view master_user_separator)
{
	if (!reply.username)
		return {};
	std::string_view name = *reply.username;
	if (!master_user_separator.empty())
		name = name.substr(0, name.find(master_user_separator[0]));
	return name;
}

bool auth_reply_host_is_self(const AuthReply &reply, const IpAddr &host_ip)
{
	if (!reply.local_ip || *reply.local_ip != host_ip)
		return false;
	return reply.dest_port == 0 || reply.local_port == 0 ||
	       reply.dest_port == reply.local_port;
}

std::string format_auth_reply_with_host(const AuthReply &reply, std::string_view original_line,
					uint32_t proxy_refresh_secs, const IpAddr &host_ip,
					std::string_view hostname)
{
	std::string_view kept = original_line.substr(0, original_line.find('\0'));
	std::string out;
	// Room for the fields below and a caller's LF: one allocation.
	out.reserve(kept.size() + 80 + hostname.size());
	out += kept;
	if (reply.proxy_maybe && auth_reply_host_is_self(reply, host_ip))
		return out;
	out += "\tproxy_refresh=";
	out += std::to_string(proxy_refresh_secs);
	out += "\thost=";
	if (!hostname.empty()) {
		tab_escape_append(out, hostname);
		out += "\thostip=";
	}
	host_ip.append_to(out);
	return out;
}

std::string format_auth_reply_fail(std::string_view original_line)
{
	std::string_view params = original_line;
	if (starts_with(params, "OK\t"))
		params.remove_prefix(3);
	else if (starts_with(params, "PASS\t"))
		params.remove_prefix(5);
	params = params.substr(0, params.find('\0'));
	return "FAIL\t" + std::string(params.substr(0, params.find('\t'))) + "\tcode=temp_fail";
}

Status parse_authreply_handshake(std::string_view line)
{
	return parse_version_line(line, "director-authreply-client");
}

std::string format_authreply_handshake()
{
	return "VERSION\tdirector-authreply-server\t1\t0";
}

void AuthRequestCounter::client_bytes(std::string_view data)
{
	size_t pos = 0;
	while (pos < data.size()) {
		size_t lf = data.find('\n', pos);
		if (!head_done_) {
			size_t line_end = lf == std::string_view::npos ? data.size() : lf;
			size_t n = std::min(line_end - pos, head_.size() - head_len_);
			data.copy(head_.data() + head_len_, n, pos);
			head_len_ += n;
			pos += n;
			if (head_len_ < head_.size() && pos == data.size())
				return; // the line's start goes on in the next chunk
			count_line_start();
			head_done_ = true;
		}
		if (lf == std::string_view::npos)
			return;
		pos = lf + 1;
		head_len_ = 0;
		head_done_ = false;
	}
}

void AuthRequestCounter::count_line_start()
{
	std::string_view head(head_.data(), head_len_);
	if (head.substr(0, 5) == "AUTH\t")
		open_++;
	else if (head.substr(0, 7) == "CANCEL\t" && open_ > 0)
		open_--;
}

void AuthRequestCounter::auth_line(std::string_view line)
{
	if (open_ > 0 && (line.substr(0, 3) == "OK\t" || line.substr(0, 5) == "FAIL\t"))
		open_--;
}

} // namespace director::core
