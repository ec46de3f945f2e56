// The director's side of the state file: restoring a snapshot at startup and taking
// one (state-file.h, state-snapshot.h). No I/O here.
#include "director.h"

#include <algorithm>

#include "state-snapshot.h"

namespace director::core {

StateRestore Director::restore_state(const StateFile &file, Now now)
{
	StateRestore r;
	const StateHeader &h = file.header();

	// The host list as the ring last agreed it replaces the configured one (the
	// "Initial config" list stays as configured). No users exist yet.
	for (HostId id : hosts_.sorted_ids()) {
		users_.erase_host(id);
		hosts_.remove(id);
	}
	std::vector<HostId> ids(h.hosts.size(), invalid_host);
	for (size_t i = 0; i < h.hosts.size(); i++) {
		const StateHost &sh = h.hosts[i];
		if (hosts_.find(sh.ip) != invalid_host)
			continue; // listed twice: the first one counts
		auto id = hosts_.add(sh.ip, h.tags[sh.tag],
				     std::min<unsigned>(sh.vhost_count, max_vhost_count));
		if (!id)
			break;
		if (!sh.hostname.empty())
			hosts_.set_hostname(*id, sh.hostname);
		// set_down() records the time only for a real change: go through the
		// opposite state when the host has a change time.
		if (sh.last_updown_change != 0 && !sh.down)
			hosts_.set_down(*id, true, sh.last_updown_change);
		if (sh.last_updown_change != 0 || sh.down)
			hosts_.set_down(*id, sh.down, sh.last_updown_change);
		ids[i] = *id;
		r.hosts++;
	}

	// Users that expired while we were down are dropped; the others keep their
	// stored timestamps, as if learned from a peer. A user listed twice (the
	// snapshot met it again after a refresh) keeps its newest entry. The file's
	// users go into the table as one bulk load (UserTable::load_begin()): the
	// snapshot wrote them in expiry order, so they form one sorted run.
	// Per host of the file: its id here and its tag (invalid_host when not kept);
	// per tag of the file: its id here, or no_tag.
	constexpr uint32_t no_tag = UINT32_MAX;
	std::vector<uint32_t> tag_ids(h.tags.size(), no_tag);
	for (size_t t = 0; t < h.tags.size(); t++) {
		std::optional<TagId> tag = hosts_.find_tag(h.tags[t]);
		if (tag && *tag <= max_tag_id)
			tag_ids[t] = *tag;
	}
	std::vector<uint32_t> host_tags(h.hosts.size(), no_tag);
	for (size_t i = 0; i < h.hosts.size(); i++) {
		if (ids[i] != invalid_host)
			host_tags[i] = hosts_.get(ids[i]).tag;
	}
	int64_t expire = config_.user_expire_secs;
	size_t added = 0;
	users_.load_begin(file.user_count());
	for (uint64_t i = 0; i < file.user_count(); i++) {
		StateUser u = file.user(i);
		HostId host = ids[u.host];
		uint32_t tag = tag_ids[u.tag];
		if (host == invalid_host || tag == no_tag || tag != host_tags[u.host]) {
			r.skipped++;
			continue;
		}
		if (int64_t(u.timestamp) + expire <= now.wall) {
			r.expired++;
			continue;
		}
		uint32_t ts = uint32_t(std::min<int64_t>(u.timestamp, now.wall));
		if (!users_.load_add(u.user_hash, TagId(tag), host, ts))
			break; // table full
		added++;
	}
	r.users = added - users_.load_end();

	for (const StateDirector &d : h.directors)
		r.directors.push_back(RingDirectorConfig{d.ip, d.port});
	ring_.restore_sequences(h.sync_seq, h.last_seq);
	restored_ = true;
	return r;
}

std::unique_ptr<StateSnapshot> Director::state_snapshot(const std::array<uint8_t, 16> &identity,
							Now now)
{
	StateHeader h;
	h.identity = identity;
	h.written_at = now.wall;
	h.sync_seq = ring_.sync_seq();
	if (const DirectorHost *self = ring_.self())
		h.last_seq = self->last_seq;
	for (const DirectorListEntry &e : ring_.director_list(now)) {
		if (e.ip && e.type != "removed")
			h.directors.push_back(StateDirector{*e.ip, e.port});
	}
	return std::make_unique<StateSnapshot>(users_, hosts_, std::move(h));
}

} // namespace director::core
