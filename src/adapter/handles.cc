// io_add()/timeout_add() behind RAII handles.
#include "adapter/handles.h"

#include <exception>
#include <new>

#include "adapter/dovecot.h"
#include "adapter/event-log.h"

namespace director::adapter {

void run_noexcept(const char *what, const std::function<void()> &fn) noexcept
{
	try {
		fn();
	} catch (const std::bad_alloc &) {
		// Out of memory (vsz_limit reached) is fatal, as in Dovecot's own
		// allocators: carrying on would leave a lookup unanswered or a
		// batch of the core's effects half done. The master restarts
		// the process, which relearns the user table from the ring.
		i_fatal_status(FATAL_OUTOFMEM, "%s: Out of memory (service director { vsz_limit } "
			       "may be too small for the user table)",
			       what);
	} catch (const std::exception &e) {
		e_error(director_root_event(), "%s failed: %s", what, e.what());
	} catch (...) {
		e_error(director_root_event(), "%s failed: unknown exception", what);
	}
}

void IoHandle::read(int fd, std::function<void()> callback)
{
	reset();
	callback_ = std::move(callback);
	io_ = io_add(fd, IO_READ, trampoline, this);
}

void IoHandle::read_istream(struct istream *input, std::function<void()> callback)
{
	reset();
	callback_ = std::move(callback);
	io_ = io_add_istream(input, trampoline, this);
}

void IoHandle::reset()
{
	if (io_ != nullptr)
		io_remove(&io_);
}

void IoHandle::set_pending()
{
	if (io_ != nullptr)
		io_set_pending(io_);
}

void IoHandle::trampoline(IoHandle *self) noexcept
{
	// Copy: the callback may reset or destroy this handle.
	std::function<void()> cb = self->callback_;
	run_noexcept("io callback", cb);
}

void TimeoutHandle::repeat(unsigned interval_msecs, std::function<void()> callback)
{
	reset();
	once_ = false;
	callback_ = std::move(callback);
	to_ = timeout_add(interval_msecs, trampoline, this);
}

void TimeoutHandle::once(unsigned delay_msecs, std::function<void()> callback)
{
	reset();
	once_ = true;
	callback_ = std::move(callback);
	to_ = timeout_add(delay_msecs, trampoline, this);
}

void TimeoutHandle::reset()
{
	if (to_ != nullptr)
		timeout_remove(&to_);
}

void TimeoutHandle::trampoline(TimeoutHandle *self) noexcept
{
	std::function<void()> cb = self->callback_;
	if (self->once_)
		self->reset();
	run_noexcept("timeout callback", cb);
}

} // namespace director::adapter
