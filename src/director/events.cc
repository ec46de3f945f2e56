// Named events the adapter can see without the core's help: ring connections
// starting and ending, ring syncs, host changes (found by comparing the host
// list with the last one seen) and kicks. Sent at debug level: metrics count
// them, the log shows them only with debug logging on.
#include <map>

#include "adapter/dovecot.h"
#include "adapter/named-event.h"
#include "core/kick.h"
#include "director/events.h"
#include "director/service.h"

namespace director {

void DirectorService::observe_state()
{
	if (!state_events_)
		state_events_ = std::make_unique<StateEvents>(event_);
	state_events_->observe(core_, in_ring_input_);
}

void DirectorService::ring_event_connected(const RingTransport &t)
{
	const char *direction = t.outgoing() ? "out" : "in";
	adapter::send_named_event(event_, "director_ring_connected",
				  {{"peer", t.peer()}, {"direction", std::string(direction)}},
				  core::LogLevel::debug,
				  "Ring connection " + std::string(direction) + " " + t.peer() +
					  " established");
}

void DirectorService::ring_event_disconnected(const RingTransport &t, const std::string &reason)
{
	const char *direction = t.outgoing() ? "out" : "in";
	uint64_t duration = uint64_t(std::max<int64_t>(0, now_usecs() - t.started_usecs()));
	adapter::send_named_event(event_, "director_ring_disconnected",
				  {{"peer", t.peer()},
				   {"direction", std::string(direction)},
				   {"reason", reason},
				   {"duration_usecs", duration},
				   {"bytes_in", t.bytes_read()},
				   {"bytes_out", t.bytes_sent()}},
				  core::LogLevel::debug,
				  "Ring connection " + std::string(direction) + " " + t.peer() +
					  " closed: " + reason);
}

// A flush forgets a host's users without changing the host list, so the
// core reports it instead of the diff in StateEvents finding it.
void DirectorService::host_flushed_event(const core::Effects::HostFlushed &fl)
{
	std::string host = fl.ip.to_string();
	const char *origin = fl.from_ring ? "ring" : "local";
	adapter::send_named_event(event_, "director_host_changed",
				  {{"host", host},
				   {"tag", fl.tag},
				   {"action", std::string("flush")},
				   {"vhosts", uint64_t(fl.vhosts)},
				   {"origin", std::string(origin)}},
				  core::LogLevel::debug,
				  "Host " + host + " changed (" + origin +
					  "): flush, vhosts=" + std::to_string(fl.vhosts));
}

// One event per kick: its reason (admin: doveadm director kick, here or on
// another director; move: the sessions of a user that moved; conflict: two
// directors disagreed about a user).
void DirectorService::kick_event(const core::Effects::KickCommand &cmd)
{
	const core::Kick &kick = cmd.kick;
	if (kick.reason == core::KickReason::move) {
		adapter::send_named_event(event_, "director_user_moved",
					  {{"user_hash", uint64_t(kick.user_hash)}, {"tag", kick.tag}},
					  core::LogLevel::debug,
					  "User hash " + std::to_string(kick.user_hash) +
						  " moved: kicking its sessions");
	}
	std::string reason = core::kick_reason_name(kick.reason);
	adapter::send_named_event(event_, "director_user_kicked", {{"reason", reason}},
				  core::LogLevel::debug, "Kicking sessions (" + reason + ")");
}

} // namespace director
