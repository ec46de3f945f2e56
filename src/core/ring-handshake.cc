// The ring handshake (see ring.h): VERSION and ME, the host list and user stream of an
// outgoing connection, DONE, and choosing left and right. No I/O here.
#include "ring.h"

#include <algorithm>

namespace director::core {

bool Ring::handle_handshake_command(RingLink &c, const RingCommand &cmd, Now now,
					Effects &fx)
{
	std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
	switch (cmd.kind) {
	case RingCommandKind::version:
		if (c.pctx.version_received) {
			// Stock would send its host list and users again (or
			// assert while still sending them); a peer never sends
			// VERSION twice, so treat it as the protocol error it is.
			log_.peer(LogLevel::error, who, "Duplicate VERSION");
			close_conn(c, "Duplicate VERSION", now, fx, true);
			return true;
		}
		c.pctx.version_received = true;
		c.pctx.peer_minor = cmd.minor_version;
		if (cmd.minor_version < ring_minor_options) {
			log_.peer(LogLevel::error, who,
				"Director version is too old for supporting "
				"director_consistent_hashing=yes");
			close_conn(c, "Director version is too old", now, fx);
		} else if (hosts_.have_tags() && cmd.minor_version < ring_minor_tags_v2) {
			log_.peer(LogLevel::error, who,
				"Director version supports incompatible tags");
			close_conn(c, "Director version supports incompatible tags", now, fx);
		} else if (!c.incoming() && (!c.auth || c.auth->proved())) {
			send_handshake_start(c, now, fx);
		} else if (c.incoming() && (!c.auth || c.auth->proved())) {
			send_user_digests(c, fx);
		}
		return true;
	case RingCommandKind::me:
		handle_me(c, cmd, now, fx);
		return true;
	case RingCommandKind::host_hand_start:
		c.pctx.in_host_list = true;
		if (cmd.ring_handshaked && !ring_handshaked_) {
			// We are joining a working ring: its hosts replace ours,
			// and its users ours, except where a delta join showed
			// that ours are the same.
			if (!delta_join(c, now))
				handler_.ring_joining(now);
			restored_table_stale_ = false;
			log_.peer(LogLevel::info, who,
				"Joining an existing ring, replacing our mail hosts with theirs");
		} else if (!cmd.ring_handshaked && ring_handshaked_) {
			c.ignore_host_list = true; // the sender joins our ring
		}
		// Our left has told us whether the ring kept running: held user
		// streams (a restored table) may go now, emptied by ring_joining()
		// if it did.
		// A running ring's state replaces ours; a restarting one learns
		// our restored table, the left side once we are synced. Only this
		// word decides the push: after a hold that timed out, a running
		// ring must not get our stale table as USER updates (stock's
		// conflict rule prefers the lower host IP, not the newer
		// timestamp).
		if (restart_signal_pending_ && c.incoming()) {
			restart_signal_pending_ = false;
			push_restored_users_ = !cmd.ring_handshaked;
		} else if (cmd.ring_handshaked && c.incoming()) {
			push_restored_users_ = false;
		}
		if (hold_users_until_ != 0 && c.incoming())
			release_user_streams(now, fx);
		return true;
	case RingCommandKind::handshake_host:
		handler_.ring_handshake_host(c, cmd, now, fx);
		return true;
	case RingCommandKind::host_hand_end:
		c.pctx.in_host_list = false;
		c.ignore_host_list = false;
		return true;
	case RingCommandKind::handshake_user: {
		HostId host = hosts_.find(cmd.ip);
		if (host == invalid_host) {
			c.users_received++;
			std::string msg = "USER used unknown host " + cmd.ip.to_string() + " in handshake";
			log_.peer(LogLevel::error, who, msg);
			close_conn(c, msg, now, fx, true);
			return true;
		}
		handler_.ring_handshake_user(c, cmd.user_hash, host, cmd.timestamp.value_or(now.wall),
					     cmd.weak, now, fx);
		return true;
	}
	case RingCommandKind::options:
		return true;
	case RingCommandKind::done:
		c.done_received = true;
		if (c.incoming()) {
			RingCommand d;
			d.kind = RingCommandKind::done;
			send(c, d, fx);
			handshake_done(c, now, fx);
		} else if (c.handshake_sent) {
			handshake_done(c, now, fx);
		}
		return true;
	default:
		return false;
	}
}

// ME: who the peer is. An incoming connection learns its director here and may
// become (or displace) our left side.
void Ring::handle_me(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	std::string who = c.who();
	c.pctx.me_received = true;
	int64_t peer_now = cmd.timestamp ? bound_peer_time(*cmd.timestamp) : now.wall;
	if (peer_now > now.wall + 1 || peer_now < now.wall - 1) {
		log_.peer(LogLevel::warning, who, "Director clock differs by " +
			std::to_string(peer_now - now.wall) + " secs from ours");
	}
	if (!c.incoming()) {
		if (c.host == nullptr || c.host->ip != cmd.ip || c.host->port != cmd.port) {
			std::string msg = "Remote director thinks it's someone else (connected to " +
					  who + ", remote says it's " +
					  cmd.ip.to_string() + ":" + std::to_string(cmd.port) + ")";
			log_.peer(LogLevel::error, who, msg);
			close_conn(c, msg, now, fx, true);
		}
		return;
	}
	// Hardening: ME must name the address the connection comes from (the port
	// is the peer's listener, never the socket's) and a director we know. Stock
	// believes any ME, and adds or revives the director it names.
	std::string name = cmd.ip.to_string() + ":" + std::to_string(cmd.port);
	if (cmd.ip != c.remote_ip) {
		std::string msg = "ME says it is " + name + " but the connection comes from " +
				  c.remote_ip.to_string();
		log_.peer(LogLevel::error, who, msg + ", dropping");
		close_conn(c, msg, now, fx);
		return;
	}
	DirectorHost *h = dirs_.find(cmd.ip, cmd.port);
	if (h == nullptr || h->removed) {
		std::string msg = "ME names " + name + ", which is " + unlisted_reason(cmd.ip, cmd.port);
		log_.peer(LogLevel::error, who, msg + ", dropping");
		close_conn(c, msg, now, fx);
		return;
	}
	c.host = h;
	if (h->last_protocol_failure + ring_failure_retry_secs > now.mono) {
		log_.peer(LogLevel::error, h->name(),
			"Remote sent invalid protocol data recently, refusing it");
		close_conn(c, "Director recently sent invalid protocol data", now, fx);
		return;
	}
	// What ME means for our left waits for DONE: a connection that never
	// finishes its handshake changes nothing.
	c.me_effects_pending = true;
}

// The incoming ME's consequences for our left (stock runs them at ME; we at DONE).
void Ring::me_effects(RingLink &c, Now now, Effects &fx)
{
	DirectorHost *h = c.host;
	h->reset_sequences();
	RingLink *left = conn(left_);
	if (left == nullptr) {
		h->last_network_failure = 0;
		bool outgoing = false;
		for (auto &[id, oc] : conns_) {
			if (!oc.incoming() && !oc.closing())
				outgoing = true;
		}
		if (!outgoing && right_ == 0)
			connect_right(now, fx);
	} else if (left->host == h) {
		close_conn(*left, "Replacing with a new connection from the same director",
			   now, fx);
	} else if (left->host != nullptr && dirs_.cmp_to_self(h, left->host) < 0) {
		// The newcomer sits between our left and us: tell our
		// left to connect to it instead.
		RingCommand cc;
		cc.kind = RingCommandKind::connect;
		cc.ip = h->ip;
		cc.port = h->port;
		send(*left, cc, fx);
	} else {
		left->verifying_left = true;
		ping(*left, now, fx);
	}
}

void Ring::send_handshake_start(RingLink &c, Now now, Effects &fx)
{
	RingCommand start;
	start.kind = RingCommandKind::host_hand_start;
	start.ring_handshaked = ring_handshaked_;
	send(c, start, fx);
	for (HostId id : hosts_.sorted_ids()) {
		const MailHost &h = hosts_.get(id);
		RingCommand hc;
		hc.kind = RingCommandKind::handshake_host;
		hc.ip = h.ip;
		hc.vhost_count = h.vhost_count;
		hc.tag = hosts_.tag_name(h.tag);
		hc.updown = RingUpDown{h.down, h.last_updown_change};
		hc.hostname = h.hostname;
		send(c, hc, fx);
	}
	RingCommand end;
	end.kind = RingCommandKind::host_hand_end;
	end.ring_handshaked = ring_handshaked_;
	send(c, end, fx);
	if (hold_users_until_ != 0 && !c.send_no_users) {
		held_streams_.push_back(c.id());
		c.stream_held = true;
	}
	start_handshake_users(c, now, fx);
}

void Ring::release_user_streams(Now now, Effects &fx)
{
	hold_users_until_ = 0;
	std::vector<RingConnId> held;
	held.swap(held_streams_);
	for (RingConnId id : held) {
		RingLink *c = conn(id);
		if (c == nullptr || c->closing())
			continue;
		c->stream_held = false;
		start_handshake_users(*c, now, fx);
	}
}

void Ring::continue_user_stream(RingLink &c, Now now, Effects &fx)
{
	bool resend = c.resending();
	bool repair = c.repairing();
	if (!c.sending_users() || !c.continue_user_stream(hosts_, now, fx) || resend)
		return;
	if (repair) {
		fx.ring_sends.push_back({c.id(), format_user_digest_repaired(c.repair_sent) + "\n"});
		return;
	}
	if (c.handshaked())
		return; // a restored table's push (start_user_push()) ends without DONE
	if (c.pctx.peer_minor >= ring_minor_options) {
		RingCommand o;
		o.kind = RingCommandKind::options;
		o.options = {std::string(ring_option_consistent_hashing)};
		send(c, o, fx);
	}
	RingCommand d;
	d.kind = RingCommandKind::done;
	send(c, d, fx);
	c.handshake_sent = true;
	if (c.done_received)
		handshake_done(c, now, fx);
}

// A handshake from our left brought users that our right may not have: stock never
// forwards handshake users, so when two directors restart at once the one whose
// only source was the other misses them. If our own handshake to the right is
// over, what the left's added or changed goes right as USER commands (plain
// protocol: every director refreshes them and passes on only what is new to it);
// a handshake stream still running meets them itself.
void Ring::resend_to_right(const RingLink &from, Now now, Effects &fx)
{
	RingLink *right = conn(right_);
	if (from.users_to_resend == 0)
		return;
	if (right == nullptr || !right->handshaked()) {
		// Our right's handshake is still under way (a restored director
		// whose table was just replaced streams it nothing): the users
		// stay marked and go once it is our right.
		if (from.host != nullptr) {
			resend_to_new_right_ = true;
			resend_source_ = {from.host->ip, from.host->port};
		}
		return;
	}
	if (right->id() == from.id() || right->peer_minor() < ring_minor_user_timestamp)
		return;
	log_.peer(LogLevel::info, right->who(), "Passing on " +
		std::to_string(from.users_to_resend) + " users learned from " + from.who());
	cut_repair_stream(*right, fx);
	right->start_resend_stream(users_);
	continue_user_stream(*right, now, fx);
}

void Ring::handshake_done(RingLink &c, Now now, Effects &fx)
{
	if (c.handshaked())
		return;
	c.set_handshaked();
	std::string who = c.who();
	// What the peer sent while handshaking takes effect now: ME's
	// consequences, its host list, DIRECTOR lines and users.
	if (c.incoming() && c.me_effects_pending) {
		c.me_effects_pending = false;
		me_effects(c, now, fx);
	}
	apply_deferred_handshake(c, now, fx);
	if (c.closing())
		return;
	fx.ring_handshakes.push_back({c.id(), {c.users_sent, c.users_received}});
	if (c.users_unsorted) {
		users_.sort_later(); // Director::run_idle_work()
		c.users_unsorted = false;
	}
	if (c.host != nullptr)
		c.host->last_network_failure = 0;
	if (c.incoming()) {
		log_.peer(LogLevel::info, who, "Handshake finished in " +
			std::to_string(now.mono - c.created) + " secs (users received=" +
			std::to_string(c.users_received) + ")");
		// Tell the rest of the ring about our new left.
		if (c.host != nullptr) {
			RingCommand dc;
			dc.kind = RingCommandKind::director;
			dc.ip = c.host->ip;
			dc.port = c.host->port;
			update_send(c.host, dc, fx);
			c.host->director_sent_at = now.mono;
		}
		assign_left(c, now, fx);
		resend_to_right(c, now, fx);
	} else {
		log_.peer(LogLevel::info, who, "Handshake finished in " +
			std::to_string(now.mono - c.created) + " secs (users sent=" +
			std::to_string(c.users_sent) + ")");
		assign_right(c, now, fx);
		RingLink *right = conn(right_);
		bool go = resend_to_new_right_ && right != nullptr && right->id() == c.id();
		if (go) {
			resend_to_new_right_ = false;
			// not back to the director they came from (a ring of two)
			bool source = c.host != nullptr && c.host->ip == resend_source_.ip &&
				      c.host->port == resend_source_.port;
			go = !source && c.peer_minor() >= ring_minor_user_timestamp &&
			     !c.sending_users();
		}
		if (go) {
			log_.peer(LogLevel::info, who,
				"Passing on the users learned while connecting to it");
			c.start_resend_stream(users_);
			continue_user_stream(c, now, fx);
		}
	}
	// Ring changes that arrived during the handshake, now that we know
	// whether this connection is our left or right.
	if (!c.closing())
		replay_deferred_commands(c, now, fx);
}

void Ring::assign_right(RingLink &c, Now now, Effects &fx)
{
	if (RingLink *right = conn(right_)) {
		if (right->host != nullptr && dirs_.cmp_to_self(c.host, right->host) <= 0) {
			log_.log(LogLevel::warning, "Aborting incorrect outgoing connection to " +
							    c.host->name() +
							    " (already connected to correct one: " +
							    right->host->name() + ")");
			close_conn(c, "Incorrect outgoing connection", now, fx);
			return;
		}
		log_.log(LogLevel::info, "Replacing right director connection " +
						 (right->host ? right->host->name() : "") + " with " +
						 c.host->name());
		RingConnId old = right_;
		right_ = 0;
		close_conn(conns_.at(old), "Replacing with a better right side", now, fx);
	}
	right_ = c.id();
	ring_first_alone_ = 0;
	if (left_ != 0)
		ring_sync(now, fx);
	// SYNCs that waited for a right side can go now.
	for (auto &d : dirs_.all()) {
		if (d->delayed_sync && !d->self) {
			RingCommand s = *d->delayed_sync;
			d->delayed_sync.reset();
			sync_send(*d, s.origin.seq, s.sync_minor.value_or(0),
				  s.sync_timestamp.value_or(uint32_t(now.wall)), s.hosts_hash.value_or(0),
				  now, fx);
		}
	}
}

void Ring::assign_left(RingLink &c, Now now, Effects &fx)
{
	if (c.host == dirs_.self()) {
		close_conn(c, "Connection from self, dropping", now, fx);
		return;
	}
	RingLink *left = conn(left_);
	if (left == nullptr || left->host == c.host) {
		if (left != nullptr && left->id() != c.id()) {
			RingConnId old = left_;
			left_ = 0;
			close_conn(conns_.at(old), "Replacing with a new connection", now, fx);
		}
	} else if (left->verifying_left) {
		return; // decided when the PONG arrives
	} else if (dirs_.cmp_to_self(left->host, c.host) < 0) {
		// Our left is the better one: the newcomer should connect there.
		RingCommand cc;
		cc.kind = RingCommandKind::connect;
		cc.ip = left->host->ip;
		cc.port = left->host->port;
		send(c, cc, fx);
		c.connect_sent = true;
		c.connect_sent_at = now.mono;
		return;
	} else {
		return; // becomes our left once the old left goes away
	}
	left_ = c.id();
	ring_first_alone_ = 0;
	if (right_ != 0)
		ring_sync(now, fx);
	else
		connect_right(now, fx);
}

void Ring::promote_left(Now now, Effects &fx)
{
	RingLink *best = nullptr;
	for (auto &[id, c] : conns_) {
		if (!c.incoming() || c.closing() || !c.handshaked() || c.host == nullptr)
			continue;
		if (best == nullptr || dirs_.cmp_to_self(c.host, best->host) < 0)
			best = &c;
	}
	if (best == nullptr)
		return;
	assign_left(*best, now, fx);
	RingLink *left = conn(left_);
	if (left == nullptr)
		return;
	// The others were waiting for the old left to go; now that the best
	// one is our left they get CONNECT to it. Otherwise a director that
	// still takes us for its right never learns that a newcomer sits
	// between us (two directors joining at once left the ring unclosed).
	for (auto &[id, c] : conns_) {
		if (c.incoming() && !c.closing() && c.handshaked() && c.host != nullptr &&
		    c.host != left->host && !c.connect_sent)
			assign_left(c, now, fx);
	}
}

} // namespace director::core
