// User-table digests in the ring handshake (user-digest.h), only between our
// directors: the acceptor sends its bucket digests when the connector's VERSION
// offered them; the connector holds its user stream until they arrived, then
// names the buckets that differ and streams only their users. An acceptor that
// joins the connector's running ring keeps its users of the equal buckets. No
// I/O here.
#include "ring.h"

#include <algorithm>

namespace director::core {

namespace {

// One send of `lines` on `c`, each ended by LF.
void send_lines(const RingLink &c, const std::vector<std::string> &lines, Effects &fx)
{
	std::string out;
	for (const std::string &l : lines) {
		out += l;
		out += '\n';
	}
	fx.ring_sends.push_back({c.id(), std::move(out)});
}

} // namespace

// Acceptor: once the connector's VERSION offered digests (and it proved the
// ring secret, if we have one).
void Ring::send_user_digests(RingLink &c, Effects &fx)
{
	if (c.digests_sent || !c.digest_peer || !c.incoming() || c.closing())
		return;
	c.digests_sent = true;
	// A restored connector meeting a running ring sends us no users at all.
	bool wanted = users_.size() != 0 && !(c.digest_peer_restored && ring_handshaked_);
	unsigned bits = wanted ? user_digest_bits_for(users_.size()) : 0;
	std::vector<uint64_t> digests;
	if (bits != 0)
		digests = user_table_digests(users_, hosts_, bits);
	c.digest_bits_sent = bits;
	send_lines(c, format_user_digests(bits, users_.size(), digests, ring_handshaked_), fx);
}

void Ring::digest_line(RingLink &c, std::string_view line, Now now, Effects &fx)
{
	if (c.handshaked() && c.digest_check_peer) {
		digest_check_line(c, line, now, fx);
		return;
	}
	if (c.handshaked()) {
		std::string msg = "USER-DIGEST after the handshake";
		refuse_peer(c, msg, now, fx);
		return;
	}
	auto r = c.digest_in.line(line);
	if (!r.ok()) {
		refuse_peer(c, r.error(), now, fx);
		return;
	}
	if (!*r)
		return;
	using Kind = UserDigestReader::Kind;
	Kind kind = c.digest_in.kind();
	std::string wrong;
	if (c.incoming() != (kind == Kind::full || kind == Kind::delta || kind == Kind::refine))
		wrong = "USER-DIGEST block from the wrong side";
	else if (kind == Kind::refine && (c.sub_sent || !c.digest_peer_refine ||
					  c.digest_in.bits() != c.digest_bits_sent))
		wrong = "USER-DIGEST REFINE of digests we did not send";
	else if (!c.incoming() && (kind == Kind::sub) == c.refined.empty())
		wrong = kind == Kind::sub ? "USER-DIGEST SUB that we did not ask for"
					  : "USER-DIGEST block where a SUB was due";
	if (!wrong.empty()) {
		refuse_peer(c, wrong, now, fx);
		return;
	}
	if (c.incoming()) {
		if (kind == Kind::refine)
			send_sub_digests(c, fx);
		else if (kind == Kind::delta)
			c.delta_buckets = c.digest_in.buckets().count();
		return; // a DELTA is used when its HOST-HAND-START is applied (at DONE)
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

// Acceptor: the sub-bucket digests of the buckets the connector's REFINE named.
void Ring::send_sub_digests(RingLink &c, Effects &fx)
{
	const UserDigestBuckets &named = c.digest_in.buckets();
	send_lines(c,
		   format_user_digest_sub(named, users_.size(),
					  user_table_sub_digests(users_, hosts_, named)),
		   fx);
	c.sub_sent = true;
	c.digest_in = UserDigestReader(); // the DELTA comes next
}

// Connector, once the SUB arrived: the sub-buckets that differ. The SUB must
// carry exactly the sub-buckets of the buckets our REFINE named.
std::optional<UserDigestBuckets> Ring::refined_diff(RingLink &c)
{
	const UserDigestReader &in = c.digest_in;
	const UserDigestBuckets &got = in.buckets();
	if (got.bits() != c.refined.bits() + user_digest_refine_bits)
		return std::nullopt;
	// Both packed in sub-bucket order.
	std::vector<uint64_t> own = user_table_sub_digests(users_, hosts_, c.refined);
	const std::vector<uint64_t> &theirs = in.digests();
	if (own.size() != theirs.size())
		return std::nullopt;
	UserDigestBuckets diff(got.bits());
	size_t next = 0;
	for (size_t f = 0; f < got.buckets(); f++) {
		auto sub = uint32_t(f);
		bool named = c.refined.contains(sub >> user_digest_refine_bits);
		if (got.contains(sub) != named)
			return std::nullopt;
		if (!named)
			continue;
		if (own[next] != theirs[next])
			diff.add(sub);
		next++;
	}
	return diff;
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
		size_t refined = 0; // buckets of the first round that differed
		if (c.send_no_users) {
			diff = UserDigestBuckets(in.bits() != 0 ? in.bits() : user_digest_min_bits);
			lines = format_user_digest_delta(diff);
		} else if (in.kind() == UserDigestReader::Kind::sub) {
			auto d = refined_diff(c);
			if (!d) {
				std::string msg = "USER-DIGEST SUB does not match our REFINE";
				refuse_peer(c, msg, now, fx);
				return;
			}
			diff = std::move(*d);
			refined = c.refined.count();
			c.refined = UserDigestBuckets();
			lines = format_user_digest_delta(diff, true);
		} else if (in.bits() != 0 && users_.size() != 0) {
			bool refine = c.digest_peer_refine;
			diff = user_digest_diff(user_table_digests(users_, hosts_, in.bits()),
						in.digests(), in.bits());
			size_t n = diff.count();
			if (refine && n != 0 && n * user_digest_refine_max_share <= diff.buckets()) {
				// Ask for the sub-buckets' digests; the DELTA follows the SUB.
				send_lines(c, format_user_digest_refine(diff), fx);
				c.refined = std::move(diff);
				c.digest_in = UserDigestReader();
				c.awaiting_digests = true;
				return;
			}
			lines = format_user_digest_delta(diff, refine);
		} else {
			lines.push_back(format_user_digest_full());
		}
		send_lines(c, lines, fx);
		if (!diff.empty()) {
			c.delta_buckets = diff.count();
			if (!c.send_no_users)
				log_.peer(LogLevel::info, c.who(), "Sending the users of " +
					std::to_string(diff.count()) + " of " +
					std::to_string(diff.buckets()) +
					" user buckets that differ (" +
					(refined != 0 ? "refined from " + std::to_string(refined) +
						" of " + std::to_string(diff.buckets() >>
							user_digest_refine_bits) + "; " : "") +
					"the peer has " +
					std::to_string(in.peer_users()) + " users, we have " +
					std::to_string(users_.size()) + ")");
			c.start_user_stream(users_, diff);
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

// ------------------------------------------------ checks after the handshake

void Ring::schedule_digest_check(int64_t at)
{
	if (next_digest_check_ == 0 || at < next_digest_check_)
		next_digest_check_ = at;
}

// Right: asks our left to compare its table with ours (user-digest.h).
void Ring::check_left_digests(Now now, Effects &fx)
{
	RingLink *left = conn(left_);
	if (left != nullptr && left->check &&
	    now.mono - left->check->sent_at >= ring_digest_check_timeout_secs) {
		log_.peer(LogLevel::warning, left->who(),
			"No answer to our user digest check in " +
			std::to_string(now.mono - left->check->sent_at) + " secs");
		end_digest_check(*left, Effects::DigestCheckResult::timeout, fx);
		schedule_digest_check(now.mono + ring_digest_check_interval_secs);
	}
	if (next_digest_check_ == 0 || now.mono < next_digest_check_)
		return;
	if (left == nullptr || !left->handshaked() || !left->digest_check_peer) {
		next_digest_check_ = 0; // the next left's handshake schedules one
		return;
	}
	if (left->check || !ring_synced_ || !ring_handshaked_ ||
	    now.mono - host_erasure_seen_at_ < ring_digest_check_quiet_secs)
		return; // due: the first tick that allows it
	next_digest_check_ = 0;
	unsigned bits = std::min(user_digest_check_max_bits, user_digest_bits_for(users_.size()));
	RingLink::DigestCheck check;
	check.sent_at = now.mono;
	check.host_erasures = users_.host_erasures();
	check.buckets = size_t{1} << bits;
	left->check = check;
	send_lines(*left,
		   format_user_digest_check(bits, users_.size(),
					    user_table_digests(users_, hosts_, bits)),
		   fx);
}

void Ring::digest_check_line(RingLink &c, std::string_view line, Now now, Effects &fx)
{
	if (!is_user_digest_check_line(line)) {
		digest_check_answer(c, line, now, fx);
		return;
	}
	// Left: our right's CHECK block.
	if (c.check_in.done())
		c.check_in = UserDigestReader();
	auto r = c.check_in.line(line);
	if (r.ok() && *r && c.check_in.kind() != UserDigestReader::Kind::check)
		r = make_error("USER-DIGEST block after the handshake is not a CHECK");
	if (!r.ok()) {
		refuse_peer(c, r.error(), now, fx);
		return;
	}
	if (*r)
		answer_digest_check(c, now, fx);
}

// Left: compares our table with the digests our right sent and sends it the users
// of the buckets that differ.
void Ring::answer_digest_check(RingLink &c, Now now, Effects &fx)
{
	const UserDigestReader &in = c.check_in;
	if (c.id() != right_ || c.sending_users()) {
		// Not our right (any more), or a user stream runs: it asks again.
		fx.ring_sends.push_back({c.id(), format_user_digest_busy() + "\n"});
		return;
	}
	UserDigestBuckets diff =
		user_digest_diff(user_table_digests(users_, hosts_, in.bits()), in.digests(), in.bits());
	size_t differing = diff.count();
	fx.ring_sends.push_back(
		{c.id(), format_user_digest_repair(differing, diff.buckets()) + "\n"});
	if (differing == 0) {
		fx.ring_sends.push_back({c.id(), format_user_digest_repaired(0) + "\n"});
		return;
	}
	log_.peer(LogLevel::debug, c.who(), "User digest check: " + std::to_string(differing) +
		" of " + std::to_string(diff.buckets()) + " buckets differ (the peer has " +
		std::to_string(in.peer_users()) + " users, we have " +
		std::to_string(users_.size()) + "), sending their users");
	c.start_repair_stream(users_, diff);
	continue_user_stream(c, now, fx);
}

// Right: our left's answer to our CHECK.
void Ring::digest_check_answer(RingLink &c, std::string_view line, Now now, Effects &fx)
{
	auto r = parse_user_digest_reply(line);
	if (r.ok() && !c.check)
		r = make_error("USER-DIGEST answer to no check of ours");
	else if (r.ok() && c.check->answered != (r->kind == UserDigestReply::Kind::user ||
						  r->kind == UserDigestReply::Kind::repaired))
		r = make_error("USER-DIGEST answer out of order");
	if (!r.ok()) {
		refuse_peer(c, r.error(), now, fx);
		return;
	}
	RingLink::DigestCheck &check = *c.check;
	switch (r->kind) {
	case UserDigestReply::Kind::busy:
		end_digest_check(c, Effects::DigestCheckResult::busy, fx);
		schedule_digest_check(now.mono + ring_digest_check_quiet_secs);
		return;
	case UserDigestReply::Kind::repair:
		check.answered = true;
		check.differing = r->count;
		check.buckets = r->buckets;
		return;
	case UserDigestReply::Kind::user:
		check.received++;
		// A host's users dropped here since our CHECK may still be in
		// the left's table: taking its answer would bring them back.
		if (users_.host_erasures() == check.host_erasures &&
		    handler_.ring_repair_user(c, r->user_hash, r->ip, r->timestamp, now, fx))
			check.changed++;
		return;
	case UserDigestReply::Kind::repaired:
		break;
	}
	Effects::DigestCheckResult result;
	std::string counts = std::to_string(check.differing) + " of " +
			     std::to_string(check.buckets) + " user buckets differed, " +
			     std::to_string(check.received) + " users received";
	if (users_.host_erasures() != check.host_erasures) {
		result = Effects::DigestCheckResult::discarded;
		log_.peer(LogLevel::info, c.who(), "User digest check: " + counts +
			" and ignored (a host's users were dropped meanwhile)");
	} else if (check.changed != 0) {
		result = Effects::DigestCheckResult::repaired;
		log_.peer(LogLevel::warning, c.who(), "User digest check found our table "
			"different from our left's: " + counts + ", " +
			std::to_string(check.changed) + " changed ours");
	} else if (check.differing != 0) {
		result = Effects::DigestCheckResult::in_flight;
		log_.peer(LogLevel::debug, c.who(), "User digest check: " + counts +
			", none changed ours (updates on their way)");
	} else {
		result = Effects::DigestCheckResult::match;
	}
	end_digest_check(c, result, fx);
	// After a repair or a discarded answer, look again soon. Differences that
	// changed nothing were mostly updates on their way, but may also be a
	// user that our rules kept for now (one being moved here): a second look
	// follows after a while.
	int64_t next = ring_digest_check_interval_secs;
	if (result == Effects::DigestCheckResult::repaired ||
	    result == Effects::DigestCheckResult::discarded)
		next = ring_digest_check_quiet_secs;
	else if (result == Effects::DigestCheckResult::in_flight)
		next = ring_digest_check_in_flight_secs;
	schedule_digest_check(now.mono + next);
}

// Left: another user stream must start on this link; an answer still being
// streamed ends here with the users sent so far.
void Ring::cut_repair_stream(RingLink &c, Effects &fx)
{
	if (!c.repairing())
		return;
	fx.ring_sends.push_back({c.id(), format_user_digest_repaired(c.repair_sent) + "\n"});
	c.stop_user_stream();
}

void Ring::end_digest_check(RingLink &c, Effects::DigestCheckResult result, Effects &fx)
{
	const RingLink::DigestCheck &check = *c.check;
	fx.ring_digest_checks.push_back({c.id(), result, check.buckets, check.differing,
					 check.received, check.changed});
	c.check.reset();
}

} // namespace director::core
