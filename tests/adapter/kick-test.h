// Shared by the kick client suites: the client's peer (the ipc service on
// 2.3, anvil on 2.4) as the other end of a socketpair in the same ioloop,
// and the error lines the client logged.
#pragma once

#include "adapter-test.h"

#include <cerrno>
#include <cstdarg>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "adapter/handles.h"
#include "adapter/kick-client.h"

namespace kick_test {

inline std::vector<std::string> errors; // e_error lines, in order

inline void capture_error(const struct failure_context *ctx, const char *format, va_list args)
{
	if (ctx->type == LOG_TYPE_ERROR) {
		va_list copy;
		va_copy(copy, args);
		errors.emplace_back(t_strdup_vprintf(format, copy));
		va_end(copy);
	}
	default_error_handler(ctx, format, args);
}

inline bool logged(const std::string &needle)
{
	for (const std::string &line : errors)
		if (line.find(needle) != std::string::npos)
			return true;
	return false;
}

// The far end of the client's socket. connector() hands the client a fresh
// socketpair end each time it connects (counted); the peer reads what it
// sends and writes what the test says.
struct Peer {
	int fd = -1;
	std::string received;
	bool saw_eof = false;
	unsigned connects = 0;
	bool reachable = true;
	director::adapter::IoHandle io;

	Peer() { i_set_error_handler(capture_error); }
	~Peer() { close_peer(); }

	director::adapter::KickClient::Connector connector()
	{
		return [this]() {
			if (!reachable) {
				errno = ECONNREFUSED;
				return -1;
			}
			close_peer();
			int fds[2];
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
			fd = fds[0];
			received.clear();
			saw_eof = false;
			connects++;
			net_set_nonblock(fd, TRUE);
			io.read(fd, [this]() { input(); });
			return fds[1];
		};
	}
	void input()
	{
		char buf[4096];
		ssize_t n = ::read(fd, buf, sizeof(buf));
		if (n == 0) {
			saw_eof = true;
			io.reset();
		} else if (n > 0) {
			received.append(buf, size_t(n));
		}
	}
	void send(const std::string &text)
	{
		ck_assert_int_eq(write(fd, text.data(), text.size()), (ssize_t)text.size());
	}
	void close_peer()
	{
		io.reset();
		if (fd != -1)
			close(fd);
		fd = -1;
	}
};

// What one kick's callback reported. A client destroyed at the end of a test
// reports its waiting kicks as failed, possibly after the test's Results went
// out of scope: a callback then finds its Result gone and does nothing.
struct Result {
	unsigned calls = 0;
	bool ok = false;
	std::string error;

	Result() = default;
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
	~Result() { *alive_ = false; }

	director::adapter::KickClient::Callback callback()
	{
		return [this, alive = alive_](bool ok_, const std::string &error_) {
			if (!*alive)
				return;
			calls++;
			ok = ok_;
			error = error_;
		};
	}

private:
	std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace kick_test
