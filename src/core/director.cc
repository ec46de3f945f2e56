// The director state machine (see director.h). No I/O and no clock here.
#include "director.h"

#include <algorithm>

#include "tab-escape.h"

namespace director::core {

namespace {

const char *delay_reason_text(int reason)
{
	static const char *const texts[] = {"unknown",	 "ring not handshaked", "ring not synced",
					    "no hosts", "weak user",	       "kill waiting"};
	return texts[reason];
}

const char *kill_state_name(int state)
{
	static const char *const names[] = {"killing", "notify_received", "waiting_for_notify",
					    "waiting_for_everyone", "flushing", "delay"};
	return names[state];
}

} // namespace

Director::Director(DirectorConfig config, LogSink &log) : config_(std::move(config)), log_(log) {}

void Director::add_config_host(const IpAddr &ip, std::string_view hostname, std::string_view tag)
{
	for (HostList *list : {&hosts_, &config_hosts_}) {
		if (list->find(ip) != invalid_host)
			continue;
		auto id = list->add(ip, tag);
		if (id && !hostname.empty())
			list->set_hostname(*id, hostname);
	}
}

// ---------------------------------------------------------------- users

bool Director::expired(UserIndex u, int64_t now) const
{
	return int64_t(users_.timestamp(u)) + config_.user_expire_secs <= now;
}

UserIndex Director::find_live_user(uint32_t hash, TagId tag, int64_t now)
{
	UserIndex u = users_.find(hash, tag);
	if (u == no_user)
		return no_user;
	// Users being moved stay until their move finishes; expire the rest
	// lazily here, as the timer may not have reached them yet.
	if (expired(u, now) && kills_.count(user_key(hash, tag)) == 0 && !users_.weak(u)) {
		erase_user(u);
		return no_user;
	}
	return u;
}

void Director::erase_user(UserIndex u)
{
	stream_fixup(u);
	users_.erase(u);
}

size_t Director::erase_users_of_host(HostId host)
{
	// Kill contexts of these users keep running: their kicks still have to
	// finish, and a later lookup would find the user gone anyway.
	bool streaming = false;
	for (auto &[id, c] : conns_)
		streaming = streaming || c.sending_users;
	if (!streaming)
		return users_.erase_host(host);
	size_t n = 0;
	for (UserIndex u = users_.oldest(); u != no_user;) {
		UserIndex next = users_.newer(u);
		if (users_.host(u) == host) {
			erase_user(u);
			n++;
		}
		u = next;
	}
	return n;
}

void Director::refresh_user(UserIndex u, int64_t now)
{
	stream_fixup(u);
	users_.refresh(u, static_cast<uint32_t>(now));
}

bool Director::near_expiring(UserIndex u, int64_t now) const
{
	// clamp(10 % of director_user_expire, 3 s, 30 s) before expiry.
	int64_t near = std::clamp<int64_t>(config_.user_expire_secs / 10, 3, 30);
	return int64_t(users_.timestamp(u)) + (config_.user_expire_secs - near) < now;
}

bool Director::recently_updated(UserIndex u, int64_t now) const
{
	return int64_t(users_.timestamp(u)) + config_.user_expire_secs / 2 >= now;
}

// ---------------------------------------------------------------- lookups

void Director::lookup(RequestId id, std::string_view username, std::string_view tag, int64_t now,
		      Effects &fx)
{
	Pending req{id, user_hash(username), std::string(tag), now, DelayReason::none};
	if (try_lookup(req, now, fx))
		return;
	if (pending_.empty())
		pending_warned_at_ = 0;
	pending_.push_back(std::move(req));
}

bool Director::try_lookup(Pending &req, int64_t now, Effects &fx)
{
	if (!ring_handshaked_) {
		req.reason = DelayReason::ring_not_handshaked;
		return false;
	}
	auto tag = hosts_.find_tag(req.tag);
	// A tag no host has ever had has no hosts either.
	UserIndex u = tag ? find_live_user(req.user_hash, *tag, now) : no_user;
	HostId host;
	if (u != no_user) {
		if (kills_.count(user_key(req.user_hash, *tag)) != 0) {
			req.reason = DelayReason::kill;
			return false;
		}
		if (right_ == 0 && ring_synced_) {
			// Alone: nobody can disagree, so any leftover weakness goes.
			users_.set_weak(u, false);
		} else if (users_.weak(u)) {
			req.reason = DelayReason::weak;
			return false;
		} else if (near_expiring(u, now)) {
			// Another director may already have expired the user and
			// given it a new host: agree on one around the ring.
			HostId ring_host = hosts_.lookup(req.user_hash, *tag);
			if (!ring_synced_) {
				req.reason = DelayReason::ring_not_synced;
				return false;
			}
			if (ring_host != users_.host(u) && ring_min_version_ >= ring_minor_weak_users) {
				users_.set_weak(u, true);
				RingCommand w;
				w.kind = RingCommandKind::user_weak;
				w.origin = next_origin();
				w.user_hash = req.user_hash;
				w.ip = hosts_.get(users_.host(u)).ip;
				update_send(self_, w, fx);
				req.reason = DelayReason::weak;
				return false;
			}
		}
		host = users_.host(u);
		refresh_user(u, now);
	} else {
		if (!ring_synced_) {
			req.reason = DelayReason::ring_not_synced;
			return false;
		}
		host = tag ? hosts_.lookup(req.user_hash, *tag) : invalid_host;
		if (host == invalid_host) {
			req.reason = DelayReason::no_hosts;
			return false;
		}
		u = users_.insert(req.user_hash, *tag, host, static_cast<uint32_t>(now));
	}
	broadcast_user(self_, u, fx);
	const MailHost &h = hosts_.get(host);
	fx.lookups.push_back({req.id, HostAnswer{h.ip, h.hostname}, {}});
	return true;
}

void Director::cancel_lookup(RequestId id)
{
	auto it = std::find_if(pending_.begin(), pending_.end(),
			       [id](const Pending &p) { return p.id == id; });
	if (it != pending_.end())
		pending_.erase(it);
}

void Director::retry_pending(int64_t now, Effects &fx)
{
	std::deque<Pending> still;
	for (Pending &req : pending_) {
		if (!try_lookup(req, now, fx))
			still.push_back(std::move(req));
	}
	pending_.swap(still);
}

std::string Director::timeout_error(const Pending &req, int64_t now)
{
	std::string s = "Timeout because ";
	s += delay_reason_text(static_cast<int>(req.reason));
	s += " - queued for " + std::to_string(now - req.created) + " secs (";
	if (ring_last_sync_time_ == 0)
		s += "Ring has never been synced";
	else
		s += std::string(ring_synced_ ? "Ring synced for " : "Ring not synced for ") +
		     std::to_string(now - ring_last_sync_time_) + " secs";
	auto tag = hosts_.find_tag(req.tag);
	UserIndex u = tag ? users_.find(req.user_hash, *tag) : no_user;
	if (u != no_user) {
		if (users_.weak(u))
			s += ", weak user";
		s += ", user refreshed " + std::to_string(now - users_.timestamp(u)) + " secs ago";
	}
	s += ", hash=" + std::to_string(req.user_hash);
	if (!req.tag.empty())
		s += ", tag=" + req.tag;
	s += ")";
	return s;
}

// ---------------------------------------------------------------- notify

void Director::notify_alive(std::string_view username, int64_t now, Effects &fx)
{
	uint32_t hash = user_hash(username);
	for (TagId tag = 0; tag < hosts_.tag_count(); tag++) {
		UserIndex u = users_.find(hash, tag);
		if (u == no_user)
			continue;
		int64_t age = now - users_.timestamp(u);
		if (age >= config_.user_expire_secs) {
			log_.log(LogLevel::warning, "notify: User " + quote_for_log(username) +
							    " refreshed too late (" +
							    std::to_string(age) + " secs)");
		}
		refresh_user(u, now);
		broadcast_user(self_, u, fx);
	}
}

// ---------------------------------------------------------------- timers

void Director::tick(int64_t now, Effects &fx)
{
	// Expire users from the oldest. Users being moved are kept until their
	// move finishes, weak ones a while longer (then the weakness is stuck).
	for (UserIndex u = users_.oldest(); u != no_user;) {
		UserIndex next = users_.newer(u);
		if (!expired(u, now))
			break;
		uint64_t key = user_key(users_.user_hash(u), users_.tag(u));
		if (kills_.count(key) != 0) {
			u = next;
			continue;
		}
		if (users_.weak(u) && int64_t(users_.timestamp(u)) + config_.user_expire_secs +
						     weak_user_stuck_extra_secs > now) {
			u = next;
			continue;
		}
		if (users_.weak(u)) {
			log_.log(LogLevel::warning,
				 "User " + std::to_string(users_.user_hash(u)) +
					 " weakness appears to be stuck, removing it");
		}
		erase_user(u);
		u = next;
	}

	// Moves: end kick delays, time out stuck moves.
	std::vector<uint64_t> done;
	for (auto &[key, kill] : kills_) {
		if (kill.state == KillState::delay && kill.delay_until <= now) {
			done.push_back(key);
		} else if (kill.state != KillState::delay &&
			   kill.started + user_move_timeout_secs <= now) {
			log_.log(LogLevel::error,
				 "Finishing user " + std::to_string(uint32_t(key)) +
					 " move timed out, its state may now be inconsistent (state=" +
					 kill_state_name(static_cast<int>(kill.state)) + ")");
			done.push_back(key);
		}
	}
	for (uint64_t key : done)
		free_kill(key, now, fx);

	// Lookups: time out the ones queued too long.
	while (!pending_.empty() && pending_.front().created + request_timeout_secs <= now) {
		Pending req = std::move(pending_.front());
		pending_.pop_front();
		auto tag = hosts_.find_tag(req.tag);
		UserIndex u = tag ? users_.find(req.user_hash, *tag) : no_user;
		std::string error = timeout_error(req, now);
		if (u != no_user && req.reason == DelayReason::weak)
			users_.set_weak(u, false);
		fx.lookups.push_back({req.id, std::nullopt, error});
	}
	if (!pending_.empty() && pending_warned_at_ == 0 &&
	    pending_.front().created + request_delay_warning_secs <= now) {
		pending_warned_at_ = now;
		log_.log(LogLevel::warning, std::to_string(pending_.size()) +
						    " requests are delayed: " +
						    delay_reason_text(int(pending_.front().reason)));
	}
	retry_pending(now, fx);
	run_reset_jobs(now, fx);
	ring_tick(now, fx);
}

// ---------------------------------------------------------------- moves

JobId Director::new_job(JobKind kind, uint64_t key)
{
	JobId id = next_job_++;
	jobs_[id] = Job{kind, key};
	return id;
}

void Director::move_user(uint32_t hash, HostId host, int64_t now, Effects &fx)
{
	move_user_from(self_, std::nullopt, hash, host, now, fx);
}

void Director::move_user_from(const DirectorHost *src, std::optional<RingOrigin> origin,
			      uint32_t hash, HostId host, int64_t now, Effects &fx)
{
	TagId tag = hosts_.get(host).tag;
	UserIndex u = users_.find(hash, tag);
	std::optional<HostId> old_host;
	if (u == no_user) {
		u = users_.insert(hash, tag, host, static_cast<uint32_t>(now));
	} else {
		old_host = users_.host(u);
		if (*old_host != host)
			users_.set_host(u, host);
		// Stock updates a moved user's timestamp in place.
		users_.set_timestamp_in_place(u, static_cast<uint32_t>(now));
	}
	if (ring_mode_) {
		// Sent before the kill: the kill may finish at once.
		RingCommand mv;
		mv.kind = RingCommandKind::user_move;
		mv.origin = origin ? *origin : next_origin();
		mv.user_hash = hash;
		mv.ip = hosts_.get(host).ip;
		update_send(src, mv, fx);
	}
	bool self_initiated = src == self_ || src == nullptr;
	uint64_t key = user_key(hash, tag);
	bool new_kill = kills_.count(key) == 0;
	kill_user(u, old_host, false, now, fx);
	if (new_kill && kills_.count(key) != 0)
		kills_[key].self_initiated = self_initiated;
}

void Director::kill_user(UserIndex u, std::optional<HostId> old_host, bool forced, int64_t now,
			 Effects &fx)
{
	uint64_t key = user_key(users_.user_hash(u), users_.tag(u));
	if (kills_.count(key) != 0) {
		// Moved again before the previous move finished: that one
		// continues where it is.
		return;
	}
	KillContext &kill = kills_[key];
	kill.self_initiated = true; // move_user_from() corrects this for ring moves
	kill.started = now;
	if (old_host) {
		const MailHost &h = hosts_.get(*old_host);
		kill.old_host_ip = h.ip;
		kill.old_host_down = h.down;
		kill.old_host_vhosts = h.vhost_count;
	}
	users_.set_kill_pending(u, true);
	if ((old_host && *old_host != users_.host(u)) || forced) {
		kill.job = new_job(JobKind::kill_kick, key);
		kicking_++;
		fx.ipc.push_back({kill.job, "proxy\t*\tKICK-DIRECTOR-HASH\t" +
						    std::to_string(users_.user_hash(u))});
	} else {
		// Nothing of ours can be connected to another host: the user
		// was unknown here or already on the target host.
		finish_user_kill(key, now, fx);
	}
}

void Director::finish_user_kill(uint64_t key, int64_t now, Effects &fx)
{
	auto it = kills_.find(key);
	KillContext &kill = it->second;
	kill.job = 0;
	if (RingConn *right = conn(right_)) {
		// Tell the ring rightwards that we (and everyone on our left
		// that started before us) are done; USER-KILLED-EVERYWHERE
		// comes back when all are.
		if (kill.self_initiated || kill.state == KillState::killing_notify_received) {
			RingCommand k;
			k.kind = RingCommandKind::user_killed;
			k.user_hash = uint32_t(key);
			send(*right, k, fx);
			kill.state = KillState::killed_waiting_for_everyone;
		} else {
			kill.state = KillState::killed_waiting_for_notify;
		}
		return;
	}
	flush_killed_user(key, now, fx);
}

void Director::flush_killed_user(uint64_t key, int64_t now, Effects &fx)
{
	KillContext &kill = kills_[key];
	UserIndex u = users_.find(uint32_t(key), TagId(key >> 32));
	if (!config_.flush_program_set || !kill.old_host_ip || !kill.self_initiated ||
	    u == no_user) {
		finish_kill_delayed(key, false, now, fx);
		return;
	}
	const MailHost &host = hosts_.get(users_.host(u));
	kill.state = KillState::flushing;
	kill.job = new_job(JobKind::flush, key);
	fx.flushes.push_back({kill.job,
			      host.ip,
			      host.hostname,
			      {"FLUSH", std::to_string(uint32_t(key)), kill.old_host_ip->to_string(),
			       host.ip.to_string(), kill.old_host_down ? "down" : "up",
			       std::to_string(kill.old_host_vhosts)}});
}

void Director::user_killed(uint32_t hash, int64_t now, Effects &fx)
{
	for (TagId tag = 0; tag < hosts_.tag_count(); tag++) {
		uint64_t key = user_key(hash, tag);
		auto it = kills_.find(key);
		if (users_.find(hash, tag) == no_user || it == kills_.end())
			continue;
		switch (it->second.state) {
		case KillState::killing:
			it->second.state = KillState::killing_notify_received;
			break;
		case KillState::killed_waiting_for_notify:
			it->second.self_initiated = true; // forward as if ours
			finish_user_kill(key, now, fx);
			break;
		case KillState::killing_notify_received:
			break;
		case KillState::killed_waiting_for_everyone: {
			// It went all the way round: everyone has killed.
			RingOrigin o = next_origin();
			user_killed_everywhere(self_, o, hash, now, fx);
			break;
		}
		case KillState::flushing:
		case KillState::delay: {
			// A restarted move: answer so that nobody hangs.
			RingCommand e;
			e.kind = RingCommandKind::user_killed_everywhere;
			e.origin = next_origin();
			e.user_hash = hash;
			update_send(self_, e, fx);
			break;
		}
		}
	}
}

void Director::user_killed_everywhere(const DirectorHost *src, const RingOrigin &origin,
				      uint32_t hash, int64_t now, Effects &fx)
{
	for (TagId tag = 0; tag < hosts_.tag_count(); tag++) {
		uint64_t key = user_key(hash, tag);
		auto it = kills_.find(key);
		if (users_.find(hash, tag) == no_user || it == kills_.end() ||
		    it->second.state != KillState::killed_waiting_for_everyone)
			continue;
		flush_killed_user(key, now, fx);
		RingCommand e;
		e.kind = RingCommandKind::user_killed_everywhere;
		e.origin = origin;
		e.user_hash = hash;
		update_send(src, e, fx);
	}
}

void Director::finish_kill_delayed(uint64_t key, bool skip_delay, int64_t now, Effects &fx)
{
	if (skip_delay) {
		free_kill(key, now, fx);
		return;
	}
	KillContext &kill = kills_[key];
	kill.state = KillState::delay;
	kill.delay_until = now + config_.user_kick_delay_secs;
}

void Director::free_kill(uint64_t key, int64_t now, Effects &fx)
{
	auto it = kills_.find(key);
	if (it == kills_.end())
		return;
	// A running ipc kick stays a job until its reply comes: that reply
	// still ends one of users_kicking(). A flush program's result is
	// simply ignored.
	auto job = jobs_.find(it->second.job);
	if (job != jobs_.end() && job->second.kind == JobKind::flush)
		jobs_.erase(job);
	kills_.erase(it);
	UserIndex u = users_.find(uint32_t(key), TagId(key >> 32));
	if (u != no_user)
		users_.set_kill_pending(u, false);
	// A move ended: delayed logins of this user and running reset-users
	// may continue.
	retry_pending(now, fx);
	run_reset_jobs(now, fx);
}

void Director::ipc_done(JobId id, bool ok, const std::string &error, int64_t now, Effects &fx)
{
	auto it = jobs_.find(id);
	if (it == jobs_.end())
		return;
	Job job = it->second;
	jobs_.erase(it);
	if (kicking_ > 0)
		kicking_--;
	if (!ok) {
		log_.log(LogLevel::error, job.kind == JobKind::kill_kick
						  ? "Failed to kill user " +
							    std::to_string(uint32_t(job.user_key)) +
							    " connections: " + error
						  : "Failed to kick user: " + error);
	}
	if (job.kind == JobKind::kill_kick) {
		auto kill = kills_.find(job.user_key);
		if (kill != kills_.end() && kill->second.job == id)
			finish_user_kill(job.user_key, now, fx);
	}
	run_queued_kicks(fx);
}

void Director::flush_done(JobId id, bool ok, int64_t now, Effects &fx)
{
	auto it = jobs_.find(id);
	if (it == jobs_.end())
		return;
	Job job = it->second;
	jobs_.erase(it);
	auto kill = kills_.find(job.user_key);
	if (kill == kills_.end() || kill->second.job != id)
		return;
	kill->second.job = 0;
	finish_kill_delayed(job.user_key, ok, now, fx);
}

// ---------------------------------------------------------------- admin

std::vector<HostListEntry> Director::host_list() const
{
	std::vector<HostListEntry> out;
	for (HostId id : hosts_.sorted_ids()) {
		const MailHost &h = hosts_.get(id);
		out.push_back({h.ip, h.vhost_count, users_.users_on_host(id), hosts_.tag_name(h.tag),
			       h.down, h.last_updown_change});
	}
	return out;
}

std::vector<IpAddr> Director::hosts_removed_from_config() const
{
	std::vector<IpAddr> out;
	for (HostId id : config_hosts_.sorted_ids()) {
		const IpAddr &ip = config_hosts_.get(id).ip;
		if (hosts_.find(ip) == invalid_host)
			out.push_back(ip);
	}
	return out;
}

// A local host change: tell the ring and make it sync (stock
// director_update_host()).
void Director::host_changed(HostId id, int64_t now, Effects &fx)
{
	send_host(self_, std::nullopt, id, now, fx);
	if (left_ != 0 || right_ != 0)
		hosts_.set_desynced(id, true);
	ring_sync(now, fx);
	state_changed(now, fx);
}

AdminReply Director::host_set(JobId job, const IpAddr &ip, std::string_view tag,
			      std::optional<unsigned> vhosts, bool update_only, int64_t now,
			      Effects &fx)
{
	if (vhosts && *vhosts > max_vhost_count)
		return AdminReply::now("vhost count too large");
	HostId id = hosts_.find(ip);
	if (id == invalid_host) {
		if (update_only)
			return AdminReply::now("NOTFOUND");
		if (!hosts_.find_tag(tag) && hosts_.tag_count() > max_tag_id)
			return AdminReply::now("too many tags");
		auto added = hosts_.add(ip, tag, vhosts.value_or(default_vhost_count));
		if (!added)
			return AdminReply::now("too many hosts");
		id = *added;
	} else {
		const MailHost &h = hosts_.get(id);
		if (!tag.empty() && hosts_.tag_name(h.tag) != tag)
			return AdminReply::now("host tag can't be changed");
		if (h.desynced)
			return AdminReply::now("host is already being updated - try again later");
		if (vhosts)
			hosts_.set_vhost_count(id, *vhosts);
	}
	host_changed(id, now, fx);
	return reply_after_sync(job, now);
}

AdminReply Director::host_set_down(JobId job, const IpAddr &ip, bool down, int64_t now,
				   Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return AdminReply::now("NOTFOUND");
	const MailHost &h = hosts_.get(id);
	if (h.down == down)
		return AdminReply::now("OK");
	if (h.desynced)
		return AdminReply::now("host is already being updated - try again later");
	hosts_.set_down(id, down, now);
	host_changed(id, now, fx);
	return reply_after_sync(job, now);
}

AdminReply Director::host_remove(JobId job, const IpAddr &ip, int64_t now, Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return AdminReply::now("NOTFOUND");
	if (ring_mode_) {
		RingCommand rm;
		rm.kind = RingCommandKind::host_remove;
		rm.origin = next_origin();
		rm.ip = ip;
		update_send(self_, rm, fx);
	}
	erase_users_of_host(id);
	hosts_.remove(id);
	ring_sync(now, fx);
	return reply_after_sync(job, now);
}

void Director::flush_host(HostId id, int64_t now, Effects &fx)
{
	if (ring_mode_) {
		RingCommand fl;
		fl.kind = RingCommandKind::host_flush;
		fl.origin = next_origin();
		fl.ip = hosts_.get(id).ip;
		update_send(self_, fl, fx);
	}
	erase_users_of_host(id);
	ring_sync(now, fx);
}

AdminReply Director::host_flush(JobId job, std::optional<IpAddr> ip, int64_t now, Effects &fx)
{
	if (!ip) {
		size_t flushed = 0;
		for (HostId id : hosts_.sorted_ids()) {
			flushed += users_.users_on_host(id);
			flush_host(id, now, fx);
		}
		log_.log(LogLevel::warning,
			 "Flushed all backend hosts with " + std::to_string(flushed) +
				 " users. This is an unsafe operation and may cause the same users "
				 "to end up in multiple backends.");
		return AdminReply::now("OK");
	}
	HostId id = hosts_.find(*ip);
	if (id == invalid_host)
		return AdminReply::now("NOTFOUND");
	flush_host(id, now, fx);
	return reply_after_sync(job, now);
}

bool Director::health_set_down(const IpAddr &ip, int64_t now, Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return false;
	const MailHost &h = hosts_.get(id);
	if (h.down || h.desynced)
		return false;
	// One step: the HOST change and the HOST-FLUSH leave in the same batch,
	// in this order, so no peer sees the flush without the down.
	hosts_.set_down(id, true, now);
	host_changed(id, now, fx);
	flush_host(id, now, fx);
	return true;
}

bool Director::health_set_up(const IpAddr &ip, int64_t now, Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return false;
	const MailHost &h = hosts_.get(id);
	if (!h.down || h.desynced)
		return false;
	hosts_.set_down(id, false, now);
	host_changed(id, now, fx);
	return true;
}

// ---------------------------------------------------------------- ring side of users and hosts

int Director::user_refresh(RingConn &c, uint32_t hash, HostId host, int64_t timestamp, bool weak,
			   bool unknown_timestamp, int64_t now, bool &forced_r, UserIndex &user_r,
			   Effects &fx)
{
	forced_r = false;
	if (timestamp + config_.user_expire_secs <= now)
		return -1; // expired information
	TagId tag = hosts_.get(host).tag;
	UserIndex u = users_.find(hash, tag);
	if (u == no_user) {
		u = users_.insert(hash, tag, host, static_cast<uint32_t>(timestamp));
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
	} else if (kills_.count(user_key(hash, tag)) != 0) {
		new_host = users_.host(u); // being moved: the sender doesn't know yet
	} else {
		const IpAddr &ours = hosts_.get(users_.host(u)).ip;
		const IpAddr &theirs = hosts_.get(host).ip;
		log_.log(LogLevel::error,
			 "director(" + (c.host ? c.host->name() : c.remote_ip.to_string()) +
				 "): User hash " + std::to_string(hash) +
				 " is being redirected to two hosts: " + ours.to_string() + " and " +
				 theirs.to_string() + " (old_ts=" + std::to_string(users_.timestamp(u)) +
				 ")");
		// Everyone picks the lower IP, and kicks the rest.
		if (theirs < ours)
			forced_r = true;
		else
			new_host = users_.host(u);
		kick_user_hash(hash, hosts_.get(new_host).ip, fx);
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
		stream_fixup(u);
		users_.refresh(u, static_cast<uint32_t>(timestamp));
		changed = true;
	}
	if (unset_weak)
		state_changed(now, fx);
	user_r = u;
	return changed ? 1 : 0;
}

void Director::broadcast_user(const DirectorHost *src, UserIndex u, Effects &fx)
{
	if (!ring_mode_ || conns_.empty())
		return;
	RingCommand uc;
	uc.kind = RingCommandKind::user;
	uc.user_hash = users_.user_hash(u);
	uc.ip = hosts_.get(users_.host(u)).ip;
	uc.timestamp = users_.timestamp(u);
	update_send(src, uc, fx);
}

void Director::kick_user_hash(uint32_t hash, const IpAddr &except, Effects &fx)
{
	kicking_++;
	fx.ipc.push_back({new_job(JobKind::admin_kick, 0), "proxy\t*\tKICK-DIRECTOR-HASH\t" +
								   std::to_string(hash) + "\t" +
								   except.to_string()});
	if (!ring_mode_)
		return;
	RingCommand k;
	k.kind = RingCommandKind::user_kick_hash;
	k.origin = next_origin();
	k.user_hash = hash;
	k.ip = except;
	update_send(self_, k, fx, ring_minor_user_kick);
}

void Director::send_host(const DirectorHost *src, std::optional<RingOrigin> origin, HostId id,
			 int64_t now, Effects &fx)
{
	if (!ring_mode_)
		return;
	const MailHost &h = hosts_.get(id);
	if (h.tag != default_tag && ring_min_version_ < ring_minor_tags_v2) {
		log_.log(LogLevel::error, "Ring has directors that don't support tags - removing host " +
						  h.ip.to_string() + " with tag '" +
						  hosts_.tag_name(h.tag) + "'");
		RingCommand rm;
		rm.kind = RingCommandKind::host_remove;
		rm.origin = origin ? *origin : next_origin();
		rm.ip = h.ip;
		update_send(src, rm, fx);
		erase_users_of_host(id);
		hosts_.remove(id);
		ring_sync(now, fx);
		return;
	}
	RingCommand hc;
	hc.kind = RingCommandKind::host;
	hc.origin = origin ? *origin : next_origin();
	hc.ip = h.ip;
	hc.vhost_count = h.vhost_count;
	hc.tag = hosts_.tag_name(h.tag);
	hc.updown = RingUpDown{h.down, h.last_updown_change};
	hc.hostname = h.hostname;
	update_send(src, hc, fx);
}

void Director::apply_host(RingConn *c, const RingCommand &cmd, bool handshake, int64_t now,
			  Effects &fx)
{
	if (c != nullptr && c->ignore_host_list && handshake)
		return;
	std::string who = c && c->host ? c->host->name() : "";
	if (!cmd.tag.empty() && c != nullptr && c->pctx.peer_minor < ring_minor_tags_v2) {
		log_.log(LogLevel::error, "director(" + who + "): Received a host tag from older "
							      "director version with incompatible tagging "
							      "support");
		close_conn(*c, "Incompatible tag support", now, fx, true);
		return;
	}
	if (cmd.vhost_count > max_vhost_count) {
		// Stock takes any count here, and a ring of billions of vhost
		// points would exhaust memory; no stock director sends more
		// than doveadm's limit.
		log_.log(LogLevel::error, "director(" + who + "): Ignoring host " + cmd.ip.to_string() +
						  ": vhost count " + std::to_string(cmd.vhost_count) +
						  " is over " + std::to_string(max_vhost_count));
		return;
	}
	bool down = cmd.updown && cmd.updown->down;
	int64_t updown_ts = cmd.updown ? cmd.updown->last_updown_change : 0;
	HostId id = hosts_.find(cmd.ip);
	bool update = false, conflict = false;
	if (!hosts_.find_tag(cmd.tag) && hosts_.tag_count() > max_tag_id) {
		log_.log(LogLevel::error, "director(" + who + "): Ignoring host " + cmd.ip.to_string() +
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
				log_.log(LogLevel::warning,
					 "director(" + who + "): Host " + cmd.ip.to_string() +
						 " is being updated before previous update had finished");
				if (h.last_updown_change > updown_ts) {
					down = h.down;
					updown_ts = h.last_updown_change;
				}
				vhosts = std::min(vhosts, h.vhost_count);
			}
			if (hosts_.tag_name(h.tag) != cmd.tag) {
				log_.log(LogLevel::error, "director(" + who + "): Host " +
								  cmd.ip.to_string() + " changed tag from '" +
								  hosts_.tag_name(h.tag) + "' to '" + cmd.tag + "'");
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
	send_host(reoriginate || c == nullptr ? self_ : c->host,
		  reoriginate ? std::nullopt : std::optional<RingOrigin>(cmd.origin), id, now, fx);
	if (left_ != 0 || right_ != 0)
		hosts_.set_desynced(id, true);
	ring_sync(now, fx);
	state_changed(now, fx);
}

AdminReply Director::host_reset_users(JobId job, std::optional<IpAddr> ip, unsigned max_parallel,
				      int64_t now, Effects &fx)
{
	ResetJob reset;
	reset.admin_job = job;
	reset.max_parallel = max_parallel;
	reset.started = now;
	for (HostId id : hosts_.sorted_ids()) {
		if (!ip || hosts_.get(id).ip == *ip)
			reset.hosts.push_back(hosts_.get(id).ip);
	}
	if (ip && reset.hosts.empty())
		return AdminReply::now("NOTFOUND");
	if (run_reset_job(reset, now, fx))
		return AdminReply::now("OK");
	resets_.push_back(std::move(reset));
	return AdminReply::deferred();
}

bool Director::run_reset_job(ResetJob &job, int64_t now, Effects &fx)
{
	while (job.host_idx < job.hosts.size()) {
		if (kills_.size() >= job.max_parallel)
			return false;
		HostId host = hosts_.find(job.hosts[job.host_idx]);
		if (host == invalid_host) {
			// Removed meanwhile: nothing left to move.
			job.host_idx++;
			job.snapshot_taken = false;
			continue;
		}
		if (!job.snapshot_taken) {
			job.users.clear();
			for (UserIndex u = users_.oldest(); u != no_user; u = users_.newer(u)) {
				if (users_.host(u) == host)
					job.users.push_back(users_.user_hash(u));
			}
			job.user_idx = 0;
			job.users_killed = false;
			job.snapshot_taken = true;
		}
		TagId tag = hosts_.get(host).tag;
		while (job.user_idx < job.users.size() && kills_.size() < job.max_parallel) {
			uint32_t hash = job.users[job.user_idx++];
			UserIndex u = users_.find(hash, tag);
			if (u == no_user || users_.host(u) != host)
				continue;
			HostId new_host = hosts_.lookup(hash, tag);
			if (new_host == host)
				continue;
			if (new_host != invalid_host) {
				move_user(hash, new_host, now, fx);
			} else {
				// No usable host left: kick the user instead;
				// the host is flushed at the end.
				kill_user(u, host, true, now, fx);
				job.users_killed = true;
			}
			job.moved++;
		}
		if (job.user_idx < job.users.size())
			return false;
		if (job.users_killed)
			flush_host(host, now, fx);
		job.host_idx++;
		job.snapshot_taken = false;
	}
	log_.log(LogLevel::info, "Moved " + std::to_string(job.moved) + " users in " +
					 std::to_string(job.hosts.size()) + " hosts in " +
					 std::to_string(now - job.started) +
					 " secs (max parallel=" + std::to_string(job.max_parallel) +
					 ")");
	return true;
}

void Director::run_reset_jobs(int64_t now, Effects &fx)
{
	for (size_t i = 0; i < resets_.size();) {
		if (run_reset_job(resets_[i], now, fx)) {
			if (resets_[i].admin_present)
				fx.admin.push_back({resets_[i].admin_job, "OK"});
			resets_.erase(resets_.begin() + static_cast<long>(i));
		} else {
			i++;
		}
	}
}

UserLookup Director::user_lookup(uint32_t hash, std::string_view tag_name, int64_t now)
{
	UserLookup out;
	auto tag = hosts_.find_tag(tag_name);
	if (tag) {
		UserIndex u = find_live_user(hash, *tag, now);
		if (u != no_user) {
			out.current = hosts_.get(users_.host(u)).ip;
			out.expire_time = int64_t(users_.timestamp(u)) + config_.user_expire_secs;
		}
		HostId h = hosts_.lookup(hash, *tag);
		if (h != invalid_host)
			out.hashed = hosts_.get(h).ip;
	}
	auto ctag = config_hosts_.find_tag(tag_name);
	if (ctag) {
		HostId h = config_hosts_.lookup(hash, *ctag);
		if (h != invalid_host)
			out.initial_config = config_hosts_.get(h).ip;
	}
	return out;
}

std::vector<UserListEntry> Director::user_list(std::optional<IpAddr> ip) const
{
	std::vector<UserListEntry> out;
	HostId only = ip ? hosts_.find(*ip) : invalid_host;
	if (ip && only == invalid_host)
		return out;
	// Per tag, least to most recently refreshed, as stock lists them.
	for (TagId tag = 0; tag < hosts_.tag_count(); tag++) {
		for (UserIndex u = users_.oldest(); u != no_user; u = users_.newer(u)) {
			if (users_.tag(u) != tag || (ip && users_.host(u) != only))
				continue;
			out.push_back({users_.user_hash(u),
				       int64_t(users_.timestamp(u)) + config_.user_expire_secs,
				       hosts_.get(users_.host(u)).ip});
		}
	}
	return out;
}

AdminReply Director::user_move(uint32_t hash, const IpAddr &ip, int64_t now, Effects &fx)
{
	HostId host = hosts_.find(ip);
	if (host == invalid_host)
		return AdminReply::now("NOTFOUND");
	TagId tag = hosts_.get(host).tag;
	UserIndex u = users_.find(hash, tag);
	if (u != no_user && kills_.count(user_key(hash, tag)) != 0)
		return AdminReply::now("TRYAGAIN");
	if (u != no_user && users_.host(u) == host) {
		refresh_user(u, now);
		broadcast_user(self_, u, fx);
		return AdminReply::now("OK");
	}
	move_user(hash, host, now, fx);
	return AdminReply::now("OK");
}

void Director::start_admin_kick(const QueuedKick &kick, Effects &fx)
{
	std::string line = kick.field.empty() ? "proxy\t*\tKICK\t" : "proxy\t*\tKICK-ALT\t";
	if (!kick.field.empty()) {
		tab_escape_append(line, kick.field);
		line += '\t';
	}
	tab_escape_append(line, kick.value);
	kicking_++;
	fx.ipc.push_back({new_job(JobKind::admin_kick, 0), std::move(line)});
	if (!ring_mode_)
		return;
	RingCommand k;
	k.kind = kick.field.empty() ? RingCommandKind::user_kick : RingCommandKind::user_kick_alt;
	k.origin = next_origin();
	k.username = kick.value;
	k.field = kick.field;
	k.value = kick.value;
	update_send(self_, k, fx, ring_command_min_minor(k.kind));
}

AdminReply Director::user_kick(JobId job, std::string_view kick_field, std::string_view value,
			       bool nowait, Effects &fx)
{
	QueuedKick kick{job, std::string(kick_field), std::string(value)};
	if (kicking_ < config_.max_parallel_kicks) {
		start_admin_kick(kick, fx);
		return AdminReply::now("OK");
	}
	if (nowait)
		return AdminReply::now("TRYAGAIN");
	queued_kicks_.push_back(std::move(kick));
	return AdminReply::deferred();
}

void Director::run_queued_kicks(Effects &fx)
{
	while (!queued_kicks_.empty() && kicking_ < config_.max_parallel_kicks) {
		QueuedKick kick = std::move(queued_kicks_.front());
		queued_kicks_.pop_front();
		start_admin_kick(kick, fx);
		fx.admin.push_back({kick.admin_job, "OK"});
	}
}

void Director::admin_gone(JobId job)
{
	queued_kicks_.erase(std::remove_if(queued_kicks_.begin(), queued_kicks_.end(),
					   [job](const QueuedKick &k) { return k.admin_job == job; }),
			    queued_kicks_.end());
	for (ResetJob &reset : resets_) {
		if (reset.admin_job == job)
			reset.admin_present = false;
	}
}

} // namespace director::core
