// Ring commands after the handshake (see ring.h): origin checks, the director list
// commands (DIRECTOR, DIRECTOR-REMOVE, CONNECT), PING/PONG and QUIT, and the admin
// view of the ring. User and host commands go up to the RingHandler. No I/O here.
#include "ring.h"

#include <algorithm>

#include "admin-protocol.h"
#include "tab-escape.h"

namespace director::core {

bool Ring::check_origin(const RingOrigin &origin, bool &reoriginate_r)
{
	reoriginate_r = false;
	DirectorHost *h = dirs_.find(origin.ip, origin.port);
	if (h == nullptr || h->removed) {
		reoriginate_r = true;
		return true;
	}
	if (origin.seq <= h->last_seq)
		return false;
	h->last_seq = origin.seq;
	return true;
}

void Ring::handle_ring_command(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
	if (!from_ring_neighbour(c, cmd)) {
		log_.peer(LogLevel::debug, who, "Ignoring " +
			std::string(ring_command_name(cmd.kind)) +
			": the connection is not our left or right");
		return;
	}
	bool reorig = false;
	switch (cmd.kind) {
	case RingCommandKind::user:
	case RingCommandKind::user_killed:
		handler_.ring_change(c, cmd, false, now, fx);
		return;
	case RingCommandKind::host:
	case RingCommandKind::host_remove:
	case RingCommandKind::host_flush:
	case RingCommandKind::user_move:
	case RingCommandKind::user_kick:
	case RingCommandKind::user_kick_alt:
	case RingCommandKind::user_kick_hash:
		if (check_origin(cmd.origin, reorig))
			handler_.ring_change(c, cmd, reorig, now, fx);
		return;
	case RingCommandKind::user_weak: {
		DirectorHost *origin = dirs_.find(cmd.origin.ip, cmd.origin.port);
		bool known = origin != nullptr && !origin->removed;
		bool seen = known && cmd.origin.seq <= origin->last_seq;
		if (!seen && known)
			origin->last_seq = cmd.origin.seq;
		handler_.ring_user_weak(c, cmd, seen, seen && origin == dirs_.self(), now, fx);
		return;
	}
	case RingCommandKind::user_killed_everywhere: {
		DirectorHost *origin = dirs_.find(cmd.origin.ip, cmd.origin.port);
		if (origin != nullptr && !origin->removed && cmd.origin.seq <= origin->last_seq)
			return;
		if (origin != nullptr && !origin->removed)
			origin->last_seq = cmd.origin.seq;
		handler_.ring_change(c, cmd, false, now, fx);
		return;
	}
	case RingCommandKind::director:
		handle_director(c, cmd, now, fx);
		return;
	case RingCommandKind::director_remove: {
		DirectorHost *h = dirs_.find(cmd.ip, cmd.port);
		if (h == nullptr || h->removed)
			return;
		if (h == dirs_.self())
			return; // the others will disconnect us
		h->removed = true;
		h->removed_at = now.mono;
		log_.log(LogLevel::info, "Removing director " + h->name() + " from ring (requested by " +
						 who + ")");
		update_send(c.host, cmd, fx, ring_minor_ring_remove);
		for (auto &[id, oc] : conns_) {
			if (oc.host == h && !oc.closing())
				close_conn(oc, "Director removed from ring", now, fx);
		}
		ring_change_counter_++;
		ring_sync(now, fx);
		return;
	}
	case RingCommandKind::ping: {
		RingCommand p;
		p.kind = RingCommandKind::pong;
		p.timestamp = now.wall;
		p.buffer_bytes = 0;
		send(c, p, fx);
		return;
	}
	case RingCommandKind::pong:
		handle_pong(c, now, fx);
		return;
	case RingCommandKind::sync:
		handle_sync(c, cmd, now, fx);
		return;
	case RingCommandKind::connect:
		handle_connect(c, cmd, now, fx);
		return;
	case RingCommandKind::quit:
		log_.peer(LogLevel::warning, who, "Director " + who +
			" disconnected us with reason: " + quote_for_log(cmd.reason, 200));
		close_conn(c, "", now, fx);
		return;
	default:
		log_.peer(LogLevel::error, who, "Unexpected command " +
			std::string(ring_command_name(cmd.kind)));
		close_conn(c, "Unexpected command", now, fx, true);
		return;
	}
}

// DIRECTOR: a director joined somewhere in the ring.
void Ring::handle_director(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	std::string who = c.who();
	DirectorHost *h = dirs_.find(cmd.ip, cmd.port);
	if (h == dirs_.self())
		return;
	if (h != nullptr) {
		if (h->removed)
			return;
		if (c.handshaked())
			h->last_network_failure = 0;
		h->reset_sequences();
	} else {
		h = dirs_.add(cmd.ip, cmd.port);
		if (h == nullptr) {
			log_.peer(LogLevel::error, who, "Ignoring DIRECTOR " + cmd.ip.to_string() +
				":" + std::to_string(cmd.port) + ": director list is full");
			return;
		}
		log_.log(LogLevel::info, "Adding director " + h->name() + " to ring (requested by " +
						 who + ")");
	}
	RingLink *right = conn(right_);
	if (right != nullptr && right->host != nullptr && dirs_.cmp_to_self(h, right->host) > 0)
		return; // between us and our right: it will connect to us
	if (h->director_sent_at == now.mono)
		return; // already passed on: every side has it
	update_send(c.host, cmd, fx);
	h->director_sent_at = now.mono;
	ring_change_counter_++;
}

void Ring::handle_pong(RingLink &c, Now now, Effects &fx)
{
	if (!c.pong(now))
		return;
	if (c.verifying_left) {
		c.verifying_left = false;
		// Our left answers: everyone else connected to us
		// should talk to our left instead.
		for (auto &[id, oc] : conns_) {
			if (!oc.incoming() || oc.closing() || oc.id() == left_ || oc.host == nullptr ||
			    c.host == nullptr)
				continue;
			if (dirs_.cmp_to_self(oc.host, c.host) >= 0) {
				RingCommand cc;
				cc.kind = RingCommandKind::connect;
				cc.ip = c.host->ip;
				cc.port = c.host->port;
				send(oc, cc, fx);
				oc.connect_sent = true;
				oc.connect_sent_at = now.mono;
			}
		}
	}
}

// CONNECT: our left tells us to connect to another director instead.
void Ring::handle_connect(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	std::string who = c.who();
	DirectorHost *h = dirs_.find(cmd.ip, cmd.port);
	if (h == nullptr) {
		// Stock adds and dials whatever it is told.
		log_.peer(LogLevel::warning, who, "Ignoring CONNECT " + cmd.ip.to_string() + ":" +
			std::to_string(cmd.port) + ": " + unlisted_reason(cmd.ip, cmd.port));
		return;
	}
	RingLink *right = conn(right_);
	if (h->self) {
		// Stock would connect to its own listener; nobody
		// sane asks for that.
		log_.peer(LogLevel::warning, who, "Ignoring CONNECT request to ourselves");
		c.close_at = now.mono + 1;
		return;
	}
	if (h->removed ||
	    (right != nullptr && right->host != nullptr && dirs_.cmp_to_self(h, right->host) <= 0)) {
		c.close_at = now.mono + 1;
		return;
	}
	h->last_network_failure = 0;
	h->removed = false;
	log_.log(LogLevel::info, "Received CONNECT request from " + who +
					 ", connecting to " + h->name());
	if (right != nullptr) {
		RingConnId old = right_;
		right_ = 0;
		if (old == c.id()) {
			// Closing the connection we are reading from would
			// reset it under the peer's pending output.
			c.close_at = now.mono;
			c.verifying_left = false;
		} else {
			close_conn(conns_.at(old), "Connecting to another director as requested",
				   now, fx);
		}
	}
	connect_to(h, now, fx);
}

std::vector<DirectorListEntry> Ring::director_list(Now now) const
{
	std::vector<DirectorListEntry> out;
	auto conn_entry = [&](const RingLink &c) {
		DirectorListEntry e;
		if (c.host != nullptr) {
			e.ip = c.host->ip;
			e.port = c.host->port;
			e.type = c.id() == left_ ? "left" : c.id() == right_ ? "right" : c.incoming() ? "in" : "out";
			e.last_failed = now.wall_of(
				std::max(c.host->last_network_failure, c.host->last_protocol_failure));
		}
		e.has_connection = true;
		e.status = director_connection_status_text(c.handshaked(), c.incoming(), c.synced,
							   c.incoming() ? c.users_received : c.users_sent);
		e.last_ping_msecs = c.last_ping_msecs;
		e.last_input = now.wall_of(c.last_input);
		e.last_output = now.wall_of(c.last_output);
		e.conn = c.id();
		return e;
	};
	for (const auto &[id, c] : conns_) {
		if (!c.closing() && c.host == nullptr)
			out.push_back(conn_entry(c));
	}
	if (!ring_mode_) {
		DirectorListEntry e;
		e.ip = IpAddr::v4(127, 0, 0, 1);
		e.type = "self";
		e.status = director_ring_status_text(ring_handshaked_, ring_synced_, 0);
		out.push_back(e);
		return out;
	}
	for (const auto &d : dirs_.all()) {
		bool any = false;
		for (const auto &[id, c] : conns_) {
			if (!c.closing() && c.host == d.get()) {
				out.push_back(conn_entry(c));
				any = true;
			}
		}
		if (any)
			continue;
		DirectorListEntry e;
		e.ip = d->ip;
		e.port = d->port;
		e.type = d->self ? "self" : d->removed ? "removed" : "";
		e.last_failed = now.wall_of(std::max(d->last_network_failure, d->last_protocol_failure));
		if (d->self) {
			e.status = director_ring_status_text(ring_handshaked_, ring_synced_,
							     now.mono - ring_last_sync_time_);
			e.last_ping_msecs = last_sync_msecs_;
		}
		out.push_back(e);
	}
	return out;
}

AdminReply Ring::director_add(const IpAddr &ip, std::optional<uint16_t> port, Now now,
				  Effects &fx)
{
	uint16_t p = port.value_or(ring_listen_port_);
	if (!ring_mode_) {
		// A standalone director keeps a list but has no ring to tell.
		ring_mode_ = true;
		dirs_.set_self(dirs_.add(IpAddr::v4(127, 0, 0, 1), 0));
	}
	if (dirs_.find(ip, p) == nullptr) {
		DirectorHost *h = dirs_.add(ip, p);
		if (h == nullptr)
			return AdminReply::now(AdminResult::director_list_full);
		RingCommand dc;
		dc.kind = RingCommandKind::director;
		dc.ip = ip;
		dc.port = p;
		update_send(dirs_.self(), dc, fx);
		h->director_sent_at = now.mono;
		ring_change_counter_++;
		// Like stock, we wait for the new director to connect to us.
	}
	return AdminReply::now(AdminResult::ok);
}

AdminReply Ring::director_remove(JobId job, const IpAddr &ip, std::optional<uint16_t> port,
				     Now now, Effects &fx)
{
	DirectorHost *h = dirs_.find_any(ip, port);
	if (h == nullptr)
		return AdminReply::now(AdminResult::not_found);
	if (h->self || h->removed)
		return reply_after_sync(job, now);
	h->removed = true;
	h->removed_at = now.mono;
	RingCommand dr;
	dr.kind = RingCommandKind::director_remove;
	dr.ip = h->ip;
	dr.port = h->port;
	update_send(dirs_.self(), dr, fx, ring_minor_ring_remove);
	for (auto &[id, c] : conns_) {
		if (c.host == h && !c.closing())
			close_conn(c, "Director removed from ring", now, fx);
	}
	ring_change_counter_++;
	ring_sync(now, fx);
	return reply_after_sync(job, now);
}

} // namespace director::core
