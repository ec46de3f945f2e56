// The ring side of users and hosts (see director.h): USER refreshes and conflicts,
// HOST changes, and the RingHandler callbacks through which the ring hands user and
// host commands up. No I/O here.
#include "director.h"

#include <algorithm>

namespace director::core {

int Director::user_refresh(const RingLink &from, uint32_t hash, HostId host, int64_t timestamp,
			   bool weak, bool unknown_timestamp, Now now, bool &forced_r,
			   UserIndex &user_r, Effects &fx)
{
	forced_r = false;
	if (timestamp + config_.user_expire_secs <= now.wall)
		return -1; // expired information
	TagId tag = hosts_.get(host).tag;
	UserIndex u = users_.find(hash, tag);
	if (u == no_user) {
		u = users_.insert(hash, tag, host, static_cast<uint32_t>(timestamp));
		if (u == no_user)
			return -1; // table full: ignored, as if expired
		users_.set_weak(u, weak);
		user_r = u;
		return 1;
	}
	bool changed = false, unset_weak = false;
	HostId new_host = host;
	if (users_.weak(u)) {
		if (!weak) {
			users_.set_weak(u, false);
			unset_weak = true;
			changed = true;
		}
	} else if (weak && !recently_updated(u, now)) {
		users_.set_weak(u, true);
		changed = true;
	} else if (weak) {
		// We changed it recently ourselves: keep our host.
		new_host = users_.host(u);
		changed = true;
	} else if (users_.host(u) == host) {
		// same host
	} else if (near_expiring(u, now)) {
		changed = true; // the sender had already dropped it: take theirs
	} else if (moves_.moving(hash, tag)) {
		new_host = users_.host(u); // being moved: the sender doesn't know yet
	} else if (ring_.restored_table_stale()) {
		// Our entry came from the state file and the ring kept running without
		// us: theirs is newer. No conflict (the lower-IP rule would push our
		// stale host on the ring) and no kick (lookups waited; no session of
		// ours used it).
		changed = true;
	} else {
		const IpAddr &ours = hosts_.get(users_.host(u)).ip;
		const IpAddr &theirs = hosts_.get(host).ip;
		log_.peer(LogLevel::error, from.who(), "User hash " + std::to_string(hash) +
			" is being redirected to two hosts: " + ours.to_string() + " and " +
			theirs.to_string() + " (old_ts=" + std::to_string(users_.timestamp(u)) +
			")");
		// Everyone picks the lower IP, and kicks the rest.
		if (theirs < ours)
			forced_r = true;
		else
			new_host = users_.host(u);
		moves_.kick_hash(hash, hosts_.get(new_host).ip, fx);
		changed = true;
	}
	if (users_.host(u) != new_host) {
		users_.set_host(u, new_host);
		changed = true;
	}
	if (timestamp > int64_t(users_.timestamp(u)) &&
	    !(unknown_timestamp && int64_t(users_.timestamp(u)) +
						   std::min<int64_t>(config_.user_expire_secs / 4, 15) >=
					   timestamp)) {
		users_.refresh(u, static_cast<uint32_t>(timestamp));
		changed = true;
	}
	if (unset_weak)
		ring_state_changed(now, fx);
	user_r = u;
	return changed ? 1 : 0;
}

void Director::broadcast_user(const DirectorHost *src, UserIndex u, Effects &fx)
{
	if (!ring_.active() || !ring_.has_links())
		return;
	RingCommand uc;
	uc.kind = RingCommandKind::user;
	uc.user_hash = users_.user_hash(u);
	uc.ip = hosts_.get(users_.host(u)).ip;
	uc.timestamp = users_.timestamp(u);
	ring_.send(src, uc, fx);
}

void Director::send_host(const DirectorHost *src, std::optional<RingOrigin> origin, HostId id,
			 Now now, Effects &fx)
{
	if (!ring_.active())
		return;
	const MailHost &h = hosts_.get(id);
	if (h.tag != default_tag && ring_.min_version() < ring_minor_tags_v2) {
		log_.log_with(LogLevel::error,
			      "Ring has directors that don't support tags - removing host " +
				      h.ip.to_string() + " with tag '" + hosts_.tag_name(h.tag) + "'",
			      LogFields::mail_host(h.ip));
		RingCommand rm;
		rm.kind = RingCommandKind::host_remove;
		rm.origin = origin ? *origin : ring_.next_origin();
		rm.ip = h.ip;
		ring_.send(src, rm, fx);
		erase_users_of_host(id);
		hosts_.remove(id);
		ring_.changed(now, fx);
		return;
	}
	RingCommand hc;
	hc.kind = RingCommandKind::host;
	hc.origin = origin ? *origin : ring_.next_origin();
	hc.ip = h.ip;
	hc.vhost_count = h.vhost_count;
	hc.tag = hosts_.tag_name(h.tag);
	hc.updown = RingUpDown{h.down, h.last_updown_change};
	hc.hostname = h.hostname;
	ring_.send(src, hc, fx);
}

void Director::apply_host(RingLink *c, const RingCommand &cmd, bool handshake, Now now,
			  Effects &fx)
{
	if (c != nullptr && c->ignoring_host_list() && handshake)
		return;
	std::string who = c && c->host ? c->host->name() : "";
	if (!cmd.tag.empty() && c != nullptr && c->peer_minor() < ring_minor_tags_v2) {
		log_.peer(LogLevel::error, who,
			"Received a host tag from older director version with incompatible "
			"tagging support");
		ring_.close(*c, "Incompatible tag support", now, fx, true);
		return;
	}
	if (cmd.vhost_count > max_vhost_count) {
		// Stock takes any count here, and a ring of billions of vhost
		// points would exhaust memory; no stock director sends more
		// than doveadm's limit.
		log_.peer(LogLevel::error, who, "Ignoring host " + cmd.ip.to_string() +
			": vhost count " + std::to_string(cmd.vhost_count) + " is over " +
			std::to_string(max_vhost_count));
		return;
	}
	bool down = cmd.updown && cmd.updown->down;
	int64_t updown_ts = cmd.updown ? bound_peer_time(cmd.updown->last_updown_change) : 0;
	HostId id = hosts_.find(cmd.ip);
	bool update = false, conflict = false;
	if (!hosts_.find_tag(cmd.tag) && hosts_.tag_count() > max_tag_id) {
		log_.peer(LogLevel::error, who, "Ignoring host " + cmd.ip.to_string() +
			": more than " + std::to_string(max_tag_id) + " tags");
		return;
	}
	if (id == invalid_host) {
		auto added = hosts_.add(cmd.ip, cmd.tag, cmd.vhost_count);
		if (!added)
			return;
		id = *added;
		hosts_.set_down(id, down, updown_ts);
		if (!cmd.hostname.empty())
			hosts_.set_hostname(id, cmd.hostname);
		update = true;
	} else {
		const MailHost &h = hosts_.get(id);
		unsigned vhosts = cmd.vhost_count;
		if (h.vhost_count != vhosts || h.down != down ||
		    hosts_.tag_name(h.tag) != cmd.tag) {
			update = true;
			if (h.desynced) {
				// Both sides changed it: converge on one answer.
				conflict = true;
				log_.peer(LogLevel::warning, who, "Host " + cmd.ip.to_string() +
					" is being updated before previous update had finished");
				if (h.last_updown_change > updown_ts) {
					down = h.down;
					updown_ts = h.last_updown_change;
				}
				vhosts = std::min(vhosts, h.vhost_count);
			}
			if (hosts_.tag_name(h.tag) != cmd.tag) {
				log_.peer(LogLevel::error, who, "Host " + cmd.ip.to_string() +
					" changed tag from '" + hosts_.tag_name(h.tag) + "' to '" +
					cmd.tag + "'");
				erase_users_of_host(id);
				hosts_.set_tag(id, cmd.tag);
			}
			hosts_.set_vhost_count(id, vhosts);
			int64_t ts = std::max(updown_ts, hosts_.get(id).last_updown_change);
			hosts_.set_down(id, down, ts);
		}
	}
	if (!update)
		return;
	bool reoriginate = handshake || conflict;
	send_host(reoriginate || c == nullptr ? ring_.self() : c->host,
		  reoriginate ? std::nullopt : std::optional<RingOrigin>(cmd.origin), id, now, fx);
	if (ring_.has_neighbours())
		hosts_.set_desynced(id, true);
	ring_.changed(now, fx);
	ring_state_changed(now, fx);
}

// ---------------------------------------------------------------- RingHandler

bool Director::apply_ring_user(RingLink &c, uint32_t hash, const IpAddr &ip,
			       std::optional<int64_t> timestamp, Now now, Effects &fx)
{
	HostId host = hosts_.find(ip);
	if (host == invalid_host)
		return false; // probably just removed
	bool forced;
	UserIndex u;
	// Capped at our now, as stock does and as handshake users are: a
	// timestamp in the future would keep the user forever.
	int64_t ts = std::min(bound_peer_time(timestamp.value_or(now.wall)), now.wall);
	if (user_refresh(c, hash, host, ts, false, !timestamp, now, forced, u, fx) <= 0)
		return false;
	broadcast_user(forced ? ring_.self() : c.host, u, fx);
	return true;
}

bool Director::ring_repair_user(RingLink &c, uint32_t hash, const IpAddr &ip, int64_t timestamp,
				Now now, Effects &fx)
{
	return apply_ring_user(c, hash, ip, timestamp, now, fx);
}

void Director::ring_change(RingLink &c, const RingCommand &cmd, bool reorig, Now now,
			   Effects &fx)
{
	// A command whose origin we do not know travels on as ours.
	const DirectorHost *src = reorig ? ring_.self() : c.host;
	auto forward = [&](unsigned min_minor) {
		RingCommand fwd = cmd;
		if (reorig)
			fwd.origin = ring_.next_origin();
		ring_.send(src, fwd, fx, min_minor);
	};
	switch (cmd.kind) {
	case RingCommandKind::user:
		apply_ring_user(c, cmd.user_hash, cmd.ip, cmd.timestamp, now, fx);
		return;
	case RingCommandKind::host:
		apply_host(&c, cmd, false, now, fx);
		return;
	case RingCommandKind::host_remove:
	case RingCommandKind::host_flush: {
		HostId host = hosts_.find(cmd.ip);
		if (host == invalid_host)
			return;
		forward(0);
		if (cmd.kind == RingCommandKind::host_flush) {
			const MailHost &h = hosts_.get(host);
			fx.host_flushes.push_back(
				{h.ip, hosts_.tag_name(h.tag), h.vhost_count, true});
		}
		erase_users_of_host(host);
		if (cmd.kind == RingCommandKind::host_remove)
			hosts_.remove(host);
		ring_.changed(now, fx);
		return;
	}
	case RingCommandKind::user_move: {
		HostId host = hosts_.find(cmd.ip);
		if (host == invalid_host)
			return;
		moves_.move(src, reorig ? std::nullopt : std::optional<RingOrigin>(cmd.origin),
			    cmd.user_hash, host, Effects::MoveReason::ring, now, fx);
		return;
	}
	case RingCommandKind::user_killed:
		moves_.user_killed(cmd.user_hash, now, fx);
		return;
	case RingCommandKind::user_killed_everywhere:
		moves_.user_killed_everywhere(c.host, cmd.origin, cmd.user_hash, now, fx);
		return;
	case RingCommandKind::user_kick:
	case RingCommandKind::user_kick_alt:
	case RingCommandKind::user_kick_hash:
		moves_.ring_kick(cmd, fx);
		forward(ring_command_min_minor(cmd.kind));
		return;
	default:
		return;
	}
}

void Director::ring_user_weak(RingLink &c, const RingCommand &cmd, bool seen, bool own,
			      Now now, Effects &fx)
{
	HostId host = hosts_.find(cmd.ip);
	if (host == invalid_host)
		return;
	if (own) {
		// Our USER-WEAK went all the way round unopposed.
		TagId tag = hosts_.get(host).tag;
		UserIndex u = users_.find(cmd.user_hash, tag);
		if (u != no_user && users_.weak(u)) {
			users_.set_weak(u, false);
			broadcast_user(ring_.self(), u, fx);
			ring_state_changed(now, fx);
		}
		return;
	}
	if (seen) {
		ring_.pass_on(c, cmd, fx);
		return;
	}
	bool forced;
	UserIndex u;
	if (user_refresh(c, cmd.user_hash, host, now.wall, true, false, now, forced, u, fx) < 0)
		return;
	if (users_.weak(u))
		ring_.pass_on(c, cmd, fx);
	else
		broadcast_user(ring_.self(), u, fx); // we keep our host: tell the origin
}

void Director::ring_handshake_host(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	apply_host(&c, cmd, true, now, fx);
}

// A user from the peer's handshake: refreshed like a USER, but with the received
// timestamp kept if it is newer, and never forwarded.
void Director::ring_handshake_user(RingLink &c, uint32_t hash, HostId host, int64_t timestamp,
				   bool weak, Now now, Effects &fx)
{
	c.users_received++;
	int64_t ts = std::min(bound_peer_time(timestamp), now.wall);
	bool forced;
	UserIndex u;
	int changed = user_refresh(c, hash, host, ts, weak, false, now, forced, u, fx);
	if (changed < 0)
		return;
	if (changed > 0 && !users_.resend(u)) {
		users_.set_resend(u, true);
		c.users_to_resend++;
	}
	if (users_.timestamp(u) < ts)
		users_.set_timestamp_in_place(u, static_cast<uint32_t>(ts));
	c.users_unsorted = true;
}

void Director::ring_joining(Now now)
{
	(void)now;
	for (HostId id : hosts_.sorted_ids()) {
		erase_users_of_host(id);
		hosts_.remove(id);
	}
}

size_t Director::ring_joining_delta(const std::vector<const RingCommand *> &hosts,
				    const UserDigestBuckets &replace, Now now)
{
	(void)now;
	// Their host list, set in place: a host keeps its id and its users.
	for (HostId id : hosts_.sorted_ids()) {
		const IpAddr &ip = hosts_.get(id).ip;
		const RingCommand *theirs = nullptr;
		for (const RingCommand *h : hosts) {
			if (h->ip == ip)
				theirs = h;
		}
		if (theirs == nullptr) {
			erase_users_of_host(id);
			hosts_.remove(id);
			continue;
		}
		if (hosts_.tag_name(hosts_.get(id).tag) != theirs->tag) {
			erase_users_of_host(id);
			hosts_.set_tag(id, theirs->tag);
		}
		if (theirs->vhost_count <= max_vhost_count)
			hosts_.set_vhost_count(id, theirs->vhost_count);
		if (theirs->updown) {
			hosts_.set_down(id, theirs->updown->down,
					bound_peer_time(theirs->updown->last_updown_change));
		}
		hosts_.set_hostname(id, theirs->hostname);
	}
	// Our users of the buckets that differ go; theirs come in the handshake.
	// Found in one pass over the slab, erased after it.
	std::vector<UserIndex> stale;
	users_.for_each_hash([&](UserIndex u, uint32_t hash) {
		if (replace.contains_user(hash))
			stale.push_back(u);
	});
	for (UserIndex u : stale)
		users_.erase(u);
	return users_.size();
}

void Director::ring_resend_hosts(Now now, Effects &fx)
{
	for (HostId id : hosts_.sorted_ids())
		send_host(ring_.self(), ring_.next_origin(), id, now, fx);
}

void Director::ring_synced(Now now, Effects &fx)
{
	(void)now;
	(void)fx;
	hosts_.clear_desynced();
}

void Director::ring_state_changed(Now now, Effects &fx)
{
	retry_pending(now, fx);
}

} // namespace director::core
