// User-table digests in the ring handshake (user-digest.h), only between our
// directors: the acceptor sends its bucket digests when the connector's VERSION
// offered them; the connector holds its user stream until they arrived, then
// names the buckets that differ and streams only their users. An acceptor that
// joins the connector's running ring keeps its users of the equal buckets. No
// I/O here.
#include "ring.h"

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
	for (const std::string &l : format_user_digests(bits, users_.size(), digests)) {
		out += l;
		out += '\n';
	}
	fx.ring_sends.push_back({c.id(), std::move(out)});
}

void Ring::digest_line(RingLink &c, std::string_view line, int64_t now, Effects &fx)
{
	if (c.handshaked()) {
		std::string msg = "USER-DIGEST after the handshake";
		log_.log(LogLevel::error, "director(" + c.who() + "): " + msg);
		close_conn(c, msg, now, fx, true);
		return;
	}
	auto r = c.digest_in.line(line);
	if (!r.ok()) {
		log_.log(LogLevel::error, "director(" + c.who() + "): " + r.error());
		close_conn(c, r.error(), now, fx, true);
		return;
	}
	if (!*r)
		return;
	UserDigestReader::Kind kind = c.digest_in.kind();
	if (c.incoming() != (kind == UserDigestReader::Kind::full ||
			     kind == UserDigestReader::Kind::delta)) {
		std::string msg = "USER-DIGEST block from the wrong side";
		log_.log(LogLevel::error, "director(" + c.who() + "): " + msg);
		close_conn(c, msg, now, fx, true);
		return;
	}
	if (c.incoming()) {
		if (kind == UserDigestReader::Kind::delta)
			c.delta_buckets = c.digest_in.buckets().count();
		return; // used when its HOST-HAND-START is applied (at DONE)
	}
	if (c.awaiting_digests) {
		c.awaiting_digests = false;
		start_handshake_users(c, now, fx);
	}
}

// Connector: starts the handshake user stream unless a state restore holds it or
// the acceptor's digests are still on their way; with digests, names the
// buckets that differ and sends only their users.
void Ring::start_handshake_users(RingLink &c, int64_t now, Effects &fx)
{
	if (c.stream_held || c.closing())
		return;
	if (c.digest_peer && !c.digest_in.done()) {
		c.awaiting_digests = true;
		return;
	}
	if (c.digest_peer) {
		const UserDigestReader &in = c.digest_in;
		std::vector<std::string> lines;
		UserDigestBuckets diff;
		if (in.bits() != 0 && users_.size() != 0) {
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
			log_.log(LogLevel::info,
				 "director(" + c.who() + "): Sending the users of " +
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

// Acceptor, at the connector's HOST-HAND-START when we join its running ring
// with a delta: its host list replaces ours, but our users of the buckets it does
// not send are the same as its users there: keep them.
void Ring::keep_equal_buckets(RingLink &c)
{
	if (c.digest_in.kind() != UserDigestReader::Kind::delta)
		return;
	const UserDigestBuckets &replace = c.digest_in.buckets();
	c.kept_users.reserve(users_.size());
	for (UserIndex u = users_.oldest(); u != no_user; u = users_.newer(u)) {
		uint32_t hash = users_.user_hash(u);
		if (replace.contains_user(hash))
			continue;
		const IpAddr &ip = hosts_.get(users_.host(u)).ip;
		uint32_t idx = 0;
		if (!c.kept_users.empty() && c.kept_user_ips[c.kept_users.back().ip_index] == ip) {
			idx = c.kept_users.back().ip_index;
		} else {
			while (idx < c.kept_user_ips.size() && c.kept_user_ips[idx] != ip)
				idx++;
			if (idx == c.kept_user_ips.size())
				c.kept_user_ips.push_back(ip);
		}
		c.kept_users.push_back({hash, users_.timestamp(u), idx, users_.weak(u)});
	}
}

// After the connector's users: the kept ones go back in (their buckets were not
// sent, so none of them is in the table twice). Not marked for the right: it
// has them already, as they are the ring's.
void Ring::restore_kept_users(RingLink &c, int64_t now)
{
	if (c.kept_users.empty() && c.kept_user_ips.empty())
		return;
	size_t kept = 0, dropped = 0;
	std::vector<HostId> ids(c.kept_user_ips.size(), invalid_host);
	for (size_t i = 0; i < ids.size(); i++)
		ids[i] = hosts_.find(c.kept_user_ips[i]);
	for (const RingLink::KeptUser &k : c.kept_users) {
		HostId host = ids[k.ip_index];
		if (host == invalid_host ||
		    int64_t(k.timestamp) + int64_t(config_.user_expire_secs) <= now) {
			dropped++;
			continue;
		}
		TagId tag = hosts_.get(host).tag;
		if (users_.find(k.user_hash, tag) != no_user)
			continue;
		UserIndex u = users_.insert(k.user_hash, tag, host, k.timestamp);
		if (u == no_user) {
			dropped++;
			continue;
		}
		users_.set_weak(u, k.weak);
		kept++;
	}
	c.delta_kept = kept;
	c.users_unsorted = true;
	log_.log(LogLevel::info, "director(" + c.who() + "): Delta join: kept " +
					 std::to_string(kept) + " users of the buckets that matched, " +
					 std::to_string(c.delta_buckets) + " buckets replaced by " +
					 std::to_string(c.users_received) + " users received" +
					 (dropped ? ", " + std::to_string(dropped) + " dropped" : ""));
	std::vector<RingLink::KeptUser>().swap(c.kept_users);
	std::vector<IpAddr>().swap(c.kept_user_ips);
}

} // namespace director::core
