// Running director_flush_socket (a program or a socket, Dovecot's
// program-client) asynchronously, for 2.3 and 2.4. Every run ends: with the
// program's result, or failed once its time limit passes.
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
	// program_client_exit_status, or -1 when the run timed out.
	using Callback = std::function<void(bool exit_ok, int status)>;

	ProgramRunner() = default;
	// Destroys a running program client (its socket or pipe is closed);
	// `done` is not called then.
	~ProgramRunner();
	ProgramRunner(const ProgramRunner &) = delete;
	ProgramRunner &operator=(const ProgramRunner &) = delete;

	// Starts `uri` with `args`; false and error_r when it could not be
	// created. `done` is called once, from the ioloop, never from inside
	// start(). A run still going after `run_timeout_msecs` (connect, a
	// socket that accepts and never answers, a program that hangs) is
	// logged, its program client destroyed and `done(false, -1)` called;
	// the same limit is the program client's own input idle timeout.
	bool start(struct event *event, const std::string &uri,
		   const std::vector<std::string> &args, unsigned connect_timeout_msecs,
		   unsigned run_timeout_msecs, Callback done, std::string &error_r);
	bool running() const { return pc_ != nullptr && done_ != nullptr; }

private:
	static void finished(int status, ProgramRunner *self) noexcept;
	void timed_out();

	struct program_client *pc_ = nullptr;
	struct event *event_ = nullptr;
	std::string uri_;
	unsigned run_timeout_msecs_ = 0;
	Callback done_;
	TimeoutHandle deadline_;
};

} // namespace director::adapter
