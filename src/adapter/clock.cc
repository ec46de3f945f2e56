// See clock.h.
#include "adapter/clock.h"

#include <time.h>

#include "adapter/dovecot.h"

namespace director::adapter {

int64_t mono_usecs_fresh()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return int64_t(ts.tv_sec) * 1000000 + int64_t(ts.tv_nsec) / 1000;
}

namespace {

int64_t wall_usecs()
{
	return int64_t(ioloop_timeval.tv_sec) * 1000000 + ioloop_timeval.tv_usec;
}

} // namespace

// The monotonic clock, in microseconds, for the ioloop's current wall reading.
int64_t mono_usecs()
{
	// Plain integers, set on first use: the process's one monotonic origin.
	static bool started = false;
	static int64_t offset_usecs = 0;
	static int64_t seen_wall_usecs = 0;
	static int64_t cached_usecs = 0;

	int64_t wall = wall_usecs();
	if (!started) {
		int64_t raw = mono_usecs_fresh();
		offset_usecs = wall - raw;
		started = true;
		seen_wall_usecs = wall;
		cached_usecs = raw + offset_usecs;
	} else if (wall != seen_wall_usecs) {
		seen_wall_usecs = wall;
		cached_usecs = mono_usecs_fresh() + offset_usecs;
	}
	return cached_usecs;
}

core::Now now()
{
	return core::Now::at_msecs(int64_t(ioloop_time), mono_usecs() / 1000);
}

int64_t mono_msecs()
{
	return mono_usecs() / 1000;
}

} // namespace director::adapter
