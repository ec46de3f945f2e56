// Ring security (see ring.h): which connection may change what, and the
// authenticated ring (ring-auth.h) wired into the handshake. No I/O here.
//
// Hardening (always on, stock-compatible): a connection changes nothing until
// its handshake finished: ring changes, its host list, its users and its
// DIRECTOR lines are held and applied at DONE, and ME's consequences for our
// left wait as well. ME must name the address the connection comes from and a
// listed director. After the handshake only our left and right change ring
// state, and the two the protocol needs: a director that connected to us and
// waits to become our left, and (for CONNECT only) the director we dialled; a
// director we told to connect elsewhere does not. CONNECT and handshake
// DIRECTOR lines naming a director we do not list are ignored and logged; a
// director added at runtime (`doveadm director ring add` on any director, ours
// or stock) reaches us as a DIRECTOR broadcast from our left or right.
#include <algorithm>

#include "ring.h"

#include "tab-escape.h"

namespace director::core {

std::string Ring::unlisted_reason(const IpAddr &ip, uint16_t port) const
{
	const DirectorHost *h = dirs_.find(ip, port);
	if (h != nullptr && h->removed)
		return "removed from the ring";
	return "not listed in director_servers (nor added with doveadm director ring add)";
}

void Ring::start_auth(RingLink &c, std::optional<RingEndpoint> peer)
{
	if (ring_secret_.empty() || ring_random_ == nullptr)
		return;
	RingAuthNonce nonce;
	ring_random_->fill(nonce.data(), nonce.size());
	const DirectorHost *self = dirs_.self();
	c.auth.emplace(ring_secret_,
		       c.incoming() ? RingAuthRole::acceptor : RingAuthRole::connector,
		       RingEndpoint{self->ip, self->port}, peer, nonce);
}

void Ring::send_director_list(RingLink &c, Effects &fx)
{
	c.directors_pending = false;
	for (const auto &d : dirs_.all()) {
		if (d->removed)
			continue;
		RingCommand dc;
		dc.kind = RingCommandKind::director;
		dc.ip = d->ip;
		dc.port = d->port;
		send(c, dc, fx);
	}
}

// A line from a peer that has not proved the secret yet. false: consumed (or
// the connection closed); true: also handle it as usual.
bool Ring::auth_line(RingLink &c, std::string_view line, Now now, Effects &fx)
{
	std::string who = c.who();
	std::string_view name = line.substr(0, line.find('\t'));
	RingAuth &auth = *c.auth;
	RingAuth::Step step;
	bool also_handle = false;
	if (is_ring_auth_line(line)) {
		step = auth.peer_proof(line);
	} else if (name == "VERSION") {
		step = auth.peer_version(line);
		also_handle = true;
	} else if (name == "ME") {
		auto me = parse_ring_line(line, c.pctx);
		if (!me.ok() || me->kind != RingCommandKind::me)
			return true; // the usual path reports it
		step = auth.peer_me(RingEndpoint{me->ip, me->port});
		also_handle = true;
	} else if (ring_auth_allowed_before_proof(name)) {
		return true;
	} else {
		step.error = "sent " + quote_for_log(name, 40) + " before proving the ring secret";
	}
	if (!step.error.empty()) {
		log_.peer(LogLevel::error, who, "Ring authentication failed: " + step.error + " (" +
			std::string(auth.stage_name()) + ")");
		close_conn(c, "Ring authentication failed: " + step.error, now, fx, true);
		return false;
	}
	if (!step.send.empty())
		fx.ring_sends.push_back({c.id(), std::move(step.send) + "\n"});
	if (step.proved) {
		log_.peer(LogLevel::debug, who, "Ring authentication succeeded");
		if (c.incoming() && c.pctx.version_received) {
			send_user_digests(c, fx);
		} else if (!c.incoming()) {
			if (c.directors_pending)
				send_director_list(c, fx);
			if (c.pctx.version_received)
				send_handshake_start(c, now, fx);
		}
	}
	return also_handle;
}

// Before DONE: hold what would change state. true when the command was
// consumed (held, ignored, or the connection closed).
bool Ring::defer_before_handshake(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	switch (cmd.kind) {
	case RingCommandKind::version:
	case RingCommandKind::me:
	case RingCommandKind::options:
	case RingCommandKind::done:
	case RingCommandKind::ping:
	case RingCommandKind::pong:
	case RingCommandKind::quit:
		return false;
	case RingCommandKind::handshake_user:
		defer_user(c, cmd.user_hash, cmd.ip, uint32_t(cmd.timestamp.value_or(now.wall)), cmd.weak,
			   now, fx);
		return true;
	case RingCommandKind::host_hand_start:
		c.pctx.in_host_list = true; // the parser must know at once
		// After a restore, a left whose ring is not running either (the
		// whole ring restarted) releases our held user streams now. Waiting
		// for its DONE would wait around the ring: its DONE follows its own
		// held stream. A left whose ring runs still waits for DONE, where its
		// users replace ours before anything of ours goes out.
		if (c.incoming() && restart_signal_pending_ && !cmd.ring_handshaked &&
		    !ring_handshaked_ && (!c.auth || c.auth->proved())) {
			restart_signal_pending_ = false;
			push_restored_users_ = true;
			if (hold_users_until_ != 0)
				release_user_streams(now, fx);
		}
		break;
	case RingCommandKind::host_hand_end:
		c.pctx.in_host_list = false;
		break;
	case RingCommandKind::director: {
		const DirectorHost *h = dirs_.find(cmd.ip, cmd.port);
		if (h == nullptr || h->removed) {
			log_.peer(LogLevel::warning, c.who(), "Ignoring DIRECTOR " +
				cmd.ip.to_string() + ":" + std::to_string(cmd.port) + ": " +
				unlisted_reason(cmd.ip, cmd.port));
			return true;
		}
		break;
	}
	default:
		break;
	}
	if (c.deferred.size() >= ring_max_deferred_commands) {
		std::string msg = "Too many ring changes before the handshake finished";
		refuse_peer(c, msg, now, fx);
		return true;
	}
	c.deferred.push_back({cmd, c.deferred_users.size()});
	return true;
}

void Ring::defer_user(RingLink &c, uint32_t hash, const IpAddr &ip, uint32_t timestamp, bool weak,
		      Now now, Effects &fx)
{
	if (c.deferred_users.size() >= ring_max_deferred_users) {
		std::string msg = "Too many users in the handshake";
		refuse_peer(c, msg, now, fx);
		return;
	}
	// Few distinct hosts: a linear search, starting with the last one used.
	uint32_t idx = 0;
	if (!c.deferred_users.empty() && c.deferred_user_ips[c.deferred_users.back().ip_index] == ip) {
		idx = c.deferred_users.back().ip_index;
	} else {
		while (idx < c.deferred_user_ips.size() && c.deferred_user_ips[idx] != ip)
			idx++;
		if (idx == c.deferred_user_ips.size()) {
			if (idx >= 65535) { // the host id space
				std::string msg = "Too many distinct hosts in handshake users";
				refuse_peer(c, msg, now, fx);
				return;
			}
			c.deferred_user_ips.push_back(ip);
		}
	}
	c.deferred_users.push_back({hash, timestamp, idx, weak});
}

// At DONE: the held host list, DIRECTOR lines and users, in arrival order.
// Other held commands stay for replay_deferred_commands().
void Ring::apply_deferred_handshake(RingLink &c, Now now, Effects &fx)
{
	std::vector<RingLink::DeferredCommand> rest;
	size_t next_user = 0;
	// The users go in as one bulk load: the index is sized once, each user's
	// host is looked up once per distinct address, and the index slot of the
	// user a few places ahead is prefetched, so the inserts overlap their
	// cache misses. The order (and so every outcome) is the arrival order.
	constexpr size_t prefetch_ahead = 8;
	constexpr HostId unresolved = invalid_host - 1;
	std::vector<HostId> ip_hosts(c.deferred_user_ips.size(), unresolved);
	auto host_of = [&](const RingLink::DeferredUser &u) {
		HostId &h = ip_hosts[u.ip_index];
		if (h == unresolved)
			h = hosts_.find(c.deferred_user_ips[u.ip_index]);
		return h;
	};
	auto users_until = [&](size_t end) {
		if (next_user >= end)
			return;
		// Held host commands ran since the last run: look the addresses up again.
		std::fill(ip_hosts.begin(), ip_hosts.end(), unresolved);
		users_.reserve(end - next_user);
		for (; next_user < end && !c.closing(); next_user++) {
			if (next_user + prefetch_ahead < end) {
				const RingLink::DeferredUser &ahead =
					c.deferred_users[next_user + prefetch_ahead];
				HostId ah = host_of(ahead);
				if (ah != invalid_host)
					users_.prefetch(ahead.user_hash, hosts_.get(ah).tag);
			}
			const RingLink::DeferredUser &u = c.deferred_users[next_user];
			HostId host = host_of(u);
			if (host == invalid_host) {
				const IpAddr &ip = c.deferred_user_ips[u.ip_index];
				c.users_received++;
				std::string msg = "USER used unknown host " + ip.to_string() +
						  " in handshake";
				refuse_peer(c, msg, now, fx);
				return;
			}
			handler_.ring_handshake_user(c, u.user_hash, host, u.timestamp, u.weak, now, fx);
		}
	};
	c.applying_handshake = true;
	for (RingLink::DeferredCommand &d : c.deferred) {
		users_until(d.users_before);
		if (c.closing())
			break;
		switch (d.cmd.kind) {
		case RingCommandKind::host_hand_start:
		case RingCommandKind::handshake_host:
		case RingCommandKind::host_hand_end:
			handle_handshake_command(c, d.cmd, now, fx);
			break;
		case RingCommandKind::director:
			handle_ring_command(c, d.cmd, now, fx);
			break;
		default:
			rest.push_back(std::move(d));
			break;
		}
	}
	users_until(c.deferred_users.size());
	if (!c.closing())
		log_delta_join(c);
	c.applying_handshake = false;
	c.pctx.in_host_list = false;
	c.deferred = std::move(rest);
	std::vector<RingLink::DeferredUser>().swap(c.deferred_users);
	std::vector<IpAddr>().swap(c.deferred_user_ips);
}

void Ring::replay_deferred_commands(RingLink &c, Now now, Effects &fx)
{
	std::vector<RingLink::DeferredCommand> held;
	held.swap(c.deferred);
	for (const RingLink::DeferredCommand &d : held) {
		if (c.closing())
			break;
		handle_ring_command(c, d.cmd, now, fx);
	}
}

bool Ring::from_ring_neighbour(const RingLink &c, const RingCommand &cmd) const
{
	switch (cmd.kind) {
	case RingCommandKind::ping:
	case RingCommandKind::pong:
	case RingCommandKind::quit:
		return true;
	default:
		break;
	}
	if (c.applying_handshake)
		return true;
	if (!c.handshaked())
		return false;
	if (c.id() == left_ || c.id() == right_)
		return true;
	// A director that connected to us and waits to become our left (its
	// SYNCs must pass, or the ring closes only after resends); not one we
	// told to connect elsewhere.
	if (c.incoming() && !c.connect_sent)
		return true;
	// The director we dialled may redirect us (stock's CONNECT reply).
	return cmd.kind == RingCommandKind::connect && !c.incoming();
}

} // namespace director::core
