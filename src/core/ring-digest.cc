// User-table digests in the ring handshake (user-digest.h), only between our
// directors: the acceptor sends its bucket digests when the connector's VERSION
// offered them; the connector holds its user stream until they arrived, then
// names the buckets that differ and streams only their users. An acceptor that
// joins the connector's running ring keeps its users of the equal buckets. No
// I/O here.
#include "ring.h"

#include <algorithm>

namespace director::core {

// Acceptor: once the connector's VERSION offered digests (and it proved the
// ring secret, if we have one).
void Ring::send_user_digests(RingLink &c, Effects &fx)
{
	if (c.digests_sent || !c.digest_peer || !c.incoming() || c.closing())
		return;
	c.digests_sent = true;
	unsigned bits = users_.size() == 0 ? 0 : user_digest_bits_for(users_.size());
	std::vector<uint64_t> digests;
	if (bits != 0)
		digests = user_table_digests(users_, hosts_, bits);
	std::string out;
	for (const std::string &l :
	     format_user_digests(bits, users_.size(), digests, ring_handshaked_)) {
		out += l;
		out += '\n';
	}
	fx.ring_sends.push_back({c.id(), std::move(out)});
}

void Ring::digest_line(RingLink &c, std::string_view line, Now now, Effects &fx)
{
	if (c.handshaked()) {
		std::string msg = "USER-DIGEST after the handshake";
		log_.peer(LogLevel::error, c.who(), msg);
		close_conn(c, msg, now, fx, true);
		return;
	}
	auto r = c.digest_in.line(line);
	if (!r.ok()) {
		log_.peer(LogLevel::error, c.who(), r.error());
		close_conn(c, r.error(), now, fx, true);
		return;
	}
	if (!*r)
		return;
	UserDigestReader::Kind kind = c.digest_in.kind();
	if (c.incoming() != (kind == UserDigestReader::Kind::full ||
			     kind == UserDigestReader::Kind::delta)) {
		std::string msg = "USER-DIGEST block from the wrong side";
		log_.peer(LogLevel::error, c.who(), msg);
		close_conn(c, msg, now, fx, true);
		return;
	}
	if (c.incoming()) {
		if (kind == UserDigestReader::Kind::delta)
			c.delta_buckets = c.digest_in.buckets().count();
		return; // used when its HOST-HAND-START is applied (at DONE)
	}
	if (c.digest_in.peer_ring_running() && restart_signal_pending_) {
		// We restored a table, and our right says the ring kept running:
		// its users are newer than ours (our left replaces ours when it
		// connects). Send it none of ours, and push none later.
		log_.peer(LogLevel::info, c.who(),
			"The ring kept running while we were away: sending it none of our "
			"restored users");
		restart_signal_pending_ = false;
		push_restored_users_ = false;
		restored_table_stale_ = true;
		c.send_no_users = true;
		if (c.stream_held) {
			c.stream_held = false;
			held_streams_.erase(std::remove(held_streams_.begin(), held_streams_.end(),
							c.id()),
					    held_streams_.end());
		}
	}
	if (c.awaiting_digests) {
		c.awaiting_digests = false;
		start_handshake_users(c, now, fx);
	}
}

// Connector: starts the handshake user stream unless a state restore holds it or
// the acceptor's digests are still on their way; with digests, names the
// buckets that differ and sends only their users.
void Ring::start_handshake_users(RingLink &c, Now now, Effects &fx)
{
	if (c.closing())
		return;
	if (c.digest_peer && !c.digest_in.done()) {
		c.awaiting_digests = true;
		return;
	}
	if (c.stream_held)
		return;
	if (c.digest_peer) {
		const UserDigestReader &in = c.digest_in;
		std::vector<std::string> lines;
		UserDigestBuckets diff;
		if (c.send_no_users) {
			diff = UserDigestBuckets(in.bits() != 0 ? in.bits() : user_digest_min_bits);
			lines = format_user_digest_delta(diff);
		} else if (in.bits() != 0 && users_.size() != 0) {
			diff = user_digest_diff(user_table_digests(users_, hosts_, in.bits()),
						in.digests(), in.bits());
			lines = format_user_digest_delta(diff);
		} else {
			lines.push_back(format_user_digest_full());
		}
		std::string out;
		for (const std::string &l : lines) {
			out += l;
			out += '\n';
		}
		fx.ring_sends.push_back({c.id(), std::move(out)});
		if (!diff.empty()) {
			c.delta_buckets = diff.count();
			if (!c.send_no_users)
				log_.peer(LogLevel::info, c.who(), "Sending the users of " +
					std::to_string(diff.count()) + " of " +
					std::to_string(diff.buckets()) +
					" user buckets that differ (the peer has " +
					std::to_string(in.peer_users()) + " users, we have " +
					std::to_string(users_.size()) + ")");
			c.start_user_stream(users_, std::move(diff));
			continue_user_stream(c, now, fx);
			return;
		}
	}
	c.start_user_stream(users_);
	continue_user_stream(c, now, fx);
}

// Acceptor, at the connector's HOST-HAND-START (applied at DONE) when we join
// its running ring after it sent a delta: its host list replaces ours in place
// and our users of the equal buckets stay, instead of dropping the whole table.
bool Ring::delta_join(RingLink &c, Now now)
{
	if (!c.incoming() || !c.applying_handshake ||
	    c.digest_in.kind() != UserDigestReader::Kind::delta)
		return false;
	std::vector<const RingCommand *> hosts;
	for (const RingLink::DeferredCommand &d : c.deferred) {
		if (d.cmd.kind == RingCommandKind::handshake_host)
			hosts.push_back(&d.cmd);
	}
	c.delta_kept = handler_.ring_joining_delta(hosts, c.digest_in.buckets(), now);
	c.delta_joined = true;
	return true;
}

void Ring::log_delta_join(RingLink &c)
{
	if (!c.delta_joined)
		return;
	c.delta_joined = false;
	log_.peer(LogLevel::info, c.who(), "Delta join: kept " + std::to_string(c.delta_kept) +
		" users of the buckets that matched, " + std::to_string(c.delta_buckets) +
		" buckets replaced by " + std::to_string(c.users_received) + " users received");
}

} // namespace director::core
