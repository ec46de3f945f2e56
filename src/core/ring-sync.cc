// SYNC and the ring's synced state (see ring.h): who originates a SYNC, how one passing
// by is checked and forwarded, and the admin replies that wait for it. No I/O here.
#include "ring.h"

#include <algorithm>

namespace director::core {

void Ring::set_ring_unsynced(Now now)
{
	if (ring_synced_) {
		ring_synced_ = false;
		ring_last_sync_time_ = now.mono;
	}
	sync_resend_at_ = now.mono + ring_sync_resend_secs;
}

void Ring::ring_sync(Now now, Effects &fx)
{
	sync_seq_++;
	if (alone())
		return; // alone: changes cannot desync us
	set_ring_unsynced(now);
	RingLink *right = conn(right_);
	if (right == nullptr)
		return;
	if (RingLink *left = conn(left_))
		left->synced = false;
	right->synced = false;
	sync_send(*dirs_.self(), sync_seq_, ring_version_minor, uint32_t(now.wall), hosts_.hosts_hash(), now, fx);
}

bool Ring::heartbeat(Now now, Effects &fx)
{
	if (alone() || !ring_synced_ || !ring_handshaked_ || right_ == 0)
		return false;
	sync_seq_++;
	sync_send(*dirs_.self(), sync_seq_, ring_version_minor, uint32_t(now.wall), hosts_.hosts_hash(), now, fx);
	return true;
}

int64_t Ring::director_last_sync_seen(const IpAddr &ip, uint16_t port) const
{
	const DirectorHost *h = dirs_.find(ip, port);
	return h == nullptr ? 0 : h->last_sync_seen;
}

void Ring::sync_send(const DirectorHost &origin, uint32_t seq, uint32_t minor,
			 uint32_t timestamp, uint32_t hosts_hash, Now now, Effects &fx)
{
	RingLink *right = conn(right_);
	if (right == nullptr)
		return;
	if (&origin == dirs_.self()) {
		last_sync_sent_change_counter_ = ring_change_counter_;
		last_sync_start_ = now.mono;
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
	if (RingLink *left = conn(left_))
		ping(*left, now, fx);
	ping(*right, now, fx);
}

void Ring::set_ring_handshaked(Now now, Effects &fx)
{
	ring_handshaked_ = true;
	if (hold_users_until_ != 0)
		release_user_streams(now, fx);
	if (push_restored_users_) {
		push_restored_users_ = false;
		RingLink *left = conn(left_);
		if (left != nullptr && left->handshaked() && !left->sending_users() &&
		    users_.size() != 0) {
			log_.peer(LogLevel::info, left->who(),
				"Sending the restored user table as updates (" +
				std::to_string(users_.size()) + " users)");
			left->start_user_push(users_);
			continue_user_stream(*left, now, fx);
		}
	}
	log_.log(LogLevel::info, "Director ring handshaked");
	set_ring_synced(now, fx);
}

void Ring::set_ring_synced(Now now, Effects &fx)
{
	ring_synced_ = true;
	ring_last_sync_time_ = now.mono;
	if (RingLink *left = conn(left_))
		left->synced = true;
	RingLink *right = conn(right_);
	if (right != nullptr)
		right->synced = true;
	DirectorHost *pref = dirs_.preferred_right();
	preferred_reconnect_at_ =
		right != nullptr && pref != nullptr && right->host != pref
			? now.mono + ring_preferred_reconnect_secs
			: 0;
	purge_removed_directors();
	handler_.ring_synced(now, fx);
	state_changed(now, fx);
}

void Ring::state_changed(Now now, Effects &fx)
{
	handler_.ring_state_changed(now, fx);
	if (ring_synced_) {
		for (const SyncWaiter &w : sync_waiters_)
			fx.admin.push_back({w.job, AdminResult::ok});
		sync_waiters_.clear();
		for (JobId job : presync_waiters_)
			fx.admin_resume.push_back(job);
		presync_waiters_.clear();
	}
}

AdminReply Ring::reply_after_sync(JobId job, Now now)
{
	// Alone, a change cannot desync us; synced, nothing is pending.
	if (alone() || ring_synced_)
		return AdminReply::now(AdminResult::ok);
	sync_waiters_.push_back({job, now.mono + request_timeout_secs});
	return AdminReply::deferred();
}

bool Ring::admin_may_run(JobId job)
{
	if (ring_synced_)
		return true;
	presync_waiters_.push_back(job);
	return false;
}

void Ring::handle_sync(RingLink &c, const RingCommand &cmd, Now now, Effects &fx)
{
	DirectorHost *origin = dirs_.find(cmd.origin.ip, cmd.origin.port);
	uint32_t minor = cmd.sync_minor.value_or(0);
	uint32_t hash = cmd.hosts_hash.value_or(0);
	int64_t ts = cmd.sync_timestamp ? int64_t(*cmd.sync_timestamp) : now.wall;
	if (origin == dirs_.self()) {
		if (cmd.origin.seq != sync_seq_)
			return; // an older SYNC of ours
		if (hash != 0 && hash != hosts_.hosts_hash()) {
			log_.log(LogLevel::warning, "Hosts unexpectedly changed during SYNC reply - "
						    "resending (seq=" + std::to_string(sync_seq_) + ")");
			sync_send(*dirs_.self(), sync_seq_, ring_version_minor, uint32_t(now.wall),
				  hosts_.hosts_hash(), now, fx);
			return;
		}
		ring_min_version_ = minor;
		last_sync_msecs_ = uint32_t((now.mono - last_sync_start_) * 1000);
		if (!ring_handshaked_)
			set_ring_handshaked(now, fx);
		else if (!ring_synced_)
			set_ring_synced(now, fx);
		return;
	}
	if (origin != nullptr) {
		origin->last_sync_seen = now.mono;
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
			log_.peer(LogLevel::error, c.host ? c.host->name() : "",
				"Hosts differ from " + origin->name() + " (our hash=" +
				std::to_string(hosts_.hosts_hash()) + ", theirs=" +
				std::to_string(hash) + "), resending our hosts");
			handler_.ring_resend_hosts(now, fx);
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
	    last_sync_resend_ != now.mono && right_ != 0 && left_ != 0) {
		last_sync_resend_ = now.mono;
		sync_send(*dirs_.self(), sync_seq_, ring_version_minor, uint32_t(now.wall), hosts_.hosts_hash(),
			  now, fx);
	}
}

void Ring::purge_removed_directors()
{
	dirs_.purge([this](const DirectorHost *h) {
		for (auto &[id, c] : conns_) {
			if (c.host == h)
				return true;
		}
		return false;
	});
}

} // namespace director::core
