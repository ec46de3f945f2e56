// UserMoves (see user-moves.h). No I/O and no clock here.
#include "user-moves.h"

#include <algorithm>

#include "tab-escape.h"

namespace director::core {

const char *UserMoves::kill_state_name(KillState state)
{
	switch (state) {
	case KillState::killing:
		return "killing";
	case KillState::killing_notify_received:
		return "notify_received";
	case KillState::killed_waiting_for_notify:
		return "waiting_for_notify";
	case KillState::killed_waiting_for_everyone:
		return "waiting_for_everyone";
	case KillState::flushing:
		return "flushing";
	case KillState::delay:
		return "delay";
	}
	return "unknown";
}

UserMoves::UserMoves(const DirectorConfig &config, LogSink &log, UserTable &users, HostList &hosts,
		     RingPort &ring, Owner &owner)
	: config_(config), log_(log), users_(users), hosts_(hosts), ring_(ring), owner_(owner)
{
}

void UserMoves::tick(Now now, Effects &fx)
{
	end_delays(now, fx);
	std::vector<uint64_t> done;
	for (auto &[key, kill] : kills_) {
		if (kill.state != KillState::delay &&
		    kill.started + user_move_timeout_secs <= now.mono) {
			log_.log_with(LogLevel::error,
				      "Finishing user " + std::to_string(uint32_t(key)) +
					      " move timed out, its state may now be inconsistent "
					      "(state=" + kill_state_name(kill.state) + ")",
				      LogFields::user(uint32_t(key)));
			done.push_back(key);
		}
	}
	for (uint64_t key : done)
		free_kill(key, now, fx);
}

void UserMoves::ring_kick(const RingCommand &cmd, Effects &fx)
{
	Kick kick;
	if (cmd.kind == RingCommandKind::user_kick)
		kick = Kick::by_user(cmd.username, KickReason::admin);
	else if (cmd.kind == RingCommandKind::user_kick_alt)
		kick = Kick::by_alt_field(cmd.field, cmd.value, KickReason::admin);
	else
		kick = Kick::by_user_hash(cmd.user_hash, cmd.ip, "", KickReason::conflict);
	kicking_++;
	fx.kicks.push_back({new_job(JobKind::admin_kick, 0), std::move(kick)});
}

JobId UserMoves::new_job(JobKind kind, uint64_t key)
{
	JobId id = next_job_++;
	jobs_[id] = Job{kind, key};
	return id;
}

void UserMoves::move(const DirectorHost *src, std::optional<RingOrigin> origin, uint32_t hash,
		     HostId host, Effects::MoveReason reason, Now now, Effects &fx)
{
	TagId tag = hosts_.get(host).tag;
	UserIndex u = users_.find(hash, tag);
	std::optional<HostId> old_host;
	if (u == no_user) {
		u = users_.insert(hash, tag, host, static_cast<uint32_t>(now.wall));
		if (u == no_user) {
			log_.log_with(LogLevel::error,
				      "User table is full: not moving user hash " + std::to_string(hash),
				      LogFields::user(hash));
			return;
		}
	} else {
		old_host = users_.host(u);
		if (*old_host != host)
			users_.set_host(u, host);
		// Stock updates a moved user's timestamp in place.
		users_.set_timestamp_in_place(u, static_cast<uint32_t>(now.wall));
	}
	if (!old_host || *old_host != host) {
		std::optional<IpAddr> from;
		if (old_host && hosts_.exists(*old_host))
			from = hosts_.get(*old_host).ip;
		fx.user_moves.push_back(
			{hash, hosts_.tag_name(tag), from, hosts_.get(host).ip, reason});
	}
	if (ring_.active()) {
		// Sent before the kill: the kill may finish at once.
		RingCommand mv;
		mv.kind = RingCommandKind::user_move;
		mv.origin = origin ? *origin : ring_.next_origin();
		mv.user_hash = hash;
		mv.ip = hosts_.get(host).ip;
		ring_.send(src, mv, fx);
	}
	bool self_initiated = src == ring_.self() || src == nullptr;
	uint64_t key = user_key(hash, tag);
	bool new_kill = kills_.count(key) == 0;
	kill(u, old_host, false, now, fx);
	if (new_kill && kills_.count(key) != 0)
		kills_[key].self_initiated = self_initiated;
}

void UserMoves::kill(UserIndex u, std::optional<HostId> old_host, bool forced, Now now,
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
	kill.started = now.mono;
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
		fx.kicks.push_back({kill.job, Kick::by_user_hash(users_.user_hash(u), std::nullopt,
								 hosts_.tag_name(users_.tag(u)),
								 KickReason::move)});
	} else {
		// Nothing of ours can be connected to another host: the user
		// was unknown here or already on the target host.
		finish_user_kill(key, now, fx);
	}
}

void UserMoves::finish_user_kill(uint64_t key, Now now, Effects &fx)
{
	auto it = kills_.find(key);
	KillContext &kill = it->second;
	kill.job = 0;
	if (ring_.has_right()) {
		// Tell the ring rightwards that we (and everyone on our left
		// that started before us) are done; USER-KILLED-EVERYWHERE
		// comes back when all are.
		if (kill.self_initiated || kill.state == KillState::killing_notify_received) {
			RingCommand k;
			k.kind = RingCommandKind::user_killed;
			k.user_hash = uint32_t(key);
			ring_.send_right(k, fx);
			kill.state = KillState::killed_waiting_for_everyone;
		} else {
			kill.state = KillState::killed_waiting_for_notify;
		}
		return;
	}
	flush_killed_user(key, now, fx);
}

void UserMoves::flush_killed_user(uint64_t key, Now now, Effects &fx)
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

void UserMoves::user_killed(uint32_t hash, Now now, Effects &fx)
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
			RingOrigin o = ring_.next_origin();
			user_killed_everywhere(ring_.self(), o, hash, now, fx);
			break;
		}
		case KillState::flushing:
		case KillState::delay: {
			// A restarted move: answer so that nobody hangs.
			RingCommand e;
			e.kind = RingCommandKind::user_killed_everywhere;
			e.origin = ring_.next_origin();
			e.user_hash = hash;
			ring_.send(ring_.self(), e, fx);
			break;
		}
		}
	}
}

void UserMoves::user_killed_everywhere(const DirectorHost *src, const RingOrigin &origin,
				      uint32_t hash, Now now, Effects &fx)
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
		ring_.send(src, e, fx);
	}
}

void UserMoves::finish_kill_delayed(uint64_t key, bool skip_delay, Now now, Effects &fx)
{
	if (skip_delay) {
		free_kill(key, now, fx);
		return;
	}
	KillContext &kill = kills_[key];
	kill.state = KillState::delay;
	kill.delay_until_msecs = now.mono_msecs + int64_t{config_.user_kick_delay_secs} * 1000;
	delay_ends_.emplace_back(kill.delay_until_msecs, key);
}

std::optional<int64_t> UserMoves::next_delay_end_msecs()
{
	while (!delay_ends_.empty()) {
		auto [at, key] = delay_ends_.front();
		auto it = kills_.find(key);
		if (it != kills_.end() && it->second.state == KillState::delay &&
		    it->second.delay_until_msecs == at)
			return at;
		delay_ends_.pop_front();
	}
	return std::nullopt;
}

void UserMoves::end_delays(Now now, Effects &fx)
{
	for (;;) {
		std::optional<int64_t> at = next_delay_end_msecs();
		if (!at || *at > now.mono_msecs)
			return;
		uint64_t key = delay_ends_.front().second;
		delay_ends_.pop_front();
		free_kill(key, now, fx);
	}
}

void UserMoves::free_kill(uint64_t key, Now now, Effects &fx)
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
	owner_.moves_ended(now, fx);
	run_reset_jobs(now, fx);
}

void UserMoves::kick_done(JobId id, bool ok, const std::string &error, Now now, Effects &fx)
{
	auto it = jobs_.find(id);
	if (it == jobs_.end())
		return;
	Job job = it->second;
	jobs_.erase(it);
	if (kicking_ > 0)
		kicking_--;
	if (!ok) {
		if (job.kind == JobKind::kill_kick)
			log_.log_with(LogLevel::error,
				      "Failed to kill user " + std::to_string(uint32_t(job.user_key)) +
					      " connections: " + error,
				      LogFields::user(uint32_t(job.user_key)));
		else
			log_.log(LogLevel::error, "Failed to kick user: " + error);
	}
	if (job.kind == JobKind::kill_kick) {
		auto kill = kills_.find(job.user_key);
		if (kill != kills_.end() && kill->second.job == id)
			finish_user_kill(job.user_key, now, fx);
	}
	run_queued_kicks(fx);
}

void UserMoves::flush_done(JobId id, bool ok, Now now, Effects &fx)
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

void UserMoves::kick_hash(uint32_t hash, const IpAddr &except, Effects &fx)
{
	kicking_++;
	fx.kicks.push_back({new_job(JobKind::admin_kick, 0),
			    Kick::by_user_hash(hash, except, "", KickReason::conflict)});
	if (!ring_.active())
		return;
	RingCommand k;
	k.kind = RingCommandKind::user_kick_hash;
	k.origin = ring_.next_origin();
	k.user_hash = hash;
	k.ip = except;
	ring_.send(ring_.self(), k, fx, ring_minor_user_kick);
}

void UserMoves::start_admin_kick(const QueuedKick &kick, Effects &fx)
{
	kicking_++;
	fx.kicks.push_back({new_job(JobKind::admin_kick, 0),
			    kick.field.empty()
				    ? Kick::by_user(kick.value, KickReason::admin)
				    : Kick::by_alt_field(kick.field, kick.value, KickReason::admin)});
	if (!ring_.active())
		return;
	RingCommand k;
	k.kind = kick.field.empty() ? RingCommandKind::user_kick : RingCommandKind::user_kick_alt;
	k.origin = ring_.next_origin();
	k.username = kick.value;
	k.field = kick.field;
	k.value = kick.value;
	ring_.send(ring_.self(), k, fx, ring_command_min_minor(k.kind));
}

AdminReply UserMoves::user_kick(JobId job, std::string_view kick_field, std::string_view value,
			       bool nowait, Effects &fx)
{
	QueuedKick kick{job, std::string(kick_field), std::string(value)};
	if (kicking_ < config_.max_parallel_kicks) {
		start_admin_kick(kick, fx);
		return AdminReply::now(AdminResult::ok);
	}
	if (nowait)
		return AdminReply::now(AdminResult::try_again);
	queued_kicks_.push_back(std::move(kick));
	return AdminReply::deferred();
}

void UserMoves::run_queued_kicks(Effects &fx)
{
	while (!queued_kicks_.empty() && kicking_ < config_.max_parallel_kicks) {
		QueuedKick kick = std::move(queued_kicks_.front());
		queued_kicks_.pop_front();
		start_admin_kick(kick, fx);
		fx.admin.push_back({kick.admin_job, AdminResult::ok});
	}
}

void UserMoves::admin_gone(JobId job)
{
	queued_kicks_.erase(std::remove_if(queued_kicks_.begin(), queued_kicks_.end(),
					   [job](const QueuedKick &k) { return k.admin_job == job; }),
			    queued_kicks_.end());
	for (ResetJob &reset : resets_) {
		if (reset.admin_job == job)
			reset.admin_present = false;
	}
}

AdminReply UserMoves::reset_users(JobId job, std::optional<IpAddr> ip, unsigned max_parallel,
				      Now now, Effects &fx)
{
	ResetJob reset;
	reset.admin_job = job;
	reset.max_parallel = max_parallel;
	reset.started_msecs = now.mono_msecs;
	for (HostId id : hosts_.sorted_ids()) {
		if (!ip || hosts_.get(id).ip == *ip)
			reset.hosts.push_back(hosts_.get(id).ip);
	}
	if (ip && reset.hosts.empty())
		return AdminReply::now(AdminResult::not_found);
	if (run_reset_job(reset, now, fx))
		return AdminReply::now(AdminResult::ok);
	resets_.push_back(std::move(reset));
	return AdminReply::deferred();
}

bool UserMoves::run_reset_job(ResetJob &job, Now now, Effects &fx)
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
				move(ring_.self(), std::nullopt, hash, new_host,
				     Effects::MoveReason::flush, now, fx);
			} else {
				// No usable host left: kick the user instead;
				// the host is flushed at the end.
				kill(u, host, true, now, fx);
				job.users_killed = true;
			}
			job.moved++;
		}
		if (job.user_idx < job.users.size())
			return false;
		if (job.users_killed) {
			owner_.flush_host(host, now, fx); // reports the flush
		} else {
			// A graceful flush (HOST-RESET-USERS) moved every user
			// away; report it like a forced one.
			const MailHost &h = hosts_.get(host);
			fx.host_flushes.push_back(
				{h.ip, hosts_.tag_name(h.tag), h.vhost_count, false});
		}
		job.host_idx++;
		job.snapshot_taken = false;
	}
	// Seconds to the millisecond, as stock logs them.
	int64_t msecs = now.mono_msecs - job.started_msecs;
	std::string millis = std::to_string(1000 + msecs % 1000).substr(1);
	log_.log(LogLevel::info, "Moved " + std::to_string(job.moved) + " users in " +
					 std::to_string(job.hosts.size()) + " hosts in " +
					 std::to_string(msecs / 1000) + "." + millis +
					 " secs (max parallel=" + std::to_string(job.max_parallel) +
					 ")");
	return true;
}

void UserMoves::run_reset_jobs(Now now, Effects &fx)
{
	for (size_t i = 0; i < resets_.size();) {
		if (run_reset_job(resets_[i], now, fx)) {
			if (resets_[i].admin_present)
				fx.admin.push_back({resets_[i].admin_job, AdminResult::ok});
			resets_.erase(resets_.begin() + static_cast<long>(i));
		} else {
			i++;
		}
	}
}

} // namespace director::core
