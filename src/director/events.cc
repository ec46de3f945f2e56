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

// director_ring_connected: the connection finished its handshake and is
// part of the ring now. The core counts the users; the times are ours.
void DirectorService::ring_event_connected(const RingTransport &t,
					   const core::RingUserCounts &users)
{
	const char *direction = t.outgoing() ? "out" : "in";
	uint64_t handshake =
		uint64_t(std::max<int64_t>(0, t.handshaked_usecs - t.connected_usecs));
	adapter::send_named_event(event_, "director_ring_connected",
				  {{"peer", t.peer()},
				   {"direction", std::string(direction)},
				   {"handshake_usecs", handshake},
				   {"users_sent", users.sent},
				   {"users_received", users.received}},
				  core::LogLevel::debug,
				  "Ring connection " + std::string(direction) + " " + t.peer() +
					  " handshaked in " + std::to_string(handshake / 1000) +
					  " ms (users sent=" + std::to_string(users.sent) +
					  ", received=" + std::to_string(users.received) + ")");
}

// director_ring_disconnected: any connection that ends, handshaked or not
// (handshake_usecs only when it was); users counted over its whole life.
void DirectorService::ring_event_disconnected(const RingTransport &t, const std::string &reason)
{
	const char *direction = t.outgoing() ? "out" : "in";
	uint64_t duration = uint64_t(std::max<int64_t>(0, now_usecs() - t.started_usecs()));
	core::RingUserCounts users = core_.ring_user_counts(t.ring_id()).value_or(
		core::RingUserCounts{});
	std::string message = "Ring connection " + std::string(direction) + " " + t.peer() +
			      " closed: " + reason;
	if (t.handshaked_usecs == 0) {
		adapter::send_named_event(event_, "director_ring_disconnected",
					  {{"peer", t.peer()},
					   {"direction", std::string(direction)},
					   {"reason", reason},
					   {"duration_usecs", duration},
					   {"bytes_in", t.bytes_read()},
					   {"bytes_out", t.bytes_sent()},
					   {"users_sent", users.sent},
					   {"users_received", users.received}},
					  core::LogLevel::debug, message);
		return;
	}
	uint64_t handshake =
		uint64_t(std::max<int64_t>(0, t.handshaked_usecs - t.connected_usecs));
	adapter::send_named_event(event_, "director_ring_disconnected",
				  {{"peer", t.peer()},
				   {"direction", std::string(direction)},
				   {"reason", reason},
				   {"duration_usecs", duration},
				   {"handshake_usecs", handshake},
				   {"bytes_in", t.bytes_read()},
				   {"bytes_out", t.bytes_sent()},
				   {"users_sent", users.sent},
				   {"users_received", users.received}},
				  core::LogLevel::debug, message);
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

// One event per user the core moved to another backend, on each director
// that applied the move.
void DirectorService::user_moved_event(const core::Effects::UserMoved &mv)
{
	const char *reason = "admin";
	if (mv.reason == core::Effects::MoveReason::ring)
		reason = "ring";
	else if (mv.reason == core::Effects::MoveReason::flush)
		reason = "flush";
	std::string to = mv.host_to.to_string();
	std::string from = mv.host_from ? mv.host_from->to_string() : std::string();
	std::string message = "User hash " + std::to_string(mv.user_hash) + " moved (" + reason +
			      "): " + (from.empty() ? "?" : from) + " -> " + to;
	// host_from only when this director knew where the user was
	if (mv.host_from) {
		adapter::send_named_event(event_, "director_user_moved",
					  {{"user_hash", uint64_t(mv.user_hash)},
					   {"tag", mv.tag},
					   {"host_from", from},
					   {"host_to", to},
					   {"reason", std::string(reason)}},
					  core::LogLevel::debug, message);
	} else {
		adapter::send_named_event(event_, "director_user_moved",
					  {{"user_hash", uint64_t(mv.user_hash)},
					   {"tag", mv.tag},
					   {"host_to", to},
					   {"reason", std::string(reason)}},
					  core::LogLevel::debug, message);
	}
}

// One event per kick: its reason (admin: doveadm director kick, here or on
// another director; move: the sessions of a user that moved; conflict: two
// directors disagreed about a user).
void DirectorService::kick_event(const core::Effects::KickCommand &cmd)
{
	const core::Kick &kick = cmd.kick;
	std::string reason = core::kick_reason_name(kick.reason);
	adapter::send_named_event(event_, "director_user_kicked", {{"reason", reason}},
				  core::LogLevel::debug, "Kicking sessions (" + reason + ")");
}

} // namespace director
