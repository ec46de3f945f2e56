// LookupQueue (see lookup-queue.h). No I/O and no clock here.
#include "lookup-queue.h"

#include <algorithm>

namespace director::core {

const char *delay_reason_text(DelayReason reason)
{
	switch (reason) {
	case DelayReason::none:
		break;
	case DelayReason::ring_not_handshaked:
		return "ring not handshaked";
	case DelayReason::ring_not_synced:
		return "ring not synced";
	case DelayReason::no_hosts:
		return "no hosts";
	case DelayReason::weak:
		return "weak user";
	case DelayReason::kill:
		return "kill waiting";
	}
	return "unknown";
}

void LookupQueue::push(PendingLookup &&req)
{
	if (queue_.empty())
		warned_at_ = 0;
	queue_.push_back(std::move(req));
}

bool LookupQueue::cancel(RequestId id)
{
	auto it = std::find_if(queue_.begin(), queue_.end(),
			       [id](const PendingLookup &p) { return p.id == id; });
	if (it == queue_.end())
		return false;
	queue_.erase(it);
	return true;
}

std::vector<PendingLookup> LookupQueue::take_timed_out(Now now)
{
	std::vector<PendingLookup> out;
	while (!queue_.empty() && queue_.front().created + request_timeout_secs <= now.mono) {
		out.push_back(std::move(queue_.front()));
		queue_.pop_front();
	}
	return out;
}

std::optional<std::string> LookupQueue::delay_warning(Now now)
{
	if (queue_.empty() || warned_at_ != 0 ||
	    queue_.front().created + request_delay_warning_secs > now.mono)
		return std::nullopt;
	warned_at_ = now.mono;
	return std::to_string(queue_.size()) +
	       " requests are delayed: " + delay_reason_text(queue_.front().reason);
}

} // namespace director::core
