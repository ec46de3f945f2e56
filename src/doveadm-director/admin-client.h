// AdminClient: doveadm's side of the director-admin protocol, shared by every
// "doveadm director ..." command of the plugin (cmd-director.cc on 2.4,
// cmd-health.cc on both). The handshake, the command lines and the reply
// splitting are the core's codecs (core/admin-protocol.h, core/tab-escape.h);
// this file only does the blocking socket I/O, every read bounded by a timeout.
//
// A failure is printed with i_error() and sets doveadm_exit_code (EX_TEMPFAIL
// when the director cannot be reached, times out or disconnects; EX_PROTOCOL
// for a reply that is not the protocol), as 2.3's doveadm does for these
// commands; the caller then just returns.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/admin-protocol.h"

namespace director::doveadm {

// Prints the error and sets doveadm's exit code.
void admin_fail(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

class AdminClient {
public:
	AdminClient() = default;
	~AdminClient();
	AdminClient(const AdminClient &) = delete;
	AdminClient &operator=(const AdminClient &) = delete;

	// Connects to the director-admin socket at `path` and does the handshake.
	// False (after admin_fail()) when that did not work.
	bool open(const std::string &path);

	// One command, one reply line; nullopt (after admin_fail()) on failure.
	std::optional<std::string> command(const core::AdminCommand &cmd);
	// The same for a command line the codec does not format (our extensions,
	// or arguments passed on unparsed for the director to judge).
	std::optional<std::string> command_line(std::string_view line);

	// A listing: tab-unescaped rows until the empty line; nullopt on failure.
	using Rows = std::vector<std::vector<std::string>>;
	std::optional<Rows> listing(const core::AdminCommand &cmd);
	std::optional<Rows> listing_line(std::string_view line);

private:
	void send(std::string_view line);
	std::optional<std::string> line();

	int fd_ = -1;
	std::string buf_;
};

// The director-admin socket a command talks to: its -a parameter, else
// base_dir/director-admin.
std::string admin_socket_path(const char *param_value);

} // namespace director::doveadm
