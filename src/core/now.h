// Now: the time an input arrived, read once per event-loop wakeup by the adapter.
//
// Two readings, both in seconds, because they answer different questions:
//  - wall: the real-time clock. Only for what the ring protocol and the state file
//    carry or compare with what peers carry: user timestamps and their expiry, the
//    ME/PING/SYNC timestamps, a host's up/down change time, written_at.
//  - mono: a clock that never jumps. Every local deadline and every elapsed time
//    (lookup and move timeouts, ring pings and handshake timeouts, reconnect and
//    retry waits, SYNC resends, admin waits) is measured on it, so setting the
//    wall clock back neither freezes them nor does setting it forward fire them.
//    mono_msecs is the same clock in milliseconds, for the one wait that whole
//    seconds would cut short, director_user_kick_delay (a 2 s wait started at
//    x.9 s ends by the second count at x+2 s, 1.1 s later), and for the one
//    elapsed time stock logs to the millisecond, a flush's "Moved N users".
// The two are never compared with each other. The adapter starts mono at the wall
// time of its start, so both look alike until the wall clock is set.
#pragma once

#include <cstdint>

namespace director::core {

struct Now {
	int64_t wall = 0; // seconds since the epoch, as the protocol carries them
	int64_t mono = 0; // seconds on a clock that never jumps; only differences count
	int64_t mono_msecs = 0; // the same clock in milliseconds (mono == mono_msecs / 1000)

	constexpr Now() = default;
	// A reading at a whole second of the monotonic clock.
	constexpr Now(int64_t wall_secs, int64_t mono_secs)
		: wall(wall_secs), mono(mono_secs), mono_msecs(mono_secs * 1000)
	{
	}
	// Both clocks at the same reading: tests and tools that have no clock jump to
	// show. Production inputs come from the adapter with both clocks read.
	constexpr Now(int64_t secs) : Now(secs, secs) {}
	// The adapter's reading: the monotonic clock to the millisecond.
	static constexpr Now at_msecs(int64_t wall_secs, int64_t mono_msecs)
	{
		Now n(wall_secs, mono_msecs / 1000);
		n.mono_msecs = mono_msecs;
		return n;
	}

	// A mono time in the past, as the wall time it was then (0 stays "never"):
	// for listings that show stock's wall timestamps of local events.
	constexpr int64_t wall_of(int64_t mono_secs) const
	{
		return mono_secs == 0 ? 0 : wall - (mono - mono_secs);
	}
};

} // namespace director::core
