// Running director_flush_socket (a program or a socket, Dovecot's
// program-client) asynchronously, for 2.3 and 2.4.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "adapter/handles.h"

struct event;
struct program_client;

namespace director::adapter {

class ProgramRunner {
public:
	// exit_ok: the program exited with status 0. `status` is Dovecot's
	// program_client_exit_status, for the log.
	using Callback = std::function<void(bool exit_ok, int status)>;

	ProgramRunner() = default;
	~ProgramRunner();
	ProgramRunner(const ProgramRunner &) = delete;
	ProgramRunner &operator=(const ProgramRunner &) = delete;

	// Starts `uri` with `args`; false and error_r when it could not be
	// created. `done` is called once, from the ioloop.
	bool start(struct event *event, const std::string &uri,
		   const std::vector<std::string> &args, unsigned connect_timeout_msecs,
		   Callback done, std::string &error_r);

private:
	static void finished(int status, ProgramRunner *self) noexcept;

	struct program_client *pc_ = nullptr;
	Callback done_;
};

} // namespace director::adapter
