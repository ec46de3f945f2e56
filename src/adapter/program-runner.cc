// ProgramRunner over lib-dovecot's program-client (2.3 and 2.4 APIs).
#include "adapter/program-runner.h"

#include "adapter/dovecot.h"

extern "C" {
#include "program-client.h"
#include "restrict-access.h"
}

namespace director::adapter {

ProgramRunner::~ProgramRunner()
{
	deadline_.reset();
	if (pc_ != nullptr)
		program_client_destroy(&pc_);
}

bool ProgramRunner::start(struct event *event, const std::string &uri,
			  const std::vector<std::string> &args, unsigned connect_timeout_msecs,
			  unsigned run_timeout_msecs, Callback done, std::string &error_r)
{
	std::vector<const char *> argv;
	for (const auto &a : args)
		argv.push_back(a.c_str());
	argv.push_back(nullptr);
	const char *error;
#if DIRECTOR_DOVECOT_API == 23
	struct program_client_settings set;
	i_zero(&set);
	set.client_connect_timeout_msecs = connect_timeout_msecs;
	set.input_idle_timeout_msecs = run_timeout_msecs;
	restrict_access_init(&set.restrict_set);
	set.event = event;
	int ret = program_client_create(uri.c_str(), argv.data(), &set, FALSE, &pc_, &error);
#else
	struct program_client_parameters params;
	i_zero(&params);
	params.client_connect_timeout_msecs = connect_timeout_msecs;
	params.input_idle_timeout_msecs = run_timeout_msecs;
	int ret = program_client_create(event, uri.c_str(), argv.data(), &params, &pc_, &error);
#endif
	if (ret != 0) {
		error_r = error;
		return false;
	}
	event_ = event;
	uri_ = uri;
	run_timeout_msecs_ = run_timeout_msecs;
	done_ = std::move(done);
	// Our own limit as well: the program client's timeouts do not cover
	// every stage on both Dovecot versions, and a run must always end.
	if (run_timeout_msecs > 0)
		deadline_.once(run_timeout_msecs, [this]() { timed_out(); });
	(program_client_run_async)(pc_, reinterpret_cast<program_client_callback_t *>(finished),
				   this);
	return true;
}

void ProgramRunner::timed_out()
{
	if (!done_)
		return;
	e_error(event_, "%s: Flush program did not finish in %u msecs, aborting it", uri_.c_str(),
		run_timeout_msecs_);
	// Safe here: this is our timeout, not a program client callback.
	if (pc_ != nullptr)
		program_client_destroy(&pc_);
	Callback cb = std::move(done_);
	done_ = nullptr;
	cb(false, -1);
}

void ProgramRunner::finished(int status, ProgramRunner *self) noexcept
{
	// The program client must outlive this callback: the owner destroys
	// this object only after the callback returned.
	self->deadline_.reset();
	if (!self->done_)
		return;
	Callback cb = std::move(self->done_);
	self->done_ = nullptr;
	run_noexcept("program result",
		     [&]() { cb(status == PROGRAM_CLIENT_EXIT_STATUS_SUCCESS, status); });
}

} // namespace director::adapter
