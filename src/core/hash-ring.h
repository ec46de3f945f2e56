// The consistent-hash ring of one tag: vhost points of every usable host,
// sorted, and the lookup rule of the stock director. No I/O here.
#pragma once

#include <cstdint>
#include <vector>

#include "ids.h"
#include "ip-addr.h"

namespace director::core {

class HashRing {
public:
	struct Member {
		HostId id;
		IpAddr ip;
		unsigned vhost_count;
	};

	// Builds the points of `members` (callers pass only usable hosts):
	// point i of a host is md5_prefix_be32("<ip>-<i>"); ties are ordered
	// by IP so every director has the same order.
	explicit HashRing(const std::vector<Member> &members);

	// The first point >= user_hash, wrapping to the first point;
	// invalid_host when the ring is empty. O(log points).
	HostId lookup(uint32_t user_hash) const;
	bool empty() const { return points_.empty(); }
	size_t point_count() const { return points_.size(); }

private:
	struct Point {
		uint32_t value;
		HostId host;
	};
	std::vector<Point> points_;
};

} // namespace director::core
