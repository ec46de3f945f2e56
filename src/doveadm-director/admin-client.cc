// AdminClient: blocking director-admin client over the core codecs.
#include "doveadm-director/admin-client.h"

#include <cerrno>
#include <cstdarg>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "adapter/dovecot.h"
#include "core/tab-escape.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
extern "C" {
#include "doveadm.h"
#include "doveadm-settings.h"
}
#pragma GCC diagnostic pop

namespace director::doveadm {

namespace {
// Bounds every read, so a hung director cannot hang doveadm.
constexpr int admin_timeout_secs = 30;
// A reply line longer than this is not the protocol.
constexpr size_t admin_max_reply_line_bytes = 1024 * 1024;
} // namespace

void admin_fail(int exit_code, const char *fmt, ...)
{
	va_list args;
	va_start(args, fmt);
	i_error("%s", t_strdup_vprintf(fmt, args));
	va_end(args);
	doveadm_exit_code = exit_code;
}

std::string admin_socket_path(const char *param_value)
{
	if (param_value != nullptr && *param_value != '\0')
		return param_value;
	return std::string(doveadm_settings->base_dir) + "/director-admin";
}

AdminClient::~AdminClient()
{
	if (fd_ != -1)
		close(fd_);
}

bool AdminClient::open(const std::string &path)
{
	fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa;
	i_zero(&sa);
	sa.sun_family = AF_UNIX;
	if (fd_ == -1 || path.size() >= sizeof(sa.sun_path)) {
		admin_fail(EX_TEMPFAIL, "net_connect_unix(%s) failed: %s", path.c_str(),
			   fd_ == -1 ? strerror(errno) : "path too long");
		return false;
	}
	memcpy(sa.sun_path, path.c_str(), path.size());
	struct timeval tv = {admin_timeout_secs, 0};
	(void)setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd_, reinterpret_cast<struct sockaddr *>(&sa), sizeof(sa)) < 0) {
		admin_fail(EX_TEMPFAIL, "net_connect_unix(%s) failed: %m", path.c_str());
		return false;
	}
	send(core::format_admin_handshake());
	std::optional<std::string> v = line();
	if (!v)
		return false;
	// The director's greeting has the same form as ours.
	if (!core::parse_admin_handshake(*v).ok()) {
		admin_fail(EX_PROTOCOL, "%s not a compatible director-doveadm socket",
			   path.c_str());
		return false;
	}
	return true;
}

void AdminClient::send(std::string_view cmd)
{
	std::string data(cmd);
	data += '\n';
	const char *p = data.data();
	size_t left = data.size();
	while (left > 0) {
		ssize_t n = write(fd_, p, left);
		if (n <= 0)
			return; // the read that follows reports it
		p += n;
		left -= size_t(n);
	}
}

std::optional<std::string> AdminClient::line()
{
	for (;;) {
		size_t lf = buf_.find('\n');
		if (lf != std::string::npos) {
			std::string out = buf_.substr(0, lf);
			buf_.erase(0, lf + 1);
			return out;
		}
		if (buf_.size() > admin_max_reply_line_bytes) {
			admin_fail(EX_PROTOCOL, "director sent a too long line");
			return std::nullopt;
		}
		char tmp[4096];
		ssize_t n = read(fd_, tmp, sizeof(tmp));
		if (n > 0) {
			buf_.append(tmp, size_t(n));
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			admin_fail(EX_TEMPFAIL, "Director timed out");
		else if (n < 0)
			admin_fail(EX_TEMPFAIL, "read(director) failed: %m");
		else
			admin_fail(EX_TEMPFAIL, "Director disconnected unexpectedly");
		return std::nullopt;
	}
}

std::optional<std::string> AdminClient::command(const core::AdminCommand &cmd)
{
	return command_line(core::format_admin_command(cmd));
}

std::optional<std::string> AdminClient::command_line(std::string_view cmd)
{
	send(cmd);
	return line();
}

std::optional<AdminClient::Rows> AdminClient::listing(const core::AdminCommand &cmd)
{
	return listing_line(core::format_admin_command(cmd));
}

std::optional<AdminClient::Rows> AdminClient::listing_line(std::string_view cmd)
{
	send(cmd);
	Rows rows;
	for (;;) {
		std::optional<std::string> l = line();
		if (!l)
			return std::nullopt;
		if (l->empty())
			return rows;
		rows.push_back(core::split_tabescaped(*l));
	}
}

} // namespace director::doveadm
