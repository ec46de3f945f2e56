// LookupQueue: login lookups that cannot be answered yet (ring not synced, no hosts,
// weak user, user being moved), in arrival order, with their retry and timeout. The
// director decides whether a lookup can be answered; the queue only keeps, retries and
// times them out. No I/O and no clock here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "director-types.h"

namespace director::core {

enum class DelayReason { none, ring_not_handshaked, ring_not_synced, no_hosts, weak, kill };
// The words stock uses in its timeout errors ("Timeout because ring not synced").
const char *delay_reason_text(DelayReason reason);

struct PendingLookup {
	RequestId id;
	uint32_t user_hash;
	std::string tag;
	int64_t created; // Now::mono
	DelayReason reason = DelayReason::none;
};

class LookupQueue {
public:
	void push(PendingLookup &&req);
	// Forgets a queued lookup (its connection went away). false when unknown.
	bool cancel(RequestId id);

	// Offers every queued lookup, oldest first, to `try_answer(PendingLookup &)`, which
	// returns true when it answered it; the others stay queued in order.
	template <typename F> void retry(F try_answer)
	{
		std::deque<PendingLookup> still;
		for (PendingLookup &req : queue_) {
			if (!try_answer(req))
				still.push_back(std::move(req));
		}
		queue_.swap(still);
	}

	// Removes and returns the lookups queued for request_timeout_secs or longer.
	std::vector<PendingLookup> take_timed_out(Now now);
	// Once per backlog: a warning when the oldest lookup has waited
	// request_delay_warning_secs.
	std::optional<std::string> delay_warning(Now now);

	size_t size() const { return queue_.size(); }
	bool empty() const { return queue_.empty(); }

private:
	std::deque<PendingLookup> queue_;
	int64_t warned_at_ = 0;
};

} // namespace director::core
