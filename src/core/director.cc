// The director façade (see director.h): lookups, notifies, expiry and the admin
// commands on hosts and users. No I/O and no clock here.
#include "director.h"

#include <algorithm>

#include "tab-escape.h"
#include "user-list.h"

namespace director::core {

Director::Director(DirectorConfig config, LogSink &log)
	: config_(std::move(config)), log_(log), users_(config_.max_users), ring_(config_, log_, hosts_, users_, *this),
	  moves_(config_, log_, users_, hosts_, ring_, *this)
{
	// Ring handshakes and checks then read the digests instead of adding up
	// every user (user-digest.h).
	users_.maintain_digests([this](HostId host) { return user_digest_host_key(hosts_.get(host).ip); });
}

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

bool Director::expired(UserIndex u, Now now) const
{
	return int64_t(users_.timestamp(u)) + config_.user_expire_secs <= now.wall;
}

UserIndex Director::find_live_user(uint32_t hash, TagId tag, Now now)
{
	UserIndex u = users_.find(hash, tag);
	if (u == no_user)
		return no_user;
	// Users being moved stay until their move finishes; expire the rest
	// lazily here, as the timer may not have reached them yet.
	if (expired(u, now) && !moves_.moving(hash, tag) && !users_.weak(u)) {
		users_.erase(u);
		return no_user;
	}
	return u;
}

bool Director::near_expiring(UserIndex u, Now now) const
{
	// clamp(10 % of director_user_expire, 3 s, 30 s) before expiry.
	int64_t near = std::clamp<int64_t>(config_.user_expire_secs / 10, 3, 30);
	return int64_t(users_.timestamp(u)) + (config_.user_expire_secs - near) < now.wall;
}

bool Director::recently_updated(UserIndex u, Now now) const
{
	return int64_t(users_.timestamp(u)) + config_.user_expire_secs / 2 >= now.wall;
}

// ---------------------------------------------------------------- lookups

void Director::lookup(RequestId id, std::string_view username, std::string_view tag, Now now,
		      Effects &fx)
{
	PendingLookup req{id, user_hash(username), std::string(tag), now.mono, DelayReason::none};
	if (!try_lookup(req, now, fx))
		lookups_.push(std::move(req));
}

bool Director::try_lookup(PendingLookup &req, Now now, Effects &fx)
{
	if (!ring_.handshaked()) {
		req.reason = DelayReason::ring_not_handshaked;
		return false;
	}
	auto tag = hosts_.find_tag(req.tag);
	// A tag no host has ever had has no hosts either.
	UserIndex u = tag ? find_live_user(req.user_hash, *tag, now) : no_user;
	HostId host;
	if (u != no_user) {
		if (moves_.moving(req.user_hash, *tag)) {
			req.reason = DelayReason::kill;
			return false;
		}
		if (!ring_.has_right() && ring_.synced()) {
			// Alone: nobody can disagree, so any leftover weakness goes.
			users_.set_weak(u, false);
		} else if (users_.weak(u)) {
			req.reason = DelayReason::weak;
			return false;
		} else if (near_expiring(u, now)) {
			// Another director may already have expired the user and
			// given it a new host: agree on one around the ring.
			HostId ring_host = hosts_.lookup(req.user_hash, *tag);
			if (!ring_.synced()) {
				req.reason = DelayReason::ring_not_synced;
				return false;
			}
			if (ring_host != users_.host(u) && ring_.min_version() >= ring_minor_weak_users) {
				users_.set_weak(u, true);
				RingCommand w;
				w.kind = RingCommandKind::user_weak;
				w.origin = ring_.next_origin();
				w.user_hash = req.user_hash;
				w.ip = hosts_.get(users_.host(u)).ip;
				ring_.send(ring_.self(), w, fx);
				req.reason = DelayReason::weak;
				return false;
			}
		}
		host = users_.host(u);
		refresh_user(u, now);
	} else {
		if (!ring_.synced()) {
			req.reason = DelayReason::ring_not_synced;
			return false;
		}
		host = tag ? hosts_.lookup(req.user_hash, *tag) : invalid_host;
		if (host == invalid_host) {
			req.reason = DelayReason::no_hosts;
			return false;
		}
		u = users_.insert(req.user_hash, *tag, host, static_cast<uint32_t>(now.wall));
		if (u == no_user) {
			// The table is full: answering with the hashed host would
			// leave the user unknown to the ring.
			log_.log_with(LogLevel::error,
				      "User table is full (" + std::to_string(users_.size()) +
					      " users): failing lookup of user hash " +
					      std::to_string(req.user_hash),
				      LogFields::user(req.user_hash));
			fx.lookups.push_back({req.id, std::nullopt, "User table is full"});
			return true;
		}
	}
	broadcast_user(ring_.self(), u, fx);
	const MailHost &h = hosts_.get(host);
	fx.lookups.push_back({req.id, HostAnswer{h.ip, h.hostname}, {}});
	return true;
}

void Director::cancel_lookup(RequestId id)
{
	lookups_.cancel(id);
}

void Director::retry_pending(Now now, Effects &fx)
{
	lookups_.retry([&](PendingLookup &req) { return try_lookup(req, now, fx); });
}

std::string Director::timeout_error(const PendingLookup &req, Now now)
{
	std::string s = "Timeout because ";
	s += delay_reason_text(req.reason);
	s += " - queued for " + std::to_string(now.mono - req.created) + " secs (";
	if (ring_.last_sync_time() == 0)
		s += "Ring has never been synced";
	else
		s += std::string(ring_.synced() ? "Ring synced for " : "Ring not synced for ") +
		     std::to_string(now.mono - ring_.last_sync_time()) + " secs";
	auto tag = hosts_.find_tag(req.tag);
	UserIndex u = tag ? users_.find(req.user_hash, *tag) : no_user;
	if (u != no_user) {
		if (users_.weak(u))
			s += ", weak user";
		s += ", user refreshed " + std::to_string(now.wall - users_.timestamp(u)) + " secs ago";
	}
	s += ", hash=" + std::to_string(req.user_hash);
	if (!req.tag.empty())
		s += ", tag=" + req.tag;
	s += ")";
	return s;
}

void Director::notify_alive(std::string_view username, Now now, Effects &fx)
{
	uint32_t hash = user_hash(username);
	for (TagId tag = 0; tag < hosts_.tag_count(); tag++) {
		UserIndex u = users_.find(hash, tag);
		if (u == no_user)
			continue;
		int64_t age = now.wall - users_.timestamp(u);
		if (age >= config_.user_expire_secs) {
			log_.log(LogLevel::warning, "notify: User " + quote_for_log(username) +
							    " refreshed too late (" +
							    std::to_string(age) + " secs)");
		}
		refresh_user(u, now);
		broadcast_user(ring_.self(), u, fx);
	}
}

void Director::tick(Now now, Effects &fx)
{
	run_idle_work(); // expiry goes oldest first
	// Expire users from the oldest. Users being moved are kept until their
	// move finishes, weak ones a while longer (then the weakness is stuck).
	for (UserIndex u = users_.oldest(); u != no_user;) {
		UserIndex next = users_.newer(u);
		if (!expired(u, now))
			break;
		if (moves_.moving(users_.user_hash(u), users_.tag(u))) {
			u = next;
			continue;
		}
		if (users_.weak(u) && int64_t(users_.timestamp(u)) + config_.user_expire_secs +
						     weak_user_stuck_extra_secs > now.wall) {
			u = next;
			continue;
		}
		if (users_.weak(u)) {
			log_.log_with(LogLevel::warning,
				      "User " + std::to_string(users_.user_hash(u)) +
					      " weakness appears to be stuck, removing it",
				      LogFields::user(users_.user_hash(u)));
		}
		users_.erase(u);
		u = next;
	}

	// Moves: end kick delays, time out stuck moves.
	moves_.tick(now, fx);

	// Lookups: time out the ones queued too long.
	for (PendingLookup &req : lookups_.take_timed_out(now)) {
		auto tag = hosts_.find_tag(req.tag);
		UserIndex u = tag ? users_.find(req.user_hash, *tag) : no_user;
		std::string error = timeout_error(req, now);
		if (u != no_user && req.reason == DelayReason::weak)
			users_.set_weak(u, false);
		fx.lookups.push_back({req.id, std::nullopt, error});
	}
	if (auto warning = lookups_.delay_warning(now))
		log_.log(LogLevel::warning, *warning);
	retry_pending(now, fx);
	moves_.run_reset_jobs(now, fx);
	ring_.tick(now, fx);
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
void Director::host_changed(HostId id, Now now, Effects &fx)
{
	send_host(ring_.self(), std::nullopt, id, now, fx);
	if (ring_.has_neighbours())
		hosts_.set_desynced(id, true);
	ring_.changed(now, fx);
	ring_state_changed(now, fx);
}

AdminReply Director::host_set(JobId job, const IpAddr &ip, std::string_view tag,
			      std::optional<unsigned> vhosts, bool update_only, Now now,
			      Effects &fx)
{
	if (vhosts && *vhosts > max_vhost_count)
		return AdminReply::now(AdminResult::vhost_count_too_large);
	HostId id = hosts_.find(ip);
	if (id == invalid_host) {
		if (update_only)
			return AdminReply::now(AdminResult::not_found);
		if (!hosts_.find_tag(tag) && hosts_.tag_count() > max_tag_id)
			return AdminReply::now(AdminResult::too_many_tags);
		auto added = hosts_.add(ip, tag, vhosts.value_or(default_vhost_count));
		if (!added)
			return AdminReply::now(AdminResult::too_many_hosts);
		id = *added;
	} else {
		const MailHost &h = hosts_.get(id);
		if (!tag.empty() && hosts_.tag_name(h.tag) != tag)
			return AdminReply::now(AdminResult::tag_cant_change);
		if (h.desynced)
			return AdminReply::now(AdminResult::host_being_updated);
		if (vhosts)
			hosts_.set_vhost_count(id, *vhosts);
	}
	host_changed(id, now, fx);
	return ring_.reply_after_sync(job, now);
}

AdminReply Director::host_set_down(JobId job, const IpAddr &ip, bool down, Now now,
				   Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return AdminReply::now(AdminResult::not_found);
	const MailHost &h = hosts_.get(id);
	if (h.down == down)
		return AdminReply::now(AdminResult::ok);
	if (h.desynced)
		return AdminReply::now(AdminResult::host_being_updated);
	hosts_.set_down(id, down, now.wall);
	host_changed(id, now, fx);
	return ring_.reply_after_sync(job, now);
}

AdminReply Director::host_remove(JobId job, const IpAddr &ip, Now now, Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return AdminReply::now(AdminResult::not_found);
	if (ring_.active()) {
		RingCommand rm;
		rm.kind = RingCommandKind::host_remove;
		rm.origin = ring_.next_origin();
		rm.ip = ip;
		ring_.send(ring_.self(), rm, fx);
	}
	erase_users_of_host(id);
	hosts_.remove(id);
	ring_.changed(now, fx);
	return ring_.reply_after_sync(job, now);
}

void Director::flush_host(HostId id, Now now, Effects &fx)
{
	if (ring_.active()) {
		RingCommand fl;
		fl.kind = RingCommandKind::host_flush;
		fl.origin = ring_.next_origin();
		fl.ip = hosts_.get(id).ip;
		ring_.send(ring_.self(), fl, fx);
	}
	const MailHost &h = hosts_.get(id);
	fx.host_flushes.push_back({h.ip, hosts_.tag_name(h.tag), h.vhost_count, false});
	erase_users_of_host(id);
	ring_.changed(now, fx);
}

AdminReply Director::host_flush(JobId job, std::optional<IpAddr> ip, Now now, Effects &fx)
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
		return AdminReply::now(AdminResult::ok);
	}
	HostId id = hosts_.find(*ip);
	if (id == invalid_host)
		return AdminReply::now(AdminResult::not_found);
	flush_host(id, now, fx);
	return ring_.reply_after_sync(job, now);
}

bool Director::health_set_down(const IpAddr &ip, Now now, Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return false;
	const MailHost &h = hosts_.get(id);
	if (h.down || h.desynced)
		return false;
	// One step: the HOST change and the HOST-FLUSH leave in the same batch,
	// in this order, so no peer sees the flush without the down.
	hosts_.set_down(id, true, now.wall);
	host_changed(id, now, fx);
	flush_host(id, now, fx);
	return true;
}

bool Director::health_set_up(const IpAddr &ip, Now now, Effects &fx)
{
	HostId id = hosts_.find(ip);
	if (id == invalid_host)
		return false;
	const MailHost &h = hosts_.get(id);
	if (!h.down || h.desynced)
		return false;
	hosts_.set_down(id, false, now.wall);
	host_changed(id, now, fx);
	return true;
}

UserLookup Director::user_lookup(uint32_t hash, std::string_view tag_name, Now now)
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

std::unique_ptr<UserList> Director::user_listing(std::optional<IpAddr> ip)
{
	return std::make_unique<UserList>(users_, hosts_, std::move(ip), config_.user_expire_secs);
}

AdminReply Director::user_move(uint32_t hash, const IpAddr &ip, Now now, Effects &fx)
{
	HostId host = hosts_.find(ip);
	if (host == invalid_host)
		return AdminReply::now(AdminResult::not_found);
	TagId tag = hosts_.get(host).tag;
	UserIndex u = users_.find(hash, tag);
	if (u != no_user && moves_.moving(hash, tag))
		return AdminReply::now(AdminResult::try_again);
	if (u != no_user && users_.host(u) == host) {
		refresh_user(u, now);
		broadcast_user(ring_.self(), u, fx);
		return AdminReply::now(AdminResult::ok);
	}
	moves_.move(ring_.self(), std::nullopt, hash, host, Effects::MoveReason::admin, now, fx);
	return AdminReply::now(AdminResult::ok);
}

// ---------------------------------------------------------------- parts

void Director::kick_done(JobId id, bool ok, const std::string &error, Now now, Effects &fx)
{
	moves_.kick_done(id, ok, error, now, fx);
}

void Director::flush_done(JobId id, bool ok, Now now, Effects &fx)
{
	moves_.flush_done(id, ok, now, fx);
}

AdminReply Director::host_reset_users(JobId job, std::optional<IpAddr> ip, unsigned max_parallel,
				      Now now, Effects &fx)
{
	return moves_.reset_users(job, ip, max_parallel, now, fx);
}

AdminReply Director::user_kick(JobId job, std::string_view kick_field, std::string_view value,
			       bool nowait, Effects &fx)
{
	return moves_.user_kick(job, kick_field, value, nowait, fx);
}

void Director::admin_gone(JobId job)
{
	moves_.admin_gone(job);
}

void Director::ring_start(const std::vector<RingDirectorConfig> &directors, const IpAddr &self_ip,
			  uint16_t self_port, Now now, Effects &fx)
{
	if (restored_ && directors.size() > 1)
		ring_.hold_user_streams(now.mono + ring_restore_hold_secs);
	ring_.start(directors, self_ip, self_port, now, fx);
}

RingConnId Director::ring_accept(const IpAddr &remote, Now now, Effects &fx)
{
	return ring_.accept(remote, now, fx);
}

void Director::ring_connected(RingConnId id, Now now, Effects &fx)
{
	ring_.connected(id, now, fx);
}

void Director::ring_line(RingConnId id, std::string_view line, Now now, Effects &fx)
{
	ring_.line(id, line, now, fx);
}

void Director::ring_closed(RingConnId id, const std::string &reason, Now now, Effects &fx)
{
	ring_.closed(id, reason, now, fx);
}

void Director::ring_shutdown(Now now, Effects &fx)
{
	ring_.shutdown(now, fx);
}

void Director::ring_drained(RingConnId id, Now now, Effects &fx)
{
	ring_.drained(id, now, fx);
}

bool Director::ring_heartbeat(Now now, Effects &fx)
{
	return ring_.heartbeat(now, fx);
}

int64_t Director::director_last_sync_seen(const IpAddr &ip, uint16_t port) const
{
	return ring_.director_last_sync_seen(ip, port);
}

std::vector<DirectorListEntry> Director::director_list(Now now) const
{
	return ring_.director_list(now);
}

AdminReply Director::director_add(const IpAddr &ip, std::optional<uint16_t> port, Now now,
				  Effects &fx)
{
	return ring_.director_add(ip, port, now, fx);
}

AdminReply Director::director_remove(JobId job, const IpAddr &ip, std::optional<uint16_t> port,
				     Now now, Effects &fx)
{
	return ring_.director_remove(job, ip, port, now, fx);
}

bool Director::admin_may_run(JobId job)
{
	return ring_.admin_may_run(job);
}

} // namespace director::core
