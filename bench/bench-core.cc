// Micro-benchmark of the core's UserTable: ns per lookup (hit and miss), insert, refresh and
// expire+insert churn, a handshake-style unsorted fill plus sort_by_timestamp(), and bytes
// per user (memory_bytes() and the process RSS delta) at 1M and 10M users.
#include "user-table.h"

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

using namespace director::core;

namespace {

// murmur3's fmix32: a bijection, so distinct inputs give distinct, well-spread user hashes
// without storing a key array (which would pollute the RSS figure).
inline uint32_t user_hash_of(uint32_t i)
{
	i ^= i >> 16;
	i *= 0x85ebca6bu;
	i ^= i >> 13;
	i *= 0xc2b2ae35u;
	i ^= i >> 16;
	return i;
}

inline TagId tag_of(uint32_t i)
{
	return static_cast<TagId>(i % 4);
}

// Keys of absent users: fed from a range no present user comes from.
constexpr uint32_t miss_base = 0x40000000u;
constexpr uint32_t churn_base = 0x80000000u;

size_t rss_bytes()
{
	long size = 0, resident = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");
	if (f == nullptr)
		return 0;
	if (std::fscanf(f, "%ld %ld", &size, &resident) != 2)
		resident = 0;
	std::fclose(f);
	return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

class Stopwatch {
public:
	Stopwatch() : start_(std::chrono::steady_clock::now()) {}
	double ns_per(size_t ops) const
	{
		std::chrono::duration<double, std::nano> d =
			std::chrono::steady_clock::now() - start_;
		return d.count() / static_cast<double>(ops);
	}

private:
	std::chrono::steady_clock::time_point start_;
};

struct Row {
	size_t users;
	double insert_ns, hit_ns, miss_ns, refresh_ns, churn_ns;
	double table_bytes, rss_bytes;
	double unsorted_insert_ns, sort_ms;
};

Row run(uint32_t n)
{
	Row row{};
	row.users = n;
	const uint32_t ops = n < 4000000 ? n : 4000000;
	const uint32_t t0 = 1700000000;
	std::mt19937 rng(12345);
	volatile uint64_t sink = 0;

	size_t rss_before = rss_bytes();
	auto table = std::make_unique<UserTable>();
	UserTable &t = *table;

	// Fill: 1000 logins per second, 50 mail hosts, 4 tags.
	Stopwatch sw_insert;
	for (uint32_t i = 0; i < n; i++)
		t.insert(user_hash_of(i), tag_of(i), static_cast<HostId>(i % 50), t0 + i / 1000);
	row.insert_ns = sw_insert.ns_per(n);
	row.table_bytes = static_cast<double>(t.memory_bytes()) / t.size();
	row.rss_bytes = static_cast<double>(rss_bytes() - rss_before) / t.size();

	// Random hits, then misses of the same key shape.
	uint64_t found = 0;
	Stopwatch sw_hit;
	for (uint32_t k = 0; k < ops; k++) {
		uint32_t i = rng() % n;
		found += t.find(user_hash_of(i), tag_of(i)) != no_user;
	}
	row.hit_ns = sw_hit.ns_per(ops);
	Stopwatch sw_miss;
	for (uint32_t k = 0; k < ops; k++) {
		uint32_t i = miss_base + k;
		found += t.find(user_hash_of(i), tag_of(i)) != no_user;
	}
	row.miss_ns = sw_miss.ns_per(ops);
	if (found != ops)
		std::fprintf(stderr, "bench: expected %u hits, got %llu\n", ops,
			     static_cast<unsigned long long>(found));

	// Refresh random users to "now": the common append-at-newest path.
	uint32_t now = t0 + n / 1000 + 1;
	std::vector<UserIndex> picks(ops);
	for (uint32_t k = 0; k < ops; k++) {
		uint32_t i = rng() % n;
		picks[k] = t.find(user_hash_of(i), tag_of(i));
	}
	Stopwatch sw_refresh;
	for (uint32_t k = 0; k < ops; k++)
		t.refresh(picks[k], now + k / 1000);
	row.refresh_ns = sw_refresh.ns_per(ops);
	picks = std::vector<UserIndex>();
	now += ops / 1000 + 1;

	// Steady state: expire the oldest user, admit a new one.
	Stopwatch sw_churn;
	for (uint32_t k = 0; k < ops; k++) {
		t.erase(t.oldest());
		uint32_t i = churn_base + k;
		t.insert(user_hash_of(i), tag_of(i), static_cast<HostId>(k % 50), now + k / 1000);
	}
	row.churn_ns = sw_churn.ns_per(ops);
	sink = sink + t.size();
	table.reset();

	// Handshake-like fill: timestamps in random order over the expiry window, then the sort
	// the caller runs when the handshake ends.
	table = std::make_unique<UserTable>();
	Stopwatch sw_unsorted;
	for (uint32_t i = 0; i < n; i++)
		table->insert(user_hash_of(i), tag_of(i), static_cast<HostId>(i % 50),
			      t0 + rng() % 900);
	row.unsorted_insert_ns = sw_unsorted.ns_per(n);
	Stopwatch sw_sort;
	table->sort_by_timestamp();
	row.sort_ms = sw_sort.ns_per(1) / 1e6;
	sink = sink + table->timestamp(table->oldest());
	return row;
}

} // namespace

int main()
{
	std::printf("UserTable micro-benchmark (per-op averages; lookups and refreshes use up "
		    "to 4M random keys)\n\n");
	std::printf("%10s %9s %9s %9s %9s %9s | %12s %12s | %12s %9s\n", "users", "insert",
		    "find-hit", "find-miss", "refresh", "churn", "table B/user", "RSS B/user",
		    "unsorted-ins", "sort");
	std::printf("%10s %9s %9s %9s %9s %9s | %12s %12s | %12s %9s\n", "", "ns", "ns", "ns", "ns",
		    "ns", "", "", "ns", "ms");
	for (uint32_t n : {1000000u, 10000000u}) {
		Row r = run(n);
		std::printf("%10zu %9.1f %9.1f %9.1f %9.1f %9.1f | %12.1f %12.1f | %12.1f %9.1f\n",
			    r.users, r.insert_ns, r.hit_ns, r.miss_ns, r.refresh_ns, r.churn_ns,
			    r.table_bytes, r.rss_bytes, r.unsorted_insert_ns, r.sort_ms);
		std::fflush(stdout);
	}
	std::printf("\nchurn = erase(oldest()) + insert(); unsorted-ins = insert with random "
		    "timestamps (ring handshake), sort = sort_by_timestamp() afterwards.\n");
	return 0;
}
