// RAII handles for Dovecot ioloop objects. A handle's destructor removes the
// io/timeout first, so its callback can never run on a destroyed owner.
// Callbacks are std::function and must not throw (they run inside the C
// ioloop); wrap() catches and logs anything that escapes.
#pragma once

#include <functional>

struct io;
struct istream;
struct timeout;

namespace director::adapter {

// Runs `fn` so that no exception crosses into C: std::bad_alloc ends the
// process (i_fatal_status(FATAL_OUTOFMEM), the master restarts it); any
// other exception is logged with e_error and swallowed, failing only what
// `fn` was doing.
void run_noexcept(const char *what, const std::function<void()> &fn) noexcept;

class IoHandle {
public:
	IoHandle() = default;
	~IoHandle() { reset(); }
	IoHandle(const IoHandle &) = delete;
	IoHandle &operator=(const IoHandle &) = delete;

	// Watches `fd` for input; replaces any previous watch.
	void read(int fd, std::function<void()> callback);
	// Watches a stream (input it buffers counts too, as with TLS).
	void read_istream(struct istream *input, std::function<void()> callback);
	void reset();
	bool active() const { return io_ != nullptr; }
	// Runs the callback from the ioloop soon, as if input had arrived.
	void set_pending();

private:
	static void trampoline(IoHandle *self) noexcept;
	struct io *io_ = nullptr;
	std::function<void()> callback_;
};

class TimeoutHandle {
public:
	TimeoutHandle() = default;
	~TimeoutHandle() { reset(); }
	TimeoutHandle(const TimeoutHandle &) = delete;
	TimeoutHandle &operator=(const TimeoutHandle &) = delete;

	// Calls `callback` every `interval_msecs` until reset() (repeating), or
	// once (after which the handle is inactive again).
	void repeat(unsigned interval_msecs, std::function<void()> callback);
	void once(unsigned delay_msecs, std::function<void()> callback);
	void reset();
	bool active() const { return to_ != nullptr; }

private:
	static void trampoline(TimeoutHandle *self) noexcept;
	struct timeout *to_ = nullptr;
	bool once_ = false;
	std::function<void()> callback_;
};

} // namespace director::adapter
