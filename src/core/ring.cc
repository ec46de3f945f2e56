// The director ring (see ring.h): connecting, accepting, closing, input dispatch and
// the ring's timers. No I/O here: lines go out as Effects and come in through line().
//
// Who talks to whom: every director connects to its right neighbour (the next listed
// director after itself, by IP and port) and is connected to by its left one. The
// connector sends VERSION, ME and the directors it knows; once it sees the acceptor's
// VERSION it sends its mail hosts, its users and DONE, and the acceptor answers DONE.
// Changes then travel both ways around the ring with an origin triple (origin director,
// its sequence number) that stops them where they were seen before; SYNC travels
// rightwards only and tells its originator that everyone has seen everything it sent
// before it.
#include "ring.h"

#include <algorithm>

#include "admin-protocol.h"
#include "config-values.h"

namespace director::core {

Ring::Ring(const DirectorConfig &config, LogSink &log, const HostList &hosts, UserTable &users,
	   RingHandler &handler)
	: config_(config), log_(log), hosts_(hosts), users_(users), handler_(handler)
{
}

RingLink *Ring::conn(RingConnId id)
{
	auto it = conns_.find(id);
	return it == conns_.end() || it->second.closing() ? nullptr : &it->second;
}

RingLink &Ring::new_link(bool incoming, const IpAddr &remote, Now now)
{
	RingConnId id = next_conn_++;
	return conns_.try_emplace(id, id, incoming, remote, now).first->second;
}

void Ring::send_version_me(RingLink &c, Now now, Effects &fx)
{
	RingCommand v;
	v.kind = RingCommandKind::version;
	v.minor_version = ring_version_minor;
	// Our offers ride in VERSION fields stock ignores: ring authentication
	// first (where ring-auth.h expects it), then user-table digests.
	std::string line = format_ring_command(v, {c.pctx.peer_minor, ring_min_version_});
	if (c.auth)
		line += "\t" + c.auth->offer();
	line += "\t";
	line += user_digest_offer;
	line += "\t";
	line += user_digest_check_offer;
	line += "\t";
	line += user_digest_refine_offer;
	if (!c.incoming() && restart_signal_pending_) {
		line += "\t";
		line += user_digest_restored_offer;
	}
	line += "\n";
	fx.ring_sends.push_back({c.id(), std::move(line)});
	RingCommand me;
	me.kind = RingCommandKind::me;
	me.ip = dirs_.self()->ip;
	me.port = dirs_.self()->port;
	me.timestamp = now.wall;
	send(c, me, fx);
}

bool Ring::send_right(const RingCommand &cmd, Effects &fx)
{
	RingLink *right = conn(right_);
	if (right == nullptr)
		return false;
	send(*right, cmd, fx);
	return true;
}

void Ring::pass_on(const RingLink &from, const RingCommand &cmd, Effects &fx)
{
	// With two directors our left and right are the same peer, so it goes back on
	// the other connection for the origin to see it.
	RingLink *left = conn(left_), *right = conn(right_);
	if (left && right && left->host == right->host)
		send(from.id() == right_ ? *left : *right, cmd, fx);
	else
		update_send(from.host, cmd, fx);
}

RingOrigin Ring::next_origin()
{
	dirs_.self()->last_seq++;
	return RingOrigin{dirs_.self()->ip, dirs_.self()->port, dirs_.self()->last_seq};
}

void Ring::update_send(const DirectorHost *src, const RingCommand &cmd, Effects &fx,
			   unsigned min_minor)
{
	for (auto &[id, c] : conns_) {
		if (c.closing() || c.host == src || !c.connected())
			continue;
		if (c.pctx.version_received && c.pctx.peer_minor < min_minor)
			continue;
		if (c.auth && !c.auth->proved())
			continue; // nothing for a peer that has not proved the secret
		send(c, cmd, fx);
	}
}

void Ring::start(const std::vector<RingDirectorConfig> &directors, const IpAddr &self_ip,
			  uint16_t self_port, Now now, Effects &fx)
{
	ring_mode_ = true;
	for (const auto &d : directors) {
		if (dirs_.find(d.ip, d.port) == nullptr)
			dirs_.add(d.ip, d.port);
	}
	DirectorHost *self = dirs_.find(self_ip, self_port);
	if (self == nullptr)
		self = dirs_.add(self_ip, self_port);
	if (self == nullptr) {
		// director_servers filled the list: we still need ourselves in it.
		log_.log(LogLevel::error, "director_servers lists more than " +
						  std::to_string(max_ring_directors) + " directors");
		dirs_.purge([](const DirectorHost *) { return true; });
		self = dirs_.add(self_ip, self_port);
	}
	dirs_.set_self(self);
	if (sequences_restored_) {
		sync_seq_ = restored_sync_seq_ + ring_restore_seq_margin;
		self->last_seq = restored_last_seq_ + ring_restore_seq_margin;
	}
	if (dirs_.size() == 1) {
		hold_users_until_ = 0;
		start_alone(now, self_port);
		return;
	}
	ring_listen_port_ = self_port;
	ring_handshaked_ = false;
	ring_synced_ = false;
	ring_last_sync_time_ = 0;
	connect_right(now, fx);
}

bool Ring::connect_to(DirectorHost *h, Now now, Effects &fx)
{
	if (shutting_down_)
		return false;
	for (auto &[id, c] : conns_) {
		if (!c.incoming() && !c.closing() && c.host == h)
			return false; // already connecting or connected there
	}
	RingLink &c = new_link(false, h->ip, now);
	c.host = h;
	start_auth(c, RingEndpoint{h->ip, h->port});
	h->reset_sequences();
	log_.log(LogLevel::info, "Connecting to " + h->name());
	fx.ring_connects.push_back({c.id(), h->ip, h->port});
	return true;
}

void Ring::connect_right(Now now, Effects &fx)
{
	reconnect_at_ = 0;
	if (shutting_down_)
		return;
	for (size_t i = 1; i < dirs_.size(); i++) {
		DirectorHost *h = dirs_.after_self(i);
		if (h->removed || h->last_network_failure + ring_failure_retry_secs > now.mono ||
		    h->last_protocol_failure + ring_failure_retry_secs > now.mono)
			continue;
		bool busy = false;
		for (auto &[id, c] : conns_) {
			if (!c.incoming() && !c.closing() && c.host == h)
				busy = true;
		}
		if (busy)
			return; // a connect to our right is already under way
		if (connect_to(h, now, fx))
			return;
	}
	// Nobody to connect to. Before deciding we are alone, keep trying for
	// a while: the others may be starting up too.
	bool others = dirs_.others();
	if (others && (ring_first_alone_ == 0 || now.mono - ring_first_alone_ <= ring_min_wait_alone_secs)) {
		if (ring_first_alone_ == 0)
			ring_first_alone_ = now.mono;
		// Network failures only: a director refused for a protocol
		// error (or a failed ring authentication) stays refused for
		// its 60 s, or both sides would reconnect in a tight loop.
		for (auto &d : dirs_.all())
			d->last_network_failure = 0;
		reconnect_at_ = now.mono + 1;
		return;
	}
	if (others) {
		log_.log(LogLevel::warning,
			 "director: Couldn't connect to right side, we must be the only director left");
	}
	if (RingLink *left = conn(left_)) {
		log_.log(LogLevel::warning, "director: Assuming " + left->remote_ip.to_string() + ":" +
						    std::to_string(left->host ? left->host->port : 0) +
						    " is dead, disconnecting");
		close_conn(*left, "This connection is dead?", now, fx);
	}
	ring_min_version_ = ring_version_minor;
	if (!ring_handshaked_)
		set_ring_handshaked(now, fx);
	else if (!ring_synced_)
		set_ring_synced(now, fx);
}

RingConnId Ring::accept(const IpAddr &remote, Now now, Effects &fx)
{
	if (!dirs_.listed(remote)) {
		log_.log(LogLevel::warning, "Connection from " + remote.to_string() +
						    ": Server not listed in director_servers, dropping");
		return 0;
	}
	RingLink &c = new_link(true, remote, now);
	start_auth(c, std::nullopt);
	send_version_me(c, now, fx);
	return c.id();
}

void Ring::connected(RingConnId id, Now now, Effects &fx)
{
	RingLink *c = conn(id);
	if (c == nullptr)
		return;
	c->set_connected(now);
	send_version_me(*c, now, fx);
	// With a secret, what we know waits until the peer proved it.
	if (c->auth)
		c->directors_pending = true;
	else
		send_director_list(*c, fx);
}

void Ring::refuse_peer(RingLink &c, const std::string &why, Now now, Effects &fx)
{
	log_.peer(LogLevel::error, c.who(), why);
	close_conn(c, why, now, fx, true);
}

void Ring::close_conn(RingLink &c, const std::string &reason, Now now, Effects &fx,
			  bool protocol_failure)
{
	if (c.closing())
		return;
	if (protocol_failure && c.host != nullptr)
		c.host->last_protocol_failure = now.mono;
	if (c.connected() && c.pctx.version_received && c.pctx.peer_minor >= ring_minor_quit &&
	    !reason.empty()) {
		RingCommand q;
		q.kind = RingCommandKind::quit;
		q.reason = reason;
		send(c, q, fx);
	}
	c.set_closing();
	fx.ring_closes.push_back({c.id(), reason});
	conn_gone(c.id(), now, fx);
}

void Ring::closed(RingConnId id, const std::string &reason, Now now, Effects &fx)
{
	auto it = conns_.find(id);
	if (it == conns_.end())
		return;
	RingLink &c = it->second;
	if (!c.closing()) {
		std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
		if (c.connect_sent) {
			log_.peer(LogLevel::warning, who,
				"tried to connect to us, should use another director instead");
		} else {
			log_.peer(c.handshaked() ? LogLevel::error : LogLevel::info, who,
				"Disconnected: " + reason);
		}
		if (!c.incoming() && c.host != nullptr && now.mono - c.created < ring_short_connection_secs)
			c.host->last_network_failure = now.mono;
		c.set_closing();
		conn_gone(id, now, fx);
	}
	conns_.erase(id);
}

void Ring::conn_gone(RingConnId id, Now now, Effects &fx)
{
	bool was_left = left_ == id, was_right = right_ == id;
	if (was_left)
		left_ = 0;
	if (was_right)
		right_ = 0;
	if (ring_mode_ && (was_left || was_right)) {
		// Lost a side: the ring must sync again once it is closed. The
		// sequence moves on before a new left can start that SYNC, or our
		// own SYNC would come back stale.
		sync_seq_++;
		if (!alone())
			set_ring_unsynced(now);
	}
	if (was_left)
		promote_left(now, fx);
	if (!ring_mode_)
		return;
	if (alone() && ring_handshaked_ && !ring_synced_)
		set_ring_synced(now, fx);
	if (right_ == 0) {
		bool connecting = false;
		for (auto &[cid, c] : conns_) {
			if (!c.incoming() && !c.closing())
				connecting = true;
		}
		if (!connecting)
			connect_right(now, fx);
	}
}

void Ring::line(RingConnId id, std::string_view line, Now now, Effects &fx)
{
	RingLink *c = conn(id);
	if (c == nullptr)
		return;
	c->last_input = now.mono;
	if (c->auth && !c->auth->proved() && !auth_line(*c, line, now, fx))
		return;
	if (c->incoming() && !c->handshaked()) {
		// Handshake users wait for DONE (ring-security.cc); the fast path
		// only saves the full parse.
		if (auto u = parse_handshake_user_fast(line, c->pctx)) {
			if (c->hs_ip_text != u->ip_text) {
				auto ip = parse_stock_ip(u->ip_text);
				c->hs_ip_text = std::string(u->ip_text);
				c->hs_ip = ip;
			}
			if (c->hs_ip) {
				defer_user(*c, u->user_hash, *c->hs_ip, u->timestamp, u->weak, now, fx);
				return;
			}
			// a bad address: the full parse below reports it as stock does
		}
	}
	if (c->digest_peer && is_user_digest_line(line)) {
		digest_line(*c, line, now, fx);
		return;
	}
	if (!c->pctx.version_received && ring_mode_ &&
	    line.substr(0, line.find('\t')) == "VERSION") {
		c->digest_peer = user_digest_version_offered(line);
		c->digest_check_peer =
			c->digest_peer && ring_version_offers(line, user_digest_check_offer);
		c->digest_peer_restored =
			c->digest_peer && ring_version_offers(line, user_digest_restored_offer);
		c->digest_peer_refine =
			c->digest_peer && ring_version_offers(line, user_digest_refine_offer);
	}
	if (!c->auth && !c->pctx.version_received && ring_mode_ &&
	    line.substr(0, line.find('\t')) == "VERSION") {
		auto offer = parse_ring_auth_offer(line);
		if (offer.ok() && offer->has_value()) {
			log_.peer(LogLevel::warning, c->who(),
				"The peer has director_ring_secret_file set, we do not: "
				"it will refuse us");
		}
	}
	auto parsed = parse_ring_line(line, c->pctx);
	if (!parsed.ok()) {
		if (auto origin = ring_origin_checked_before_body(line, c->pctx)) {
			DirectorHost *h = dirs_.find(origin->ip, origin->port);
			if (h != nullptr && !h->removed && origin->seq <= h->last_seq)
				return; // stock ignores a seen triple before the body
		}
		std::string who = c->host ? c->host->name() : c->remote_ip.to_string();
		log_.peer(LogLevel::error, who, parsed.error());
		close_conn(*c, parsed.error(), now, fx, true);
		return;
	}
	const RingCommand &cmd = parsed.value();
	if (!c->handshaked() && defer_before_handshake(*c, cmd, now, fx))
		return;
	if (!handle_handshake_command(*c, cmd, now, fx))
		handle_ring_command(*c, cmd, now, fx);
}

void Ring::shutdown(Now now, Effects &fx)
{
	// No reconnects from here on; close a snapshot, as closing changes the
	// map.
	shutting_down_ = true;
	std::vector<RingConnId> ids;
	for (auto &[id, c] : conns_)
		ids.push_back(id);
	for (RingConnId id : ids) {
		if (RingLink *c = conn(id))
			close_conn(*c, "Shutting down", now, fx);
	}
}

void Ring::tick(Now now, Effects &fx)
{
	if (!ring_mode_)
		return;
	if (hold_users_until_ != 0 && now.mono >= hold_users_until_)
		release_user_streams(now, fx);
	if (users_.host_erasures() != host_erasures_seen_) {
		host_erasures_seen_ = users_.host_erasures();
		host_erasure_seen_at_ = now.mono;
	}
	// Connections we closed ourselves are gone for good by now; they were
	// kept until here because they may be closed while iterating.
	for (auto it = conns_.begin(); it != conns_.end();)
		it = it->second.closing() ? conns_.erase(it) : std::next(it);
	int64_t idle_limit = std::min<int64_t>(config_.ping_idle_timeout_secs,
					       ring_ping_idle_timeout_secs);
	std::vector<RingConnId> ids;
	for (auto &[id, c] : conns_)
		ids.push_back(id);
	for (RingConnId id : ids) {
		RingLink *c = conn(id);
		if (c == nullptr)
			continue;
		std::string who = c->host ? c->host->name() : c->remote_ip.to_string();
		// A peer that times out is skipped by connect_right() for a while,
		// like one whose connect() failed: a stopped director still has
		// its TCP connections accepted by the kernel.
		auto timed_out = [&](const std::string &reason) {
			if (c->host != nullptr)
				c->host->last_network_failure = now.mono;
			close_conn(*c, reason, now, fx);
		};
		if (!c->connected()) {
			if (now.mono - c->created >= ring_connect_timeout_secs)
				timed_out("connect() timed out");
			continue;
		}
		if (!c->pctx.me_received && now.mono - c->created >= ring_me_timeout_secs) {
			timed_out("Handshaking ME timed out");
			continue;
		}
		if (!c->handshaked() && c->incoming() && now.mono - c->last_input >= ring_handshake_done_timeout_secs) {
			timed_out("Handshaking DONE timed out");
			continue;
		}
		if ((c->connect_sent && now.mono - c->connect_sent_at >= ring_connect_sent_wait_secs) ||
		    (c->close_at != 0 && now.mono >= c->close_at)) {
			close_conn(*c, "", now, fx);
			continue;
		}
		if (c->ping_pending) {
			// Idle time counts from the PING, as stock's idle timeout.
			if (now.mono - std::max(c->last_input, c->ping_sent_at) >= idle_limit) {
				log_.peer(LogLevel::error, who, "Ping timed out in " +
					std::to_string(now.mono - c->ping_sent_at) +
					" secs, disconnecting");
				timed_out("Ping timeout");
				continue;
			}
			if (now.mono - c->ping_sent_at >= config_.ping_max_timeout_secs) {
				log_.peer(LogLevel::error, who, "PONG reply not received in " +
					std::to_string(now.mono - c->ping_sent_at) +
					" secs, although other input keeps coming");
				timed_out("Pong timeout");
				continue;
			}
		} else {
			int64_t interval = c->handshaked() && !c->synced ? 1 : ring_ping_interval_secs;
			if (now.mono - c->last_input >= interval)
				ping(*c, now, fx);
		}
	}
	if (right_ == 0 && reconnect_at_ != 0 && now.mono >= reconnect_at_)
		connect_right(now, fx);
	check_left_digests(now, fx);
	if (!ring_synced_ && now.mono >= sync_resend_at_ && right_ != 0 && left_ != 0) {
		log_.log(LogLevel::error, "Ring SYNC seq=" + std::to_string(sync_seq_) +
						  " appears to have got lost, resending");
		sync_resend_at_ = now.mono + ring_sync_resend_secs;
		sync_send(*dirs_.self(), sync_seq_, ring_version_minor, uint32_t(now.wall), hosts_.hosts_hash(),
			  now, fx);
	}
	if (preferred_reconnect_at_ != 0 && now.mono >= preferred_reconnect_at_) {
		preferred_reconnect_at_ = 0;
		RingLink *right = conn(right_);
		DirectorHost *pref = dirs_.preferred_right();
		if (pref != nullptr && (right == nullptr || right->host != pref))
			connect_to(pref, now, fx);
	}
	for (auto it = sync_waiters_.begin(); it != sync_waiters_.end();) {
		if (it->deadline <= now.mono) {
			fx.admin.push_back({it->job, AdminResult::ring_sync_timeout});
			it = sync_waiters_.erase(it);
		} else {
			++it;
		}
	}
	for (auto &d : dirs_.all()) {
		if (d->removed && d->removed_at + removed_director_purge_secs <= now.mono) {
			purge_removed_directors();
			break;
		}
	}
}

bool Ring::wants_drain(RingConnId id) const
{
	auto it = conns_.find(id);
	return it != conns_.end() && it->second.want_drain;
}

std::optional<RingUserCounts> Ring::user_counts(RingConnId id) const
{
	auto it = conns_.find(id);
	if (it == conns_.end())
		return std::nullopt;
	return RingUserCounts{it->second.users_sent, it->second.users_received};
}

void Ring::drained(RingConnId id, Now now, Effects &fx)
{
	if (RingLink *c = conn(id))
		continue_user_stream(*c, now, fx);
}

} // namespace director::core
