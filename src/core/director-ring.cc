// The director ring inside the state machine: the director list, left/right
// connections and their handshake, SYNC, and the ring side of every user and
// host change (ring-protocol.md). No I/O here: lines go out as Effects and
// come in through ring_line().
//
// Who talks to whom: every director connects to its right neighbour (the
// next listed director after itself, by IP and port) and is connected to by
// its left one. The connector sends VERSION, ME and the directors it knows;
// once it sees the acceptor's VERSION it sends its mail hosts, its users and
// DONE, and the acceptor answers DONE. Changes then travel both ways around
// the ring with an origin triple (origin director, its sequence number) that
// stops them where they were seen before; SYNC travels rightwards only and
// tells its originator that everyone has seen everything it sent before it.
#include "director.h"

#include <algorithm>
#include <cstdio>

#include "admin-protocol.h"
#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

namespace {

std::string conn_name(const IpAddr &ip, uint16_t port)
{
	return ip.to_string() + ":" + std::to_string(port);
}

} // namespace

// ---------------------------------------------------------------- directors

Director::DirectorHost *Director::find_director(const IpAddr &ip, uint16_t port) const
{
	for (const auto &d : dirs_) {
		if (d->ip == ip && d->port == port)
			return d.get();
	}
	return nullptr;
}

Director::DirectorHost *Director::add_director(const IpAddr &ip, uint16_t port)
{
	auto h = std::make_unique<DirectorHost>();
	h->ip = ip;
	h->port = port;
	DirectorHost *raw = h.get();
	auto pos = std::lower_bound(dirs_.begin(), dirs_.end(), raw,
				    [](const std::unique_ptr<DirectorHost> &a, const DirectorHost *b) {
					    int c = a->ip.compare(b->ip);
					    return c != 0 ? c < 0 : a->port < b->port;
				    });
	dirs_.insert(pos, std::move(h));
	return raw;
}

size_t Director::director_index(const DirectorHost *h) const
{
	for (size_t i = 0; i < dirs_.size(); i++) {
		if (dirs_[i].get() == h)
			return i;
	}
	return 0;
}

// > 0 when `a` is closer to our right than `b`, < 0 when farther, 0 equal.
int Director::cmp_to_self(const DirectorHost *a, const DirectorHost *b) const
{
	size_t n = dirs_.size(), s = director_index(self_);
	size_t ra = (director_index(a) + n - s) % n, rb = (director_index(b) + n - s) % n;
	return ra < rb ? 1 : ra > rb ? -1 : 0;
}

Director::DirectorHost *Director::preferred_right() const
{
	size_t n = dirs_.size(), s = director_index(self_);
	for (size_t i = 1; i < n; i++) {
		DirectorHost *h = dirs_[(s + i) % n].get();
		if (!h->removed)
			return h;
	}
	return nullptr;
}

void Director::reset_director_state(DirectorHost &h)
{
	// The director may have restarted: its sequences start again.
	h.last_seq = 0;
	h.last_sync_seq = 0;
	h.last_sync_timestamp = 0;
	h.sync_duplicates = 0;
}

Director::RingConn *Director::conn(RingConnId id)
{
	auto it = conns_.find(id);
	return it == conns_.end() || it->second.closing ? nullptr : &it->second;
}

RingOrigin Director::next_origin()
{
	self_->last_seq++;
	return RingOrigin{self_->ip, self_->port, self_->last_seq};
}

// ---------------------------------------------------------------- sending

void Director::send_raw(RingConn &c, std::string line, Effects &fx)
{
	line += '\n';
	fx.ring_sends.push_back({c.id, std::move(line)});
}

void Director::send(RingConn &c, const RingCommand &cmd, Effects &fx)
{
	send_raw(c, format_ring_command(cmd, {c.pctx.peer_minor, ring_min_version_}), fx);
}

void Director::update_send(const DirectorHost *src, const RingCommand &cmd, Effects &fx,
			   unsigned min_minor)
{
	for (auto &[id, c] : conns_) {
		if (c.closing || c.host == src || !c.tcp_connected)
			continue;
		if (c.pctx.version_received && c.pctx.peer_minor < min_minor)
			continue;
		send(c, cmd, fx);
	}
}

void Director::ping(RingConn &c, int64_t now, Effects &fx)
{
	if (c.ping_pending || !c.tcp_connected)
		return;
	RingCommand cmd;
	cmd.kind = RingCommandKind::ping;
	cmd.timestamp = now;
	cmd.buffer_bytes = 0;
	send(c, cmd, fx);
	c.ping_pending = true;
	c.ping_sent_at = now;
}

// ---------------------------------------------------------------- start and connect

void Director::ring_start(const std::vector<RingDirectorConfig> &directors, const IpAddr &self_ip,
			  uint16_t self_port, int64_t now, Effects &fx)
{
	ring_mode_ = true;
	for (const auto &d : directors) {
		if (find_director(d.ip, d.port) == nullptr)
			add_director(d.ip, d.port);
	}
	self_ = find_director(self_ip, self_port);
	if (self_ == nullptr)
		self_ = add_director(self_ip, self_port);
	self_->self = true;
	if (dirs_.size() == 1) {
		start_alone(now, self_port);
		return;
	}
	ring_listen_port_ = self_port;
	ring_handshaked_ = false;
	ring_synced_ = false;
	ring_last_sync_time_ = 0;
	connect_right(now, fx);
}

bool Director::connect_to(DirectorHost *h, int64_t now, Effects &fx)
{
	if (shutting_down_)
		return false;
	for (auto &[id, c] : conns_) {
		if (!c.incoming && !c.closing && c.host == h)
			return false; // already connecting or connected there
	}
	RingConnId id = next_conn_++;
	RingConn &c = conns_[id];
	c.id = id;
	c.incoming = false;
	c.remote_ip = h->ip;
	c.host = h;
	c.pctx = RingParseContext::fresh(false);
	c.created = now;
	c.last_input = now;
	reset_director_state(*h);
	log_.log(LogLevel::info, "Connecting to " + h->name());
	fx.ring_connects.push_back({id, h->ip, h->port});
	return true;
}

void Director::connect_right(int64_t now, Effects &fx)
{
	reconnect_at_ = 0;
	if (shutting_down_)
		return;
	size_t n = dirs_.size(), s = director_index(self_);
	for (size_t i = 1; i < n; i++) {
		DirectorHost *h = dirs_[(s + i) % n].get();
		if (h->removed || h->last_network_failure + ring_failure_retry_secs > now ||
		    h->last_protocol_failure + ring_failure_retry_secs > now)
			continue;
		bool busy = false;
		for (auto &[id, c] : conns_) {
			if (!c.incoming && !c.closing && c.host == h)
				busy = true;
		}
		if (busy)
			return; // a connect to our right is already under way
		if (connect_to(h, now, fx))
			return;
	}
	// Nobody to connect to. Before deciding we are alone, keep trying for
	// a while: the others may be starting up too.
	bool others = false;
	for (const auto &d : dirs_) {
		if (!d->self && !d->removed)
			others = true;
	}
	if (others && (ring_first_alone_ == 0 || now - ring_first_alone_ <= ring_min_wait_alone_secs)) {
		if (ring_first_alone_ == 0)
			ring_first_alone_ = now;
		for (auto &d : dirs_) {
			d->last_network_failure = 0;
			d->last_protocol_failure = 0;
		}
		reconnect_at_ = now + 1;
		return;
	}
	if (others) {
		log_.log(LogLevel::warning,
			 "director: Couldn't connect to right side, we must be the only director left");
	}
	if (RingConn *left = conn(left_)) {
		log_.log(LogLevel::warning, "director: Assuming " + conn_name(left->remote_ip,
									       left->host ? left->host->port : 0) +
						    " is dead, disconnecting");
		close_conn(*left, "This connection is dead?", now, fx);
	}
	ring_min_version_ = ring_version_minor;
	if (!ring_handshaked_)
		set_ring_handshaked(now, fx);
	else if (!ring_synced_)
		set_ring_synced(now, fx);
}

RingConnId Director::ring_accept(const IpAddr &remote, int64_t now, Effects &fx)
{
	(void)fx;
	bool listed = false;
	for (const auto &d : dirs_) {
		if (d->ip == remote && !d->removed)
			listed = true;
	}
	if (!listed) {
		log_.log(LogLevel::warning, "Connection from " + remote.to_string() +
						    ": Server not listed in director_servers, dropping");
		return 0;
	}
	RingConnId id = next_conn_++;
	RingConn &c = conns_[id];
	c.id = id;
	c.incoming = true;
	c.remote_ip = remote;
	c.pctx = RingParseContext::fresh(true);
	c.tcp_connected = true;
	c.created = now;
	c.last_input = now;
	RingCommand v;
	v.kind = RingCommandKind::version;
	v.minor_version = ring_version_minor;
	send(c, v, fx);
	RingCommand me;
	me.kind = RingCommandKind::me;
	me.ip = self_->ip;
	me.port = self_->port;
	me.timestamp = now;
	send(c, me, fx);
	return id;
}

void Director::ring_connected(RingConnId id, int64_t now, Effects &fx)
{
	RingConn *c = conn(id);
	if (c == nullptr)
		return;
	c->tcp_connected = true;
	c->last_input = now;
	RingCommand v;
	v.kind = RingCommandKind::version;
	v.minor_version = ring_version_minor;
	send(*c, v, fx);
	RingCommand me;
	me.kind = RingCommandKind::me;
	me.ip = self_->ip;
	me.port = self_->port;
	me.timestamp = now;
	send(*c, me, fx);
	for (const auto &d : dirs_) {
		if (d->removed)
			continue;
		RingCommand dc;
		dc.kind = RingCommandKind::director;
		dc.ip = d->ip;
		dc.port = d->port;
		send(*c, dc, fx);
	}
}

// ---------------------------------------------------------------- closing

void Director::close_conn(RingConn &c, const std::string &reason, int64_t now, Effects &fx,
			  bool protocol_failure)
{
	if (c.closing)
		return;
	if (protocol_failure && c.host != nullptr)
		c.host->last_protocol_failure = now;
	if (c.tcp_connected && c.pctx.version_received && c.pctx.peer_minor >= ring_minor_quit &&
	    !reason.empty()) {
		RingCommand q;
		q.kind = RingCommandKind::quit;
		q.reason = reason;
		send(c, q, fx);
	}
	c.closing = true;
	fx.ring_closes.push_back({c.id, reason});
	conn_gone(c.id, now, fx);
}

void Director::ring_closed(RingConnId id, const std::string &reason, int64_t now, Effects &fx)
{
	auto it = conns_.find(id);
	if (it == conns_.end())
		return;
	RingConn &c = it->second;
	if (!c.closing) {
		std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
		if (c.connect_sent) {
			log_.log(LogLevel::warning, "director(" + who + "): tried to connect to us, "
								      "should use another director instead");
		} else {
			log_.log(c.handshaked ? LogLevel::error : LogLevel::info,
				 "director(" + who + "): Disconnected: " + reason);
		}
		if (!c.incoming && c.host != nullptr && now - c.created < ring_short_connection_secs)
			c.host->last_network_failure = now;
		c.closing = true;
		conn_gone(id, now, fx);
	}
	conns_.erase(id);
}

void Director::conn_gone(RingConnId id, int64_t now, Effects &fx)
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
			if (!c.incoming && !c.closing)
				connecting = true;
		}
		if (!connecting)
			connect_right(now, fx);
	}
}

// ---------------------------------------------------------------- input

void Director::ring_line(RingConnId id, std::string_view line, int64_t now, Effects &fx)
{
	RingConn *c = conn(id);
	if (c == nullptr)
		return;
	c->last_input = now;
	if (c->incoming && !c->handshaked) {
		if (auto u = parse_handshake_user_fast(line, c->pctx)) {
			if (c->hs_hosts_generation != hosts_.ids_generation() || c->hs_ip_text != u->ip_text) {
				auto ip = parse_stock_ip(u->ip_text);
				c->hs_ip_text = std::string(u->ip_text);
				c->hs_host = ip ? hosts_.find(*ip) : invalid_host;
				c->hs_hosts_generation = hosts_.ids_generation();
			}
			if (c->hs_host != invalid_host) {
				handshake_user(*c, u->user_hash, c->hs_host, u->timestamp, u->weak, now, fx);
				return;
			}
			// unknown host: the full parse below reports it as stock does
		}
	}
	auto parsed = parse_ring_line(line, c->pctx);
	if (!parsed.ok()) {
		if (auto origin = ring_origin_checked_before_body(line, c->pctx)) {
			DirectorHost *h = find_director(origin->ip, origin->port);
			if (h != nullptr && !h->removed && origin->seq <= h->last_seq)
				return; // stock ignores a seen triple before the body
		}
		std::string who = c->host ? c->host->name() : c->remote_ip.to_string();
		log_.log(LogLevel::error, "director(" + who + "): " + parsed.error());
		close_conn(*c, parsed.error(), now, fx, true);
		return;
	}
	const RingCommand &cmd = parsed.value();
	if (!handle_handshake_command(*c, cmd, now, fx))
		handle_ring_command(*c, cmd, now, fx);
}

bool Director::handle_handshake_command(RingConn &c, const RingCommand &cmd, int64_t now,
					Effects &fx)
{
	std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
	switch (cmd.kind) {
	case RingCommandKind::version:
		if (c.pctx.version_received) {
			// Stock would send its host list and users again (or
			// assert while still sending them); a peer never sends
			// VERSION twice, so treat it as the protocol error it is.
			log_.log(LogLevel::error, "director(" + who + "): Duplicate VERSION");
			close_conn(c, "Duplicate VERSION", now, fx, true);
			return true;
		}
		c.pctx.version_received = true;
		c.pctx.peer_minor = cmd.minor_version;
		if (cmd.minor_version < ring_minor_options) {
			log_.log(LogLevel::error,
				 "director(" + who + "): Director version is too old for supporting "
						     "director_consistent_hashing=yes");
			close_conn(c, "Director version is too old", now, fx);
		} else if (hosts_.have_tags() && cmd.minor_version < ring_minor_tags_v2) {
			log_.log(LogLevel::error, "director(" + who + "): Director version supports "
								      "incompatible tags");
			close_conn(c, "Director version supports incompatible tags", now, fx);
		} else if (!c.incoming) {
			send_handshake_start(c, now, fx);
		}
		return true;
	case RingCommandKind::me: {
		c.pctx.me_received = true;
		if (cmd.timestamp && (*cmd.timestamp > now + 1 || *cmd.timestamp < now - 1)) {
			log_.log(LogLevel::warning, "director(" + who + "): Director clock differs by " +
							    std::to_string(*cmd.timestamp - now) +
							    " secs from ours");
		}
		if (!c.incoming) {
			if (c.host == nullptr || c.host->ip != cmd.ip || c.host->port != cmd.port) {
				std::string msg = "Remote director thinks it's someone else (connected to " +
						  who + ", remote says it's " +
						  conn_name(cmd.ip, cmd.port) + ")";
				log_.log(LogLevel::error, "director(" + who + "): " + msg);
				close_conn(c, msg, now, fx, true);
			}
			return true;
		}
		DirectorHost *h = find_director(cmd.ip, cmd.port);
		if (h == nullptr) {
			h = add_director(cmd.ip, cmd.port);
			ring_change_counter_++;
		}
		h->removed = false;
		reset_director_state(*h);
		c.host = h;
		if (h->last_protocol_failure + ring_failure_retry_secs > now) {
			close_conn(c, "Director recently sent invalid protocol data", now, fx);
			return true;
		}
		RingConn *left = conn(left_);
		if (left == nullptr) {
			h->last_network_failure = 0;
			bool outgoing = false;
			for (auto &[id, oc] : conns_) {
				if (!oc.incoming && !oc.closing)
					outgoing = true;
			}
			if (!outgoing && right_ == 0)
				connect_right(now, fx);
		} else if (left->host == h) {
			close_conn(*left, "Replacing with a new connection from the same director",
				   now, fx);
		} else if (left->host != nullptr && cmp_to_self(h, left->host) < 0) {
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
		return true;
	}
	case RingCommandKind::host_hand_start:
		c.pctx.in_host_list = true;
		if (cmd.ring_handshaked && !ring_handshaked_) {
			// We are joining a working ring: its hosts replace ours.
			for (HostId id : hosts_.sorted_ids()) {
				erase_users_of_host(id);
				hosts_.remove(id);
			}
			log_.log(LogLevel::info, "director(" + who + "): Joining an existing ring, "
								     "replacing our mail hosts with theirs");
		} else if (!cmd.ring_handshaked && ring_handshaked_) {
			c.ignore_host_list = true; // the sender joins our ring
		}
		return true;
	case RingCommandKind::handshake_host:
		apply_host(&c, cmd, true, now, fx);
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
			log_.log(LogLevel::error, "director(" + who + "): " + msg);
			close_conn(c, msg, now, fx, true);
			return true;
		}
		handshake_user(c, cmd.user_hash, host, cmd.timestamp.value_or(now), cmd.weak, now, fx);
		return true;
	}
	case RingCommandKind::options:
		return true;
	case RingCommandKind::done:
		c.done_received = true;
		if (c.incoming) {
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

// A user from the peer's handshake: refreshed like a USER, but with the
// received timestamp kept if it is newer, and never forwarded.
void Director::handshake_user(RingConn &c, uint32_t hash, HostId host, int64_t timestamp, bool weak,
			      int64_t now, Effects &fx)
{
	c.users_received++;
	int64_t ts = std::min<int64_t>(timestamp, now);
	bool forced;
	UserIndex u;
	if (user_refresh(c, hash, host, ts, weak, false, now, forced, u, fx) < 0)
		return;
	if (users_.timestamp(u) < ts)
		users_.set_timestamp_in_place(u, static_cast<uint32_t>(ts));
	c.users_unsorted = true;
}

void Director::send_handshake_start(RingConn &c, int64_t now, Effects &fx)
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
	c.sending_users = true;
	c.send_next = users_.oldest();
	c.send_last = users_.newest();
	continue_user_stream(c, now, fx);
}

void Director::continue_user_stream(RingConn &c, int64_t now, Effects &fx)
{
	if (!c.sending_users)
		return;
	c.want_drain = false;
	std::string batch;
	batch.reserve(ring_handshake_users_per_batch * 40);
	// Written by hand rather than through format_ring_command(): a million
	// of these go out when a director joins.
	const char *cmd = c.pctx.peer_minor >= ring_minor_handshake_u ? "U\t" : "USER\t";
	char num[16];
	size_t n = 0;
	if (c.send_ip_generation != hosts_.ids_generation()) {
		c.send_ip_text.clear();
		c.send_ip_generation = hosts_.ids_generation();
	}
	while (c.send_next != no_user && n < ring_handshake_users_per_batch) {
		UserIndex u = c.send_next;
		bool last = u == c.send_last;
		c.send_next = last ? no_user : users_.newer(u);
		HostId host = users_.host(u);
		if (c.send_ip_text.size() <= host)
			c.send_ip_text.resize(host + 1);
		if (c.send_ip_text[host].empty())
			c.send_ip_text[host] = hosts_.get(host).ip.to_string();
		batch += cmd;
		batch.append(num, size_t(std::snprintf(num, sizeof(num), "%u", users_.user_hash(u))));
		batch += '\t';
		batch += c.send_ip_text[host];
		batch += '\t';
		batch.append(num, size_t(std::snprintf(num, sizeof(num), "%u", users_.timestamp(u))));
		if (users_.weak(u))
			batch += "\tw";
		batch += '\n';
		c.users_sent++;
		n++;
	}
	if (!batch.empty())
		fx.ring_sends.push_back({c.id, std::move(batch)});
	c.last_output = now;
	if (c.send_next != no_user) {
		c.want_drain = true;
		return;
	}
	c.sending_users = false;
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

void Director::stream_fixup(UserIndex u)
{
	for (auto &[id, c] : conns_) {
		if (!c.sending_users)
			continue;
		if (c.send_last == u) {
			if (c.send_next == u)
				c.send_next = no_user;
			c.send_last = users_.older(u);
			if (c.send_last == no_user)
				c.send_next = no_user;
		} else if (c.send_next == u) {
			c.send_next = users_.newer(u);
		}
	}
}

bool Director::ring_wants_drain(RingConnId id) const
{
	auto it = conns_.find(id);
	return it != conns_.end() && it->second.want_drain;
}

void Director::ring_drained(RingConnId id, int64_t now, Effects &fx)
{
	if (RingConn *c = conn(id))
		continue_user_stream(*c, now, fx);
}

void Director::handshake_done(RingConn &c, int64_t now, Effects &fx)
{
	if (c.handshaked)
		return;
	c.handshaked = true;
	c.pctx.handshake_done = true;
	std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
	if (c.users_unsorted) {
		users_.sort_by_timestamp();
		c.users_unsorted = false;
	}
	if (c.host != nullptr)
		c.host->last_network_failure = 0;
	if (c.incoming) {
		log_.log(LogLevel::info, "director(" + who + "): Handshake finished in " +
						 std::to_string(now - c.created) + " secs (users received=" +
						 std::to_string(c.users_received) + ")");
		// Tell the rest of the ring about our new left.
		if (c.host != nullptr) {
			RingCommand dc;
			dc.kind = RingCommandKind::director;
			dc.ip = c.host->ip;
			dc.port = c.host->port;
			update_send(c.host, dc, fx);
			c.host->director_sent_at = now;
		}
		assign_left(c, now, fx);
	} else {
		log_.log(LogLevel::info, "director(" + who + "): Handshake finished in " +
						 std::to_string(now - c.created) + " secs (users sent=" +
						 std::to_string(c.users_sent) + ")");
		assign_right(c, now, fx);
	}
}

// ---------------------------------------------------------------- left and right

void Director::assign_right(RingConn &c, int64_t now, Effects &fx)
{
	if (RingConn *right = conn(right_)) {
		if (right->host != nullptr && cmp_to_self(c.host, right->host) <= 0) {
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
		close_conn(conns_[old], "Replacing with a better right side", now, fx);
	}
	right_ = c.id;
	ring_first_alone_ = 0;
	if (left_ != 0)
		ring_sync(now, fx);
	// SYNCs that waited for a right side can go now.
	for (auto &d : dirs_) {
		if (d->delayed_sync && !d->self) {
			RingCommand s = *d->delayed_sync;
			d->delayed_sync.reset();
			sync_send(*d, s.origin.seq, s.sync_minor.value_or(0),
				  s.sync_timestamp.value_or(uint32_t(now)), s.hosts_hash.value_or(0),
				  now, fx);
		}
	}
}

void Director::assign_left(RingConn &c, int64_t now, Effects &fx)
{
	if (c.host == self_) {
		close_conn(c, "Connection from self, dropping", now, fx);
		return;
	}
	RingConn *left = conn(left_);
	if (left == nullptr || left->host == c.host) {
		if (left != nullptr && left->id != c.id) {
			RingConnId old = left_;
			left_ = 0;
			close_conn(conns_[old], "Replacing with a new connection", now, fx);
		}
	} else if (left->verifying_left) {
		return; // decided when the PONG arrives
	} else if (cmp_to_self(left->host, c.host) < 0) {
		// Our left is the better one: the newcomer should connect there.
		RingCommand cc;
		cc.kind = RingCommandKind::connect;
		cc.ip = left->host->ip;
		cc.port = left->host->port;
		send(c, cc, fx);
		c.connect_sent = true;
		c.connect_sent_at = now;
		return;
	} else {
		return; // becomes our left once the old left goes away
	}
	left_ = c.id;
	ring_first_alone_ = 0;
	if (right_ != 0)
		ring_sync(now, fx);
	else
		connect_right(now, fx);
}

void Director::promote_left(int64_t now, Effects &fx)
{
	RingConn *best = nullptr;
	for (auto &[id, c] : conns_) {
		if (!c.incoming || c.closing || !c.handshaked || c.host == nullptr)
			continue;
		if (best == nullptr || cmp_to_self(c.host, best->host) < 0)
			best = &c;
	}
	if (best == nullptr)
		return;
	assign_left(*best, now, fx);
	RingConn *left = conn(left_);
	if (left == nullptr)
		return;
	// The others were waiting for the old left to go; now that the best
	// one is our left they get CONNECT to it. Otherwise a director that
	// still takes us for its right never learns that a newcomer sits
	// between us (two directors joining at once left the ring unclosed).
	for (auto &[id, c] : conns_) {
		if (c.incoming && !c.closing && c.handshaked && c.host != nullptr &&
		    c.host != left->host && !c.connect_sent)
			assign_left(c, now, fx);
	}
}

// ---------------------------------------------------------------- sync

void Director::set_ring_unsynced(int64_t now)
{
	if (ring_synced_) {
		ring_synced_ = false;
		ring_last_sync_time_ = now;
	}
	sync_resend_at_ = now + ring_sync_resend_secs;
}

void Director::ring_sync(int64_t now, Effects &fx)
{
	sync_seq_++;
	if (alone())
		return; // alone: changes cannot desync us
	set_ring_unsynced(now);
	RingConn *right = conn(right_);
	if (right == nullptr)
		return;
	if (RingConn *left = conn(left_))
		left->synced = false;
	right->synced = false;
	sync_send(*self_, sync_seq_, ring_version_minor, uint32_t(now), hosts_.hosts_hash(), now, fx);
}

bool Director::ring_heartbeat(int64_t now, Effects &fx)
{
	if (alone() || !ring_synced_ || !ring_handshaked_ || right_ == 0)
		return false;
	sync_seq_++;
	sync_send(*self_, sync_seq_, ring_version_minor, uint32_t(now), hosts_.hosts_hash(), now, fx);
	return true;
}

int64_t Director::director_last_sync_seen(const IpAddr &ip, uint16_t port) const
{
	const DirectorHost *h = find_director(ip, port);
	return h == nullptr ? 0 : h->last_sync_seen;
}

void Director::sync_send(const DirectorHost &origin, uint32_t seq, uint32_t minor,
			 uint32_t timestamp, uint32_t hosts_hash, int64_t now, Effects &fx)
{
	RingConn *right = conn(right_);
	if (right == nullptr)
		return;
	if (&origin == self_) {
		last_sync_sent_change_counter_ = ring_change_counter_;
		last_sync_start_ = now;
	}
	RingCommand s;
	s.kind = RingCommandKind::sync;
	s.origin = RingOrigin{origin.ip, origin.port, seq};
	if (minor > 0) {
		s.sync_minor = minor;
		s.sync_timestamp = timestamp;
		s.hosts_hash = hosts_hash;
	}
	send(*right, s, fx);
	if (RingConn *left = conn(left_))
		ping(*left, now, fx);
	ping(*right, now, fx);
}

void Director::set_ring_handshaked(int64_t now, Effects &fx)
{
	ring_handshaked_ = true;
	log_.log(LogLevel::info, "Director ring handshaked");
	set_ring_synced(now, fx);
}

void Director::set_ring_synced(int64_t now, Effects &fx)
{
	ring_synced_ = true;
	ring_last_sync_time_ = now;
	if (RingConn *left = conn(left_))
		left->synced = true;
	RingConn *right = conn(right_);
	if (right != nullptr)
		right->synced = true;
	DirectorHost *pref = preferred_right();
	preferred_reconnect_at_ =
		right != nullptr && pref != nullptr && right->host != pref
			? now + ring_preferred_reconnect_secs
			: 0;
	purge_removed_directors(now);
	hosts_.clear_desynced();
	state_changed(now, fx);
}

void Director::state_changed(int64_t now, Effects &fx)
{
	retry_pending(now, fx);
	if (ring_synced_) {
		for (const SyncWaiter &w : sync_waiters_)
			fx.admin.push_back({w.job, "OK"});
		sync_waiters_.clear();
		for (JobId job : presync_waiters_)
			fx.admin_resume.push_back(job);
		presync_waiters_.clear();
	}
}

AdminReply Director::reply_after_sync(JobId job, int64_t now)
{
	// Alone, a change cannot desync us; synced, nothing is pending.
	if (alone() || ring_synced_)
		return AdminReply::now("OK");
	sync_waiters_.push_back({job, now + request_timeout_secs});
	return AdminReply::deferred();
}

bool Director::admin_may_run(JobId job)
{
	if (ring_synced_)
		return true;
	presync_waiters_.push_back(job);
	return false;
}

void Director::handle_sync(RingConn &c, const RingCommand &cmd, int64_t now, Effects &fx)
{
	DirectorHost *origin = find_director(cmd.origin.ip, cmd.origin.port);
	uint32_t minor = cmd.sync_minor.value_or(0);
	uint32_t hash = cmd.hosts_hash.value_or(0);
	int64_t ts = cmd.sync_timestamp ? int64_t(*cmd.sync_timestamp) : now;
	if (origin == self_) {
		if (cmd.origin.seq != sync_seq_)
			return; // an older SYNC of ours
		if (hash != 0 && hash != hosts_.hosts_hash()) {
			log_.log(LogLevel::warning, "Hosts unexpectedly changed during SYNC reply - "
						    "resending (seq=" + std::to_string(sync_seq_) + ")");
			sync_send(*self_, sync_seq_, ring_version_minor, uint32_t(now),
				  hosts_.hosts_hash(), now, fx);
			return;
		}
		ring_min_version_ = minor;
		last_sync_msecs_ = uint32_t((now - last_sync_start_) * 1000);
		if (!ring_handshaked_)
			set_ring_handshaked(now, fx);
		else if (!ring_synced_)
			set_ring_synced(now, fx);
		return;
	}
	if (origin != nullptr) {
		origin->last_sync_seen = now;
		if (cmd.origin.seq < origin->last_sync_seq &&
		    ts < origin->last_sync_timestamp + ring_sync_stale_restart_secs)
			return; // stale
		if (cmd.origin.seq < origin->last_sync_seq) {
			// A much newer timestamp with a lower seq: it restarted.
			origin->last_sync_seq = cmd.origin.seq;
			origin->last_sync_timestamp = ts;
			origin->sync_duplicates = 1;
		} else if (cmd.origin.seq > origin->last_sync_seq || ts > origin->last_sync_timestamp) {
			origin->last_sync_seq = cmd.origin.seq;
			origin->last_sync_timestamp = ts;
			origin->sync_duplicates = 1;
		} else if (++origin->sync_duplicates > ring_sync_max_duplicates) {
			return; // looping: the origin is not in the ring
		}
		if (hash != 0 && hash != hosts_.hosts_hash()) {
			if (origin->bad_hosts_hash != hash) {
				origin->bad_hosts_hash = hash;
				return;
			}
			log_.log(LogLevel::error, "director(" + (c.host ? c.host->name() : "") +
							  "): Hosts differ from " + origin->name() +
							  " (our hash=" + std::to_string(hosts_.hosts_hash()) +
							  ", theirs=" + std::to_string(hash) +
							  "), resending our hosts");
			for (HostId id : hosts_.sorted_ids())
				send_host(self_, next_origin(), id, now, fx);
			return;
		}
		if (right_ != 0) {
			sync_send(*origin, cmd.origin.seq, std::min(minor, ring_version_minor),
				  uint32_t(ts), hash, now, fx);
		} else {
			RingCommand delayed = cmd;
			if (delayed.sync_minor)
				delayed.sync_minor = std::min(minor, ring_version_minor);
			origin->delayed_sync = delayed;
		}
	}
	// A SYNC passing by: resend ours if the ring changed since we sent it.
	if (!ring_synced_ && ring_change_counter_ != last_sync_sent_change_counter_ &&
	    last_sync_resend_ != now && right_ != 0 && left_ != 0) {
		last_sync_resend_ = now;
		sync_send(*self_, sync_seq_, ring_version_minor, uint32_t(now), hosts_.hosts_hash(),
			  now, fx);
	}
}

void Director::purge_removed_directors(int64_t now)
{
	(void)now;
	for (auto it = dirs_.begin(); it != dirs_.end();) {
		DirectorHost *h = it->get();
		bool used = false;
		for (auto &[id, c] : conns_)
			used = used || c.host == h;
		if (h->removed && !used)
			it = dirs_.erase(it);
		else
			++it;
	}
}

// ---------------------------------------------------------------- commands

bool Director::check_origin(RingConn &c, const RingOrigin &origin, bool &reoriginate_r)
{
	(void)c;
	reoriginate_r = false;
	DirectorHost *h = find_director(origin.ip, origin.port);
	if (h == nullptr || h->removed) {
		reoriginate_r = true;
		return true;
	}
	if (origin.seq <= h->last_seq)
		return false;
	h->last_seq = origin.seq;
	return true;
}

void Director::handle_ring_command(RingConn &c, const RingCommand &cmd, int64_t now, Effects &fx)
{
	std::string who = c.host ? c.host->name() : c.remote_ip.to_string();
	bool reorig = false;
	RingCommand fwd = cmd;
	auto forward = [&](unsigned min_minor = 0) {
		const DirectorHost *src = c.host;
		if (reorig) {
			fwd.origin = next_origin();
			src = self_;
		}
		update_send(src, fwd, fx, min_minor);
	};
	switch (cmd.kind) {
	case RingCommandKind::user: {
		HostId host = hosts_.find(cmd.ip);
		if (host == invalid_host)
			return; // probably just removed
		bool forced;
		UserIndex u;
		if (user_refresh(c, cmd.user_hash, host, cmd.timestamp.value_or(now), false,
				 !cmd.timestamp, now, forced, u, fx) > 0)
			broadcast_user(forced ? self_ : c.host, u, fx);
		return;
	}
	case RingCommandKind::host:
		if (!check_origin(c, cmd.origin, reorig))
			return;
		apply_host(&c, reorig ? RingCommand(cmd) : cmd, false, now, fx);
		return;
	case RingCommandKind::host_remove:
	case RingCommandKind::host_flush: {
		if (!check_origin(c, cmd.origin, reorig))
			return;
		HostId host = hosts_.find(cmd.ip);
		if (host == invalid_host)
			return;
		forward();
		erase_users_of_host(host);
		if (cmd.kind == RingCommandKind::host_remove)
			hosts_.remove(host);
		ring_sync(now, fx);
		return;
	}
	case RingCommandKind::user_move: {
		if (!check_origin(c, cmd.origin, reorig))
			return;
		HostId host = hosts_.find(cmd.ip);
		if (host == invalid_host)
			return;
		move_user_from(reorig ? self_ : c.host,
			       reorig ? std::nullopt : std::optional<RingOrigin>(cmd.origin),
			       cmd.user_hash, host, now, fx);
		return;
	}
	case RingCommandKind::user_weak: {
		DirectorHost *origin = find_director(cmd.origin.ip, cmd.origin.port);
		bool seen = origin != nullptr && !origin->removed && cmd.origin.seq <= origin->last_seq;
		HostId host = hosts_.find(cmd.ip);
		if (!seen && origin != nullptr && !origin->removed)
			origin->last_seq = cmd.origin.seq;
		if (host == invalid_host)
			return;
		// Passes it on until it reaches its origin. With two directors our
		// left and right are the same peer, so it goes back on the other
		// connection for the origin to see it.
		auto pass_on = [&]() {
			RingConn *left = conn(left_), *right = conn(right_);
			if (left && right && left->host == right->host)
				send(c.id == right_ ? *left : *right, cmd, fx);
			else
				update_send(c.host, cmd, fx);
		};
		if (seen && origin == self_) {
			// Our USER-WEAK went all the way round unopposed.
			TagId tag = hosts_.get(host).tag;
			UserIndex u = users_.find(cmd.user_hash, tag);
			if (u != no_user && users_.weak(u)) {
				users_.set_weak(u, false);
				broadcast_user(self_, u, fx);
				state_changed(now, fx);
			}
			return;
		}
		if (seen) {
			pass_on();
			return;
		}
		bool forced;
		UserIndex u;
		if (user_refresh(c, cmd.user_hash, host, now, true, false, now, forced, u, fx) < 0)
			return;
		if (users_.weak(u))
			pass_on();
		else
			broadcast_user(self_, u, fx); // we keep our host: tell the origin
		return;
	}
	case RingCommandKind::user_killed:
		user_killed(cmd.user_hash, now, fx);
		return;
	case RingCommandKind::user_killed_everywhere: {
		DirectorHost *origin = find_director(cmd.origin.ip, cmd.origin.port);
		if (origin != nullptr && !origin->removed && cmd.origin.seq <= origin->last_seq)
			return;
		if (origin != nullptr && !origin->removed)
			origin->last_seq = cmd.origin.seq;
		user_killed_everywhere(c.host, cmd.origin, cmd.user_hash, now, fx);
		return;
	}
	case RingCommandKind::user_kick:
	case RingCommandKind::user_kick_alt:
	case RingCommandKind::user_kick_hash: {
		if (!check_origin(c, cmd.origin, reorig))
			return;
		std::string line;
		if (cmd.kind == RingCommandKind::user_kick) {
			line = "proxy\t*\tKICK\t" + tab_escape(cmd.username);
		} else if (cmd.kind == RingCommandKind::user_kick_alt) {
			line = "proxy\t*\tKICK-ALT\t" + tab_escape(cmd.field) + "\t" +
			       tab_escape(cmd.value);
		} else {
			line = "proxy\t*\tKICK-DIRECTOR-HASH\t" + std::to_string(cmd.user_hash) +
			       "\t" + cmd.ip.to_string();
		}
		kicking_++;
		fx.ipc.push_back({new_job(JobKind::admin_kick, 0), std::move(line)});
		forward(ring_command_min_minor(cmd.kind));
		return;
	}
	case RingCommandKind::director: {
		DirectorHost *h = find_director(cmd.ip, cmd.port);
		if (h == self_)
			return;
		if (h != nullptr) {
			if (h->removed)
				return;
			if (c.handshaked)
				h->last_network_failure = 0;
			reset_director_state(*h);
		} else {
			h = add_director(cmd.ip, cmd.port);
			log_.log(LogLevel::info, "Adding director " + h->name() + " to ring (requested by " +
							 who + ")");
		}
		RingConn *right = conn(right_);
		if (right != nullptr && right->host != nullptr && cmp_to_self(h, right->host) > 0)
			return; // between us and our right: it will connect to us
		if (h->director_sent_at == now)
			return; // already passed on: every side has it
		update_send(c.host, cmd, fx);
		h->director_sent_at = now;
		ring_change_counter_++;
		return;
	}
	case RingCommandKind::director_remove: {
		DirectorHost *h = find_director(cmd.ip, cmd.port);
		if (h == nullptr || h->removed)
			return;
		if (h == self_)
			return; // the others will disconnect us
		h->removed = true;
		h->removed_at = now;
		log_.log(LogLevel::info, "Removing director " + h->name() + " from ring (requested by " +
						 who + ")");
		update_send(c.host, cmd, fx, ring_minor_ring_remove);
		for (auto &[id, oc] : conns_) {
			if (oc.host == h && !oc.closing)
				close_conn(oc, "Director removed from ring", now, fx);
		}
		ring_change_counter_++;
		ring_sync(now, fx);
		return;
	}
	case RingCommandKind::ping: {
		RingCommand p;
		p.kind = RingCommandKind::pong;
		p.timestamp = now;
		p.buffer_bytes = 0;
		send(c, p, fx);
		return;
	}
	case RingCommandKind::pong:
		if (!c.ping_pending)
			return;
		c.ping_pending = false;
		c.last_ping_msecs = uint32_t((now - c.ping_sent_at) * 1000);
		if (c.verifying_left) {
			c.verifying_left = false;
			// Our left answers: everyone else connected to us
			// should talk to our left instead.
			for (auto &[id, oc] : conns_) {
				if (!oc.incoming || oc.closing || oc.id == left_ || oc.host == nullptr ||
				    c.host == nullptr)
					continue;
				if (cmp_to_self(oc.host, c.host) >= 0) {
					RingCommand cc;
					cc.kind = RingCommandKind::connect;
					cc.ip = c.host->ip;
					cc.port = c.host->port;
					send(oc, cc, fx);
					oc.connect_sent = true;
					oc.connect_sent_at = now;
				}
			}
		}
		return;
	case RingCommandKind::sync:
		handle_sync(c, cmd, now, fx);
		return;
	case RingCommandKind::connect: {
		DirectorHost *h = find_director(cmd.ip, cmd.port);
		if (h == nullptr)
			h = add_director(cmd.ip, cmd.port);
		RingConn *right = conn(right_);
		if (h->self) {
			// Stock would connect to its own listener; nobody
			// sane asks for that.
			log_.log(LogLevel::warning,
				 "director(" + who + "): Ignoring CONNECT request to ourselves");
			c.close_at = now + 1;
			return;
		}
		if (h->removed ||
		    (right != nullptr && right->host != nullptr && cmp_to_self(h, right->host) <= 0)) {
			c.close_at = now + 1;
			return;
		}
		h->last_network_failure = 0;
		h->removed = false;
		log_.log(LogLevel::info, "Received CONNECT request from " + who +
						 ", connecting to " + h->name());
		if (right != nullptr) {
			RingConnId old = right_;
			right_ = 0;
			if (old == c.id) {
				// Closing the connection we are reading from would
				// reset it under the peer's pending output.
				c.close_at = now;
				c.verifying_left = false;
			} else {
				close_conn(conns_[old], "Connecting to another director as requested",
					   now, fx);
			}
		}
		connect_to(h, now, fx);
		return;
	}
	case RingCommandKind::quit:
		log_.log(LogLevel::warning,
			 "director(" + who + "): Director " + who + " disconnected us with reason: " +
				 quote_for_log(cmd.reason, 200));
		close_conn(c, "", now, fx);
		return;
	default:
		log_.log(LogLevel::error, "director(" + who + "): Unexpected command " +
						  std::string(ring_command_name(cmd.kind)));
		close_conn(c, "Unexpected command", now, fx, true);
		return;
	}
}

void Director::ring_shutdown(int64_t now, Effects &fx)
{
	// No reconnects from here on; close a snapshot, as closing changes the
	// map.
	shutting_down_ = true;
	std::vector<RingConnId> ids;
	for (auto &[id, c] : conns_)
		ids.push_back(id);
	for (RingConnId id : ids) {
		if (RingConn *c = conn(id))
			close_conn(*c, "Shutting down", now, fx);
	}
}

// ---------------------------------------------------------------- ring timers

void Director::ring_tick(int64_t now, Effects &fx)
{
	if (!ring_mode_)
		return;
	// Connections we closed ourselves are gone for good by now; they were
	// kept until here because they may be closed while iterating.
	for (auto it = conns_.begin(); it != conns_.end();)
		it = it->second.closing ? conns_.erase(it) : std::next(it);
	int64_t idle_limit = std::min<int64_t>(config_.ping_idle_timeout_secs,
					       ring_ping_idle_timeout_secs);
	std::vector<RingConnId> ids;
	for (auto &[id, c] : conns_)
		ids.push_back(id);
	for (RingConnId id : ids) {
		RingConn *c = conn(id);
		if (c == nullptr)
			continue;
		std::string who = c->host ? c->host->name() : c->remote_ip.to_string();
		// A peer that times out is skipped by connect_right() for a while,
		// like one whose connect() failed: a stopped director still has
		// its TCP connections accepted by the kernel.
		auto timed_out = [&](const std::string &reason) {
			if (c->host != nullptr)
				c->host->last_network_failure = now;
			close_conn(*c, reason, now, fx);
		};
		if (!c->tcp_connected) {
			if (now - c->created >= ring_connect_timeout_secs)
				timed_out("connect() timed out");
			continue;
		}
		if (!c->pctx.me_received && now - c->created >= ring_me_timeout_secs) {
			timed_out("Handshaking ME timed out");
			continue;
		}
		if (!c->handshaked && c->incoming && now - c->last_input >= ring_handshake_done_timeout_secs) {
			timed_out("Handshaking DONE timed out");
			continue;
		}
		if ((c->connect_sent && now - c->connect_sent_at >= ring_connect_sent_wait_secs) ||
		    (c->close_at != 0 && now >= c->close_at)) {
			close_conn(*c, "", now, fx);
			continue;
		}
		if (c->ping_pending) {
			// Idle time counts from the PING, as stock's idle timeout.
			if (now - std::max(c->last_input, c->ping_sent_at) >= idle_limit) {
				log_.log(LogLevel::error, "director(" + who + "): Ping timed out in " +
								  std::to_string(now - c->ping_sent_at) +
								  " secs, disconnecting");
				timed_out("Ping timeout");
				continue;
			}
			if (now - c->ping_sent_at >= config_.ping_max_timeout_secs) {
				log_.log(LogLevel::error, "director(" + who + "): PONG reply not received in " +
								  std::to_string(now - c->ping_sent_at) +
								  " secs, although other input keeps coming");
				timed_out("Pong timeout");
				continue;
			}
		} else {
			int64_t interval = c->handshaked && !c->synced ? 1 : ring_ping_interval_secs;
			if (now - c->last_input >= interval)
				ping(*c, now, fx);
		}
	}
	if (right_ == 0 && reconnect_at_ != 0 && now >= reconnect_at_)
		connect_right(now, fx);
	if (!ring_synced_ && now >= sync_resend_at_ && right_ != 0 && left_ != 0) {
		log_.log(LogLevel::error, "Ring SYNC seq=" + std::to_string(sync_seq_) +
						  " appears to have got lost, resending");
		sync_resend_at_ = now + ring_sync_resend_secs;
		sync_send(*self_, sync_seq_, ring_version_minor, uint32_t(now), hosts_.hosts_hash(),
			  now, fx);
	}
	if (preferred_reconnect_at_ != 0 && now >= preferred_reconnect_at_) {
		preferred_reconnect_at_ = 0;
		RingConn *right = conn(right_);
		DirectorHost *pref = preferred_right();
		if (pref != nullptr && (right == nullptr || right->host != pref))
			connect_to(pref, now, fx);
	}
	for (auto it = sync_waiters_.begin(); it != sync_waiters_.end();) {
		if (it->deadline <= now) {
			fx.admin.push_back({it->job, "Ring sync timed out"});
			it = sync_waiters_.erase(it);
		} else {
			++it;
		}
	}
	for (auto &d : dirs_) {
		if (d->removed && d->removed_at + removed_director_purge_secs <= now) {
			purge_removed_directors(now);
			break;
		}
	}
}

// ---------------------------------------------------------------- admin

std::vector<DirectorListEntry> Director::director_list(int64_t now) const
{
	std::vector<DirectorListEntry> out;
	auto conn_entry = [&](const RingConn &c) {
		DirectorListEntry e;
		if (c.host != nullptr) {
			e.ip = c.host->ip;
			e.port = c.host->port;
			e.type = c.id == left_ ? "left" : c.id == right_ ? "right" : c.incoming ? "in" : "out";
			e.last_failed = std::max(c.host->last_network_failure, c.host->last_protocol_failure);
		}
		e.has_connection = true;
		e.status = director_connection_status_text(c.handshaked, c.incoming, c.synced,
							   c.incoming ? c.users_received : c.users_sent);
		e.last_ping_msecs = c.last_ping_msecs;
		e.last_input = c.last_input;
		e.last_output = c.last_output;
		e.conn = c.id;
		return e;
	};
	for (const auto &[id, c] : conns_) {
		if (!c.closing && c.host == nullptr)
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
	for (const auto &d : dirs_) {
		bool any = false;
		for (const auto &[id, c] : conns_) {
			if (!c.closing && c.host == d.get()) {
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
		e.last_failed = std::max(d->last_network_failure, d->last_protocol_failure);
		if (d->self) {
			e.status = director_ring_status_text(ring_handshaked_, ring_synced_,
							     now - ring_last_sync_time_);
			e.last_ping_msecs = last_sync_msecs_;
		}
		out.push_back(e);
	}
	return out;
}

AdminReply Director::director_add(const IpAddr &ip, std::optional<uint16_t> port, int64_t now,
				  Effects &fx)
{
	uint16_t p = port.value_or(ring_listen_port_);
	if (!ring_mode_) {
		// A standalone director keeps a list but has no ring to tell.
		ring_mode_ = true;
		self_ = add_director(IpAddr::v4(127, 0, 0, 1), 0);
		self_->self = true;
	}
	if (find_director(ip, p) == nullptr) {
		DirectorHost *h = add_director(ip, p);
		RingCommand dc;
		dc.kind = RingCommandKind::director;
		dc.ip = ip;
		dc.port = p;
		update_send(self_, dc, fx);
		h->director_sent_at = now;
		ring_change_counter_++;
		// Like stock, we wait for the new director to connect to us.
	}
	return AdminReply::now("OK");
}

AdminReply Director::director_remove(JobId job, const IpAddr &ip, std::optional<uint16_t> port,
				     int64_t now, Effects &fx)
{
	DirectorHost *h = nullptr;
	for (const auto &d : dirs_) {
		if (d->ip == ip && (!port || d->port == *port)) {
			h = d.get();
			break;
		}
	}
	if (h == nullptr)
		return AdminReply::now("NOTFOUND");
	if (h->self || h->removed)
		return reply_after_sync(job, now);
	h->removed = true;
	h->removed_at = now;
	RingCommand dr;
	dr.kind = RingCommandKind::director_remove;
	dr.ip = h->ip;
	dr.port = h->port;
	update_send(self_, dr, fx, ring_minor_ring_remove);
	for (auto &[id, c] : conns_) {
		if (c.host == h && !c.closing)
			close_conn(c, "Director removed from ring", now, fx);
	}
	ring_change_counter_++;
	ring_sync(now, fx);
	return reply_after_sync(job, now);
}

} // namespace director::core
