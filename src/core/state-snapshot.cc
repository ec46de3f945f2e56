// StateSnapshot: header from the host list, users over a table cursor. No I/O here.
#include "state-snapshot.h"

namespace director::core {

StateHeader StateSnapshot::with_hosts(const HostList &hosts, StateHeader header,
				      std::vector<uint16_t> &index_of_id_r)
{
	header.tags.clear();
	for (size_t t = 0; t < hosts.tag_count(); t++)
		header.tags.push_back(hosts.tag_name(TagId(t)));
	header.hosts.clear();
	for (HostId id : hosts.sorted_ids()) {
		const MailHost &h = hosts.get(id);
		StateHost sh;
		sh.ip = h.ip;
		sh.hostname = h.hostname;
		sh.tag = h.tag;
		sh.vhost_count = h.vhost_count;
		sh.down = h.down;
		sh.last_updown_change = h.last_updown_change;
		if (index_of_id_r.size() <= id)
			index_of_id_r.resize(size_t(id) + 1, no_index);
		index_of_id_r[id] = uint16_t(header.hosts.size());
		header.hosts.push_back(std::move(sh));
	}
	return header;
}

StateSnapshot::StateSnapshot(UserTable &users, const HostList &hosts, StateHeader header)
	: users_(users), hosts_(hosts), header_(with_hosts(hosts, std::move(header), index_of_id_)),
	  enc_(header_), cursor_(users.open_cursor()), ids_generation_(hosts.ids_generation())
{
}

StateSnapshot::~StateSnapshot()
{
	users_.close_cursor(cursor_);
}

bool StateSnapshot::host_index(HostId id, uint16_t &index_r)
{
	if (hosts_.ids_generation() == ids_generation_) {
		if (id >= index_of_id_.size() || index_of_id_[id] == no_index)
			return false;
		index_r = index_of_id_[id];
		return true;
	}
	// Hosts were added or removed since the header was made: an id may now name
	// another address, so go by address (rare, and only until the snapshot ends).
	if (!hosts_.exists(id))
		return false;
	const IpAddr &ip = hosts_.get(id).ip;
	for (size_t i = 0; i < header_.hosts.size(); i++) {
		if (header_.hosts[i].ip == ip) {
			index_r = uint16_t(i);
			return true;
		}
	}
	return false;
}

bool StateSnapshot::next_chunk(std::string &out, size_t max_bytes)
{
	if (done_)
		return true;
	while (enc_.pending_bytes() < max_bytes) {
		UserIndex u = users_.cursor_next(cursor_);
		if (u == no_user) {
			out += enc_.take();
			out += enc_.finish();
			done_ = true;
			return true;
		}
		uint16_t index;
		if (!host_index(users_.host(u), index))
			continue;
		StateUser su;
		su.user_hash = users_.user_hash(u);
		su.timestamp = users_.timestamp(u);
		su.host = index;
		su.tag = users_.tag(u);
		su.weak = users_.weak(u);
		if (su.tag >= header_.tags.size() || su.tag != header_.hosts[index].tag)
			continue; // a tag made (or a host re-tagged) after the header
		enc_.add_user(su);
	}
	out += enc_.take();
	return false;
}

} // namespace director::core
