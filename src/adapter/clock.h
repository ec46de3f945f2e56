// The core's Now from the event loop: the wall clock as Dovecot's ioloop last read
// it, and a monotonic clock read once for that same reading.
#pragma once

#include <cstdint>

#include "core/now.h"

namespace director::adapter {

// Wall: ioloop_timeval. Mono: CLOCK_MONOTONIC, offset so that it equals the wall
// time at the first call; after that it only advances with real elapsed time, so a
// wall clock that is set back or forward does not move it. Read again whenever the
// ioloop's time changed (once per wakeup), so every input of one wakeup gets the
// same pair.
core::Now now();
// The same monotonic clock in milliseconds (health check scheduling) and in
// microseconds (durations reported in events).
int64_t mono_msecs();
int64_t mono_usecs();
// CLOCK_MONOTONIC read now, in microseconds (no offset, not cached per wakeup): for
// timing work inside one wakeup, such as a state file write step.
int64_t mono_usecs_fresh();

} // namespace director::adapter
