// Vhost point generation and lookup. No I/O here.
#include "hash-ring.h"

#include <algorithm>
#include <string>

#include "digest.h"

namespace director::core {

HashRing::HashRing(const std::vector<Member> &members)
{
	struct Tmp {
		uint32_t value;
		size_t member;
	};
	std::vector<Tmp> tmp;
	size_t total = 0;
	for (const Member &m : members)
		total += m.vhost_count;
	tmp.reserve(total);
	for (size_t mi = 0; mi < members.size(); mi++) {
		std::string prefix = members[mi].ip.to_string() + "-";
		for (unsigned i = 0; i < members[mi].vhost_count; i++)
			tmp.push_back({md5_prefix_be32(prefix + std::to_string(i)), mi});
	}
	std::sort(tmp.begin(), tmp.end(), [&](const Tmp &a, const Tmp &b) {
		if (a.value != b.value)
			return a.value < b.value;
		return members[a.member].ip < members[b.member].ip;
	});
	points_.reserve(tmp.size());
	for (const Tmp &t : tmp)
		points_.push_back({t.value, members[t.member].id});
}

HostId HashRing::lookup(uint32_t user_hash) const
{
	if (points_.empty())
		return invalid_host;
	auto it = std::lower_bound(points_.begin(), points_.end(), user_hash,
				   [](const Point &p, uint32_t h) { return p.value < h; });
	if (it == points_.end())
		it = points_.begin();
	return it->host;
}

} // namespace director::core
