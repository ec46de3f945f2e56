// The mail hosts (backends) a director knows: address, optional host name,
// tag, vhost count, up/down state, and the per-tag consistent-hash rings built
// from them. Also the SYNC hosts_hash fingerprint. No I/O here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hash-ring.h"
#include "ids.h"
#include "ip-addr.h"

namespace director::core {

struct MailHost {
	IpAddr ip;
	std::string hostname; // empty unless the host came from a DNS name
	TagId tag = default_tag;
	unsigned vhost_count = default_vhost_count;
	bool down = false;
	// Unix time of the last up/down change; 0 = never changed.
	int64_t last_updown_change = 0;
	// Changed locally (or by a conflicting update) since the ring last synced.
	bool desynced = false;
};

class HostList {
public:
	HostList();

	// Adds a host that must not exist yet; returns its id. Fails only when
	// the id space (65535 hosts) is exhausted.
	std::optional<HostId> add(const IpAddr &ip, std::string_view tag,
				  unsigned vhost_count = default_vhost_count);
	// Removes a host. The caller forgets the host's users first.
	void remove(HostId id);

	HostId find(const IpAddr &ip) const;
	const MailHost &get(HostId id) const { return *slots_[id]; }
	bool exists(HostId id) const { return id < slots_.size() && slots_[id].has_value(); }
	size_t size() const { return count_; }

	// Mutators; each invalidates the hash rings where it matters.
	void set_vhost_count(HostId id, unsigned vhost_count);
	// Records `timestamp` as the last up/down change only when the state
	// actually changes, as stock does: a host learned "up" from a peer
	// keeps no change time ("-" in doveadm director status).
	void set_down(HostId id, bool down, int64_t timestamp);
	void set_tag(HostId id, std::string_view tag);
	void set_hostname(HostId id, std::string_view hostname);
	void set_desynced(HostId id, bool desynced);
	// Clears every host's desynced flag (the ring synced).
	void clear_desynced();

	// Host ids ordered by IP as the stock director orders them.
	std::vector<HostId> sorted_ids() const;

	// Tags: 0 is the empty tag; ids of a name are stable for the list's life.
	TagId tag_id(std::string_view name);
	std::optional<TagId> find_tag(std::string_view name) const;
	const std::string &tag_name(TagId tag) const { return tag_names_[tag]; }
	bool have_tags() const;
	// Tag ids run from 0 to tag_count() - 1.
	size_t tag_count() const { return tag_names_.size(); }

	// The host the hash ring of `tag` gives `user_hash`, or invalid_host
	// when the tag has no usable (up, vhost_count > 0) host.
	HostId lookup(uint32_t user_hash, TagId tag) const;
	bool have_usable_hosts(TagId tag) const;

	// Changes whenever a host is added or removed, i.e. whenever an id may
	// start to mean another address: lets callers cache ip -> id.
	uint64_t ids_generation() const { return ids_generation_; }

	// The SYNC fingerprint (hashing-and-state.md §7), bit-exact with stock.
	uint32_t hosts_hash() const;

private:
	const HashRing &ring(TagId tag) const;
	void invalidate_rings() const;

	std::vector<std::optional<MailHost>> slots_;
	std::vector<HostId> free_ids_;
	size_t count_ = 0;
	uint64_t ids_generation_ = 0;
	std::vector<std::string> tag_names_;
	mutable std::vector<std::optional<HashRing>> rings_; // by tag, built lazily
};

} // namespace director::core
