// DirectorList: the directors of the ring (director_servers, those added at runtime and
// those peers told us about), in ring order (by IP, then port), indexed by ip:port and
// capped. Holds per-director ring bookkeeping (sequences, failures). No I/O here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ip-addr.h"
#include "ring-protocol.h"

namespace director::core {

// The most directors a ring may list. Stock has no limit, and every DIRECTOR or
// CONNECT line from a peer would add one; real rings have a handful.
constexpr size_t max_ring_directors = 1024;

// One director of the ring, as this director knows it.
struct DirectorHost {
	IpAddr ip;
	uint16_t port = 0;
	bool self = false;
	bool removed = false;
	// Times are Now::mono seconds, except last_sync_timestamp (the peer's wall clock).
	int64_t removed_at = 0;
	uint32_t last_seq = 0;
	uint32_t last_sync_seq = 0;
	int64_t last_sync_timestamp = 0; // from its SYNC lines
	int64_t last_sync_seen = 0; // for health heartbeats
	unsigned sync_duplicates = 0;
	std::optional<uint32_t> bad_hosts_hash; // first wrong SYNC hosts_hash seen
	int64_t last_network_failure = 0;
	int64_t last_protocol_failure = 0;
	std::optional<RingCommand> delayed_sync;
	// When we last sent a DIRECTOR line for it (-1: never). Within the same second it
	// is not forwarded again, which ends the DIRECTOR storms that extra connections
	// (directors joining at once) would otherwise loop forever; stock forwards every
	// time.
	int64_t director_sent_at = -1;
	std::string name() const { return ip.to_string() + ":" + std::to_string(port); }

	// The director may have restarted: its sequences start again.
	void reset_sequences()
	{
		last_seq = 0;
		last_sync_seq = 0;
		last_sync_timestamp = 0;
		sync_duplicates = 0;
	}
};

// Owns the DirectorHost objects; pointers to them stay valid until purge() removes them.
// find() and listed() are O(1) expected, add() O(n) (the ring order is a sorted vector).
class DirectorList {
public:
	DirectorList() = default;
	DirectorList(const DirectorList &) = delete;
	DirectorList &operator=(const DirectorList &) = delete;

	DirectorHost *find(const IpAddr &ip, uint16_t port) const;
	// The first director with this IP (any port when `port` is nullopt).
	DirectorHost *find_any(const IpAddr &ip, std::optional<uint16_t> port) const;
	// True when a director with this IP is listed and not removed.
	bool listed(const IpAddr &ip) const;
	// Adds a director that find() does not know. nullptr when the list is full.
	DirectorHost *add(const IpAddr &ip, uint16_t port);
	bool full() const { return dirs_.size() >= max_ring_directors; }

	void set_self(DirectorHost *self) { self_ = self; self_->self = true; }
	DirectorHost *self() const { return self_; }

	// > 0 when `a` is closer to our right than `b`, < 0 when farther, 0 equal.
	int cmp_to_self(const DirectorHost *a, const DirectorHost *b) const;
	// The next director after us in ring order that is not removed.
	DirectorHost *preferred_right() const;
	// The i-th director after us in ring order (i in [1, size())).
	DirectorHost *after_self(size_t i) const;
	// True when a director other than us is listed and not removed.
	bool others() const;

	// Forgets removed directors for which `in_use` is false.
	template <typename InUse> void purge(InUse in_use)
	{
		for (size_t i = 0; i < dirs_.size();) {
			DirectorHost *h = dirs_[i].get();
			if (h->removed && !h->self && !in_use(h)) {
				index_.erase(key(h->ip, h->port));
				dirs_.erase(dirs_.begin() + static_cast<long>(i));
			} else {
				i++;
			}
		}
	}

	size_t size() const { return dirs_.size(); }
	const std::vector<std::unique_ptr<DirectorHost>> &all() const { return dirs_; }

private:
	static std::string key(const IpAddr &ip, uint16_t port);
	size_t position(const DirectorHost *h) const;

	std::vector<std::unique_ptr<DirectorHost>> dirs_; // sorted by ip, port
	std::unordered_map<std::string, DirectorHost *> index_;
	DirectorHost *self_ = nullptr;
};

} // namespace director::core
