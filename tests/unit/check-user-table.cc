// Check suite for core::UserTable: lookups, index collisions and growth, deletion against a
// model, expiry order, per-host counts and the memory budget.
#include "user-table.h"

#include <check.h>

#include "check-main.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace director::core;

namespace {

// Walks the expiry list both ways and checks that it holds exactly size() entries with
// consistent links, oldest first when the table claims to be sorted.
void verify_list(const UserTable &t)
{
	size_t n = 0;
	UserIndex prev = no_user;
	for (UserIndex u = t.oldest(); u != no_user; u = t.newer(u)) {
		ck_assert_uint_eq(t.older(u), prev);
		if (prev != no_user && t.sorted())
			ck_assert_uint_le(t.timestamp(prev), t.timestamp(u));
		prev = u;
		ck_assert_uint_le(++n, t.size());
	}
	ck_assert_uint_eq(n, t.size());
	ck_assert_uint_eq(t.newest(), prev);
}

// The table's slot mix (murmur3's finalizer over tag:hash), copied here so tests can build
// keys that share a home slot and fingerprint. If the table's mix changes, these tests still
// pass; they just lose their adversarial edge.
uint64_t test_key_hash(uint32_t user_hash, TagId tag)
{
	uint64_t x = (uint64_t{tag} << 32) | user_hash;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

} // namespace

// ---- lookup ----

START_TEST(test_user_table_insert_then_find_returns_its_fields)
{
	UserTable t;
	ck_assert_uint_eq(t.find(42, 0), no_user);
	UserIndex u = t.insert(42, 3, 7, 1000);
	ck_assert_uint_ne(u, no_user);
	ck_assert_uint_eq(t.find(42, 3), u);
	ck_assert_uint_eq(t.user_hash(u), 42);
	ck_assert_uint_eq(t.tag(u), 3);
	ck_assert_uint_eq(t.host(u), 7);
	ck_assert_uint_eq(t.timestamp(u), 1000);
	ck_assert(!t.weak(u));
	ck_assert(!t.kill_pending(u));
	ck_assert_uint_eq(t.size(), 1);
	ck_assert_uint_eq(t.find(42, 0), no_user);
	ck_assert_uint_eq(t.find(43, 3), no_user);
}
END_TEST

START_TEST(test_user_table_same_hash_in_two_tags_is_independent)
{
	UserTable t;
	UserIndex a = t.insert(0xdeadbeef, 0, 1, 100);
	UserIndex b = t.insert(0xdeadbeef, max_tag_id, 2, 200);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_eq(t.find(0xdeadbeef, 0), a);
	ck_assert_uint_eq(t.find(0xdeadbeef, max_tag_id), b);
	ck_assert_uint_eq(t.host(a), 1);
	ck_assert_uint_eq(t.host(b), 2);

	t.erase(a);
	ck_assert_uint_eq(t.find(0xdeadbeef, 0), no_user);
	ck_assert_uint_eq(t.find(0xdeadbeef, max_tag_id), b);
	ck_assert_uint_eq(t.tag(b), max_tag_id);
	ck_assert_uint_eq(t.size(), 1);
}
END_TEST

START_TEST(test_user_table_erase_forgets_only_that_user_and_reuses_its_index)
{
	UserTable t;
	UserIndex a = t.insert(1, 0, 1, 10);
	UserIndex b = t.insert(2, 0, 1, 11);
	UserIndex c = t.insert(3, 0, 1, 12);
	t.erase(b);
	ck_assert_uint_eq(t.find(2, 0), no_user);
	ck_assert_uint_eq(t.find(1, 0), a);
	ck_assert_uint_eq(t.find(3, 0), c);
	ck_assert_uint_eq(t.size(), 2);
	verify_list(t);

	UserIndex d = t.insert(4, 0, 1, 13);
	ck_assert_uint_eq(d, b);
	ck_assert_uint_eq(t.user_hash(d), 4);
	ck_assert_uint_eq(t.find(4, 0), d);
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_erasing_everything_leaves_an_empty_usable_table)
{
	UserTable t;
	for (uint32_t i = 0; i < 1000; i++)
		t.insert(i, 0, 0, i);
	for (uint32_t i = 0; i < 1000; i++)
		t.erase(t.find(i, 0));
	ck_assert_uint_eq(t.size(), 0);
	ck_assert_uint_eq(t.oldest(), no_user);
	ck_assert_uint_eq(t.newest(), no_user);
	ck_assert(t.sorted());
	ck_assert_uint_eq(t.find(5, 0), no_user);
	UserIndex u = t.insert(5, 0, 0, 1);
	ck_assert_uint_eq(t.find(5, 0), u);
	verify_list(t);
}
END_TEST

// ---- index ----

START_TEST(test_user_table_keys_sharing_a_slot_and_fingerprint_are_all_found)
{
	// With 16..64 users the index has 64 slots at most; collect keys whose top 6 bits
	// (home slot at 64 slots) and fingerprint are equal, so every lookup must compare
	// real keys along one long probe run, which also wraps around the end.
	std::vector<std::pair<uint32_t, TagId>> keys;
	for (uint32_t h = 0; keys.size() < 40; h++) {
		for (TagId tag : {TagId{0}, TagId{9}}) {
			uint64_t x = test_key_hash(h, tag);
			if ((x >> 58) == 63 && (x & 0x1f) == 5 && keys.size() < 40)
				keys.emplace_back(h, tag);
		}
	}
	UserTable t;
	std::vector<UserIndex> idx;
	for (auto [h, tag] : keys)
		idx.push_back(t.insert(h, tag, 1, 1));
	for (size_t i = 0; i < keys.size(); i++)
		ck_assert_uint_eq(t.find(keys[i].first, keys[i].second), idx[i]);
	ck_assert_uint_eq(t.find(keys[0].first, 1), no_user);

	// Erasing from the front, the middle and the end of the run must keep the rest
	// reachable (backward shift across the wrap-around).
	for (size_t i : {size_t{0}, size_t{20}, size_t{39}, size_t{1}, size_t{10}}) {
		t.erase(idx[i]);
		idx[i] = no_user;
		for (size_t k = 0; k < keys.size(); k++)
			ck_assert_uint_eq(t.find(keys[k].first, keys[k].second), idx[k]);
	}
}
END_TEST

START_TEST(test_user_table_grows_across_many_rehashes)
{
	UserTable t;
	const uint32_t n = 300000;
	for (uint32_t i = 0; i < n; i++) {
		// Spread of patterns: sequential, and values differing only in high bits.
		uint32_t h = (i % 2 == 0) ? i : (i << 12) ^ 0x80000000u;
		ck_assert_uint_ne(t.insert(h, static_cast<TagId>(i % 3), 1, i), no_user);
	}
	ck_assert_uint_eq(t.size(), n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = (i % 2 == 0) ? i : (i << 12) ^ 0x80000000u;
		UserIndex u = t.find(h, static_cast<TagId>(i % 3));
		ck_assert_uint_ne(u, no_user);
		ck_assert_uint_eq(t.timestamp(u), i);
	}
	ck_assert_uint_eq(t.find(1, 0), no_user); // inserted in tag 1 only
	ck_assert_uint_eq(t.users_on_host(1), n);
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_random_operations_match_a_map_model)
{
	// Small key space so that inserts, erases and collisions hit the same keys often.
	std::mt19937 rng(20231019);
	std::map<std::pair<uint32_t, TagId>, std::pair<HostId, uint32_t>> model;
	UserTable t;
	uint32_t now = 1000;
	for (unsigned op = 0; op < 200000; op++) {
		uint32_t h = rng() % 5000;
		if (rng() % 4 == 0)
			h ^= 0xabc00000u;
		TagId tag = static_cast<TagId>(rng() % 3);
		auto key = std::make_pair(h, tag);
		auto it = model.find(key);
		UserIndex u = t.find(h, tag);
		ck_assert_uint_eq(u != no_user, it != model.end());
		if (it != model.end()) {
			ck_assert_uint_eq(t.host(u), it->second.first);
			ck_assert_uint_eq(t.timestamp(u), it->second.second);
		}
		now += rng() % 2;
		switch (rng() % 4) {
		case 0:
		case 1:
			if (u == no_user) {
				HostId host = static_cast<HostId>(rng() % 8);
				t.insert(h, tag, host, now);
				model[key] = {host, now};
			} else {
				t.erase(u);
				model.erase(it);
			}
			break;
		case 2:
			if (u != no_user) {
				t.refresh(u, now);
				it->second.second = now;
			}
			break;
		case 3:
			if (u != no_user) {
				HostId host = static_cast<HostId>(rng() % 8);
				t.set_host(u, host);
				it->second.first = host;
			}
			break;
		}
		if (op % 20000 == 0) {
			ck_assert_uint_eq(t.size(), model.size());
			for (auto &[k, v] : model) {
				UserIndex m = t.find(k.first, k.second);
				ck_assert_uint_ne(m, no_user);
				ck_assert_uint_eq(t.host(m), v.first);
			}
			verify_list(t);
		}
	}
	ck_assert_uint_eq(t.size(), model.size());
	size_t per_host[8] = {};
	for (auto &[k, v] : model)
		per_host[v.first]++;
	for (HostId host = 0; host < 8; host++)
		ck_assert_uint_eq(t.users_on_host(host), per_host[host]);
	verify_list(t);
}
END_TEST

// ---- expiry order ----

START_TEST(test_user_table_refresh_moves_user_to_the_newest_end)
{
	UserTable t;
	UserIndex a = t.insert(1, 0, 0, 100);
	UserIndex b = t.insert(2, 0, 0, 101);
	UserIndex c = t.insert(3, 0, 0, 102);
	ck_assert_uint_eq(t.oldest(), a);
	ck_assert_uint_eq(t.newest(), c);

	ck_assert(t.refresh(a, 110));
	ck_assert_uint_eq(t.oldest(), b);
	ck_assert_uint_eq(t.newer(b), c);
	ck_assert_uint_eq(t.newer(c), a);
	ck_assert_uint_eq(t.newest(), a);
	ck_assert_uint_eq(t.timestamp(a), 110);

	ck_assert(t.refresh(a, 111)); // already newest: stays
	ck_assert_uint_eq(t.newest(), a);
	ck_assert(t.sorted());
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_refresh_never_moves_a_timestamp_backwards)
{
	UserTable t;
	UserIndex a = t.insert(1, 0, 0, 100);
	UserIndex b = t.insert(2, 0, 0, 200);
	ck_assert(!t.refresh(b, 150));
	ck_assert_uint_eq(t.timestamp(b), 200);
	ck_assert_uint_eq(t.newest(), b);
	ck_assert_uint_eq(t.oldest(), a);
}
END_TEST

// Two refreshes in one second reorder like stock: the later one is newest.
START_TEST(test_user_table_refresh_at_same_time_moves_to_newest_end)
{
	UserTable t;
	UserIndex a = t.insert(1, 0, 0, 200);
	UserIndex b = t.insert(2, 0, 0, 200);
	ck_assert(t.refresh(a, 200));
	ck_assert_uint_eq(t.newest(), a);
	ck_assert_uint_eq(t.oldest(), b);
}
END_TEST

START_TEST(test_user_table_timestamp_in_place_keeps_list_position)
{
	UserTable t;
	UserIndex a = t.insert(1, 0, 0, 100);
	UserIndex b = t.insert(2, 0, 0, 200);
	t.set_timestamp_in_place(a, 300);
	ck_assert_uint_eq(t.timestamp(a), 300);
	ck_assert_uint_eq(t.oldest(), a);
	ck_assert_uint_eq(t.newest(), b);
	t.set_timestamp_in_place(a, 250);
	ck_assert_uint_eq(t.timestamp(a), 300);
}
END_TEST

START_TEST(test_user_table_older_timestamp_is_placed_in_order)
{
	UserTable t;
	for (uint32_t i = 0; i < 20; i++)
		t.insert(i, 0, 0, 1000 + i * 10);
	// A ring USER refreshing an old entry to a time a bit behind our newest.
	UserIndex u = t.find(0, 0);
	ck_assert(t.refresh(u, 1095));
	UserIndex v = t.insert(100, 0, 0, 1001);
	UserIndex w = t.insert(101, 0, 0, 1);
	ck_assert(t.sorted());
	verify_list(t);
	ck_assert_uint_eq(t.oldest(), w);
	ck_assert_uint_eq(t.older(v), w);
	// 1001 is older than every original entry but 1010 (user 1) is next.
	ck_assert_uint_eq(t.newer(v), t.find(1, 0));
	ck_assert_uint_eq(t.timestamp(t.older(u)), 1090);
	ck_assert_uint_eq(t.timestamp(t.newer(u)), 1100);
}
END_TEST

// The sort takes out only the entries that break the order and merges them back: its
// result must still be exactly the full sort by (timestamp, index), whatever the shape of
// the disorder.
namespace {
void check_list_is_the_full_sort(const UserTable &t)
{
	std::vector<UserIndex> list, want;
	for (UserIndex u = t.oldest(); u != no_user; u = t.newer(u))
		list.push_back(u);
	want = list;
	std::sort(want.begin(), want.end(), [&t](UserIndex a, UserIndex b) {
		return t.timestamp(a) != t.timestamp(b) ? t.timestamp(a) < t.timestamp(b) : a < b;
	});
	ck_assert_uint_eq(list.size(), t.size());
	ck_assert(list == want);
	verify_list(t);
}
} // namespace

START_TEST(test_user_table_sort_of_any_disorder_equals_the_full_sort)
{
	std::mt19937 rng(11);
	const uint32_t n = 5000;
	// Timestamps in load order, by shape of disorder.
	std::vector<std::vector<uint32_t>> shapes;
	std::vector<uint32_t> ts(n);
	for (uint32_t i = 0; i < n; i++)
		ts[i] = 1000 + i / 3; // ascending, with ties
	shapes.push_back(ts);
	auto spikes = ts; // isolated timestamps raised in place (moves)
	for (int i = 0; i < 50; i++)
		spikes[rng() % n] += 1000 + rng() % 500;
	shapes.push_back(spikes);
	auto block = ts; // a run of raised ones (users moved together), then a dip
	for (uint32_t i = 100; i < 400; i++)
		block[i] = 9000 + i;
	block[4000] = 3;
	shapes.push_back(block);
	auto dips = ts; // late arrivals far older than their neighbours
	for (int i = 0; i < 50; i++)
		dips[rng() % n] = rng() % 1000;
	shapes.push_back(dips);
	std::vector<uint32_t> reversed(ts.rbegin(), ts.rend());
	shapes.push_back(reversed);
	std::vector<uint32_t> random(n), equal(n, 77);
	for (auto &x : random)
		x = rng() % 3000;
	shapes.push_back(random);
	shapes.push_back(equal);

	for (const auto &shape : shapes) {
		UserTable t;
		t.load_begin(n);
		for (uint32_t i = 0; i < n; i++)
			ck_assert(t.load_add(i + 1, 0, static_cast<HostId>(i % 3), shape[i]));
		ck_assert_uint_eq(t.load_end(), 0);
		ck_assert(t.sorted());
		check_list_is_the_full_sort(t);
	}

	// In a table filled by inserts: raised in place, then erased, refreshed and
	// inserted out of order, then sorted.
	UserTable t;
	for (uint32_t i = 0; i < n; i++)
		t.insert(i + 1, 0, 0, 1000 + i);
	for (int i = 0; i < 300; i++)
		t.set_timestamp_in_place(t.find(1 + rng() % n, 0), 1000 + n + rng() % 100);
	for (int i = 0; i < 200; i++) {
		UserIndex u = t.find(1 + rng() % n, 0);
		if (u != no_user)
			t.erase(u);
	}
	for (uint32_t i = 0; i < 300; i++)
		t.insert(n + 1 + i, 0, 1, rng() % 7000);
	t.sort_by_timestamp();
	ck_assert(t.sorted());
	check_list_is_the_full_sort(t);
	// Sorting a sorted list changes nothing.
	std::vector<UserIndex> before;
	for (UserIndex u = t.oldest(); u != no_user; u = t.newer(u))
		before.push_back(u);
	t.sort_by_timestamp();
	std::vector<UserIndex> after;
	for (UserIndex u = t.oldest(); u != no_user; u = t.newer(u))
		after.push_back(u);
	ck_assert(before == after);
}
END_TEST

START_TEST(test_user_table_far_out_of_order_timestamps_are_fixed_by_sort)
{
	UserTable t;
	for (uint32_t i = 0; i < 500; i++)
		t.insert(i, 0, 0, 10000 + i);
	ck_assert(t.sorted());
	// A handshake delivering a much older timestamp: the bounded walk gives up.
	t.insert(1000, 0, 0, 5);
	ck_assert(!t.sorted());
	verify_list(t);
	// While unsorted, more old timestamps are appended without walking.
	std::mt19937 rng(7);
	for (uint32_t i = 0; i < 2000; i++)
		t.insert(2000 + i, static_cast<TagId>(i % 2), 1, 100 + rng() % 20000);
	for (uint32_t i = 0; i < 200; i++)
		t.refresh(t.find(i, 0), 10000 + rng() % 1000);
	ck_assert(!t.sorted());
	verify_list(t);

	t.sort_by_timestamp();
	ck_assert(t.sorted());
	verify_list(t); // now checks ordering too
	ck_assert_uint_eq(t.timestamp(t.oldest()), 5);
	ck_assert_uint_eq(t.size(), 2501);

	// Sorted again: the bounded walk is back in use.
	UserIndex u = t.insert(99999, 0, 0, t.timestamp(t.newest()) - 1);
	ck_assert(t.sorted());
	ck_assert_uint_eq(t.newer(u), t.newest());
}
END_TEST

// A sort left for later (a ring handshake's end) runs at sort_if_due(), or before a
// cursor starts its walk, or when the last open cursor closes; never earlier.
START_TEST(test_user_table_sort_left_for_later_runs_before_any_ordered_walk)
{
	UserTable t;
	for (uint32_t i = 0; i < 500; i++)
		t.insert(i, 0, 0, 10000 + i);
	t.insert(1000, 0, 0, 5); // too old for the bounded walk
	ck_assert(!t.sorted());
	ck_assert(!t.sort_due());

	t.sort_later();
	ck_assert(t.sort_due());
	ck_assert(!t.sorted()); // nothing ran yet
	t.sort_if_due();
	ck_assert(t.sorted() && !t.sort_due());
	verify_list(t);
	ck_assert_uint_eq(t.timestamp(t.oldest()), 5);

	// A cursor opened while the sort is due starts on the sorted list.
	t.insert(1001, 0, 0, 4);
	t.sort_later();
	UserTable::Cursor c = t.open_cursor();
	ck_assert(t.sorted() && !t.sort_due());
	ck_assert_uint_eq(t.cursor_next(c), t.find(1001, 0));

	// One left for later while a cursor is open waits for it to close.
	t.insert(1002, 0, 0, 3);
	t.sort_later();
	ck_assert(!t.sort_due());
	t.sort_if_due();
	ck_assert(!t.sorted());
	t.close_cursor(c);
	ck_assert(t.sorted() && !t.sort_due());
	verify_list(t);
	ck_assert_uint_eq(t.timestamp(t.oldest()), 3);
}
END_TEST

START_TEST(test_user_table_expiring_from_the_oldest_end_while_walking)
{
	UserTable t;
	for (uint32_t i = 0; i < 100; i++)
		t.insert(i, 0, 0, 1000 + i);
	t.set_kill_pending(t.find(10, 0), true); // kept by the caller's policy below
	// The caller's expiry loop: erase what is older than 1050, skipping users being
	// killed; take newer() before erase().
	size_t erased = 0;
	for (UserIndex u = t.oldest(), next; u != no_user && t.timestamp(u) < 1050; u = next) {
		next = t.newer(u);
		if (t.kill_pending(u))
			continue;
		t.erase(u);
		erased++;
	}
	ck_assert_uint_eq(erased, 49);
	ck_assert_uint_eq(t.size(), 51);
	ck_assert_uint_eq(t.user_hash(t.oldest()), 10);
	ck_assert_uint_eq(t.timestamp(t.newer(t.oldest())), 1050);
	verify_list(t);
}
END_TEST

// ---- hosts and flags ----

START_TEST(test_user_table_counts_users_per_host_incrementally)
{
	UserTable t;
	ck_assert_uint_eq(t.users_on_host(3), 0);
	ck_assert_uint_eq(t.users_on_host(invalid_host), 0);
	UserIndex a = t.insert(1, 0, 3, 1);
	UserIndex b = t.insert(2, 1, 3, 1);
	t.insert(3, 0, 5, 1);
	ck_assert_uint_eq(t.users_on_host(3), 2);
	ck_assert_uint_eq(t.users_on_host(5), 1);
	t.set_host(a, 5);
	ck_assert_uint_eq(t.users_on_host(3), 1);
	ck_assert_uint_eq(t.users_on_host(5), 2);
	t.erase(b);
	ck_assert_uint_eq(t.users_on_host(3), 0);
	t.set_host(a, 5); // same host: counts unchanged
	ck_assert_uint_eq(t.users_on_host(5), 2);
}
END_TEST

START_TEST(test_user_table_erase_host_forgets_only_its_users)
{
	UserTable t;
	for (uint32_t i = 0; i < 3000; i++)
		t.insert(i, static_cast<TagId>(i % 4), static_cast<HostId>(i % 3), i);
	ck_assert_uint_eq(t.erase_host(1), 1000);
	ck_assert_uint_eq(t.users_on_host(1), 0);
	ck_assert_uint_eq(t.users_on_host(0), 1000);
	ck_assert_uint_eq(t.size(), 2000);
	for (uint32_t i = 0; i < 3000; i++) {
		UserIndex u = t.find(i, static_cast<TagId>(i % 4));
		ck_assert_uint_eq(u == no_user, i % 3 == 1);
	}
	ck_assert_uint_eq(t.erase_host(1), 0);
	ck_assert_uint_eq(t.erase_host(77), 0);
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_flags_are_independent_and_survive_updates)
{
	UserTable t;
	UserIndex u = t.insert(9, max_tag_id, 4, 1);
	t.set_weak(u, true);
	ck_assert(t.weak(u));
	ck_assert(!t.kill_pending(u));
	t.set_kill_pending(u, true);
	t.refresh(u, 2);
	t.set_host(u, 6);
	ck_assert(t.weak(u));
	ck_assert(t.kill_pending(u));
	ck_assert_uint_eq(t.tag(u), max_tag_id);
	ck_assert_uint_eq(t.find(9, max_tag_id), u);
	t.set_weak(u, false);
	ck_assert(!t.weak(u));
	ck_assert(t.kill_pending(u));
	t.set_kill_pending(u, false);
	ck_assert(!t.kill_pending(u));

	// A reused index starts with clear flags.
	t.set_weak(u, true);
	t.erase(u);
	UserIndex v = t.insert(10, 0, 4, 3);
	ck_assert_uint_eq(v, u);
	ck_assert(!t.weak(v));
}
END_TEST

// ---- memory ----

// A bulk load sizes the index once: after reserve(n) the next n inserts do not rebuild
// it (its allocation stays the same while the slab grows by whole chunks), the users
// already there stay findable, and the reservation stops at the table's limit.
START_TEST(test_user_table_reserve_sizes_the_index_once_for_a_bulk_load)
{
	UserTable t;
	for (uint32_t i = 0; i < 1000; i++)
		t.insert(i, 0, 1, i);
	const uint32_t n = 30000;
	t.reserve(n);
	const size_t slab_chunk = (size_t{1} << 15) * 20;
	size_t index_bytes = t.memory_bytes() - ((1000 + slab_chunk / 20 - 1) / (slab_chunk / 20)) *
							  slab_chunk;
	for (uint32_t i = 0; i < 1000; i++)
		ck_assert_uint_ne(t.find(i, 0), no_user);
	for (uint32_t i = 0; i < n; i++) {
		t.prefetch(1000 + i + 8, 0);
		ck_assert_uint_ne(t.insert(1000 + i, 0, 1, 1000 + i), no_user);
	}
	size_t chunks = (1000 + n + slab_chunk / 20 - 1) / (slab_chunk / 20);
	// Only the chunk pointer vector may have grown meanwhile (a few bytes).
	size_t index_after = t.memory_bytes() - chunks * slab_chunk;
	ck_assert_uint_ge(index_bytes, size_t{n} * 4);
	ck_assert_uint_le(index_after - index_bytes, 1024);
	for (uint32_t i = 0; i < 1000 + n; i++)
		ck_assert_uint_eq(t.timestamp(t.find(i, 0)), i);
	verify_list(t);

	UserTable small(10);
	small.reserve(1000000); // capped at the limit: a 16-slot index
	for (uint32_t i = 0; i < 10; i++)
		ck_assert_uint_ne(small.insert(i, 0, 1, i), no_user);
	ck_assert_uint_eq(small.insert(10, 0, 1, 10), no_user);
	ck_assert_uint_le(small.memory_bytes(), sizeof(UserTable) + (size_t{1} << 15) * 20 + 64 +
							   16 * sizeof(uint32_t) + 64);
}
END_TEST

// ---- bulk load ----

namespace {

struct LoadUser {
	uint32_t hash;
	TagId tag;
	HostId host;
	uint32_t ts;
};

// Users as a state file brings them: mostly in timestamp order, some listed twice
// (mostly a later, newer entry; sometimes an older one), in three tags, on eight
// hosts. `shuffled` breaks the timestamp order.
std::vector<LoadUser> load_users(size_t n, unsigned seed, bool shuffled)
{
	std::mt19937 rng(seed);
	std::vector<LoadUser> v;
	uint32_t ts = 1000;
	for (size_t i = 0; i < n; i++) {
		ts += rng() % 3;
		if (i > 10 && rng() % 20 == 0) {
			LoadUser again = v[rng() % v.size()];
			again.host = HostId(rng() % 8);
			// Mostly newer (or equal, when ts did not advance); one in eight
			// older than the entry it repeats, which then stays.
			again.ts = rng() % 8 == 0 ? again.ts - 1 : ts;
			v.push_back(again);
			continue;
		}
		v.push_back(LoadUser{uint32_t(rng() | 1), TagId(rng() % 3), HostId(rng() % 8), ts});
	}
	if (shuffled)
		std::shuffle(v.begin(), v.end(), rng);
	return v;
}

// The per-user way the restore used to fill a table: insert, or for a user seen
// before take the entry with the newer (or equal) timestamp.
void fill_by_insert(UserTable &t, const std::vector<LoadUser> &v)
{
	for (const LoadUser &u : v) {
		UserIndex e = t.find(u.hash, u.tag);
		if (e == no_user) {
			if (t.insert(u.hash, u.tag, u.host, u.ts) == no_user)
				ck_abort_msg("insert refused");
		} else if (u.ts >= t.timestamp(e)) {
			t.set_host(e, u.host);
			t.refresh(e, u.ts);
		}
	}
	if (!t.sorted())
		t.sort_by_timestamp();
}

size_t fill_by_load(UserTable &t, const std::vector<LoadUser> &v)
{
	t.load_begin(v.size());
	size_t added = 0;
	for (const LoadUser &u : v)
		added += t.load_add(u.hash, u.tag, u.host, u.ts) ? 1 : 0;
	ck_assert_uint_eq(added, v.size());
	return t.load_end();
}

// Walks the expiry list like verify_list(), checking without a ck_assert per entry
// (each one is a write to Check's pipe, which makes 10^5 of them slow).
bool list_consistent(const UserTable &t)
{
	size_t n = 0;
	UserIndex prev = no_user;
	for (UserIndex u = t.oldest(); u != no_user; u = t.newer(u)) {
		if (t.older(u) != prev || ++n > t.size())
			return false;
		if (prev != no_user && t.sorted() && t.timestamp(prev) > t.timestamp(u))
			return false;
		prev = u;
	}
	return n == t.size() && t.newest() == prev;
}

// Same users with the same fields, same per-host counts, and the same expiry order
// (compared as a sequence of keys, since UserIndex values may differ); every user of
// `b` is found by its key. Returns the first difference, or "" when equal.
std::string table_difference(const UserTable &a, const UserTable &b)
{
	if (!list_consistent(a) || !list_consistent(b))
		return "an expiry list is inconsistent";
	if (a.size() != b.size())
		return "sizes differ: " + std::to_string(a.size()) + " and " +
		       std::to_string(b.size());
	if (!a.sorted() || !b.sorted())
		return "a table is not sorted";
	for (HostId h = 0; h < 8; h++)
		if (a.users_on_host(h) != b.users_on_host(h))
			return "user counts of host " + std::to_string(h) + " differ";
	UserIndex ua = a.oldest(), ub = b.oldest();
	for (size_t i = 0; ua != no_user; i++) {
		if (ub == no_user || a.user_hash(ua) != b.user_hash(ub) || a.tag(ua) != b.tag(ub) ||
		    a.host(ua) != b.host(ub) || a.timestamp(ua) != b.timestamp(ub))
			return "entry " + std::to_string(i) + " of the expiry list differs";
		if (b.weak(ub) || b.kill_pending(ub) || b.resend(ub))
			return "entry " + std::to_string(i) + " has a flag set";
		if (b.find(a.user_hash(ua), a.tag(ua)) != ub)
			return "entry " + std::to_string(i) + " is not found by its key";
		ua = a.newer(ua);
		ub = b.newer(ub);
	}
	return ub == no_user ? "" : "the second table has more entries";
}

void assert_same_tables(const UserTable &a, const UserTable &b)
{
	std::string diff = table_difference(a, b);
	ck_assert_msg(diff.empty(), "tables differ: %s", diff.c_str());
}

} // namespace

START_TEST(test_user_table_bulk_load_equals_per_user_inserts)
{
	// Sizes around the index's growth steps and bucket counts.
	for (size_t n : {size_t{0}, size_t{1}, size_t{13}, size_t{1000}, size_t{40000}}) {
		std::vector<LoadUser> v = load_users(n, unsigned(n) + 7, false);
		UserTable a, b;
		fill_by_insert(a, v);
		size_t dropped = fill_by_load(b, v);
		ck_assert_uint_eq(dropped, v.size() - a.size());
		assert_same_tables(a, b);
	}
}
END_TEST

START_TEST(test_user_table_bulk_load_out_of_order_is_sorted_and_keeps_the_newest)
{
	std::vector<LoadUser> v = load_users(30000, 3, true);
	UserTable a, b;
	fill_by_insert(a, v);
	fill_by_load(b, v);
	ck_assert_uint_eq(a.size(), b.size());
	ck_assert(list_consistent(b));
	ck_assert(b.sorted());
	// Each user holds the same entry in both: the newest, the later one on a tie.
	// (Users of equal timestamps may be listed in another order.)
	size_t differ = 0;
	for (UserIndex u = a.oldest(); u != no_user; u = a.newer(u)) {
		UserIndex e = b.find(a.user_hash(u), a.tag(u));
		if (e == no_user || b.timestamp(e) != a.timestamp(u) || b.host(e) != a.host(u))
			differ++;
	}
	ck_assert_uint_eq(differ, 0);
	for (HostId h = 0; h < 8; h++)
		ck_assert_uint_eq(a.users_on_host(h), b.users_on_host(h));
}
END_TEST

START_TEST(test_user_table_bulk_loaded_table_takes_later_changes)
{
	std::vector<LoadUser> v = load_users(20000, 11, false);
	UserTable a, b;
	fill_by_insert(a, v);
	fill_by_load(b, v);
	// Erase every other user, then insert new ones and refresh some: the index and
	// the list stay consistent in both, and the two stay equal.
	std::vector<std::pair<uint32_t, TagId>> keys;
	for (UserIndex u = a.oldest(); u != no_user; u = a.newer(u))
		keys.emplace_back(a.user_hash(u), a.tag(u));
	for (size_t i = 0; i < keys.size(); i += 2) {
		a.erase(a.find(keys[i].first, keys[i].second));
		b.erase(b.find(keys[i].first, keys[i].second));
	}
	for (uint32_t i = 0; i < 5000; i++) {
		uint32_t h = 0x80000000u | (i * 2654435761u);
		if (a.find(h, 1) != no_user)
			continue;
		a.insert(h, 1, 2, 50000 + i);
		b.insert(h, 1, 2, 50000 + i);
	}
	for (size_t i = 1; i < keys.size(); i += 6) {
		a.refresh(a.find(keys[i].first, keys[i].second), 60000);
		b.refresh(b.find(keys[i].first, keys[i].second), 60000);
	}
	assert_same_tables(a, b);
}
END_TEST

START_TEST(test_user_table_bulk_load_reuses_an_emptied_table_and_stops_at_the_limit)
{
	UserTable t(100);
	for (uint32_t i = 1; i <= 50; i++)
		t.insert(i, 0, 1, i);
	for (uint32_t i = 1; i <= 50; i++)
		t.erase(t.find(i, 0));
	t.load_begin(200);
	size_t added = 0;
	for (uint32_t i = 1; i <= 150; i++)
		added += t.load_add(1000 + i, 0, 2, i) ? 1 : 0;
	ck_assert_uint_eq(added, 100);
	ck_assert_uint_eq(t.load_end(), 0);
	ck_assert_uint_eq(t.size(), 100);
	ck_assert_uint_eq(t.users_on_host(1), 0);
	ck_assert_uint_eq(t.users_on_host(2), 100);
	for (uint32_t i = 1; i <= 100; i++)
		ck_assert_uint_ne(t.find(1000 + i, 0), no_user);
	ck_assert_uint_eq(t.find(1101, 0), no_user);
	ck_assert_uint_eq(t.insert(5, 0, 1, 200), no_user); // full
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_find_during_a_bulk_load_aborts)
{
	UserTable t;
	t.load_begin(2);
	t.load_add(1, 0, 1, 1);
	t.find(1, 0);
}
END_TEST

START_TEST(test_user_table_bulk_load_into_a_non_empty_table_aborts)
{
	UserTable t;
	t.insert(1, 0, 1, 1);
	t.load_begin(1);
}
END_TEST

// Past the first three chunks the slab's chunks come sixteen to a block of huge
// pages: a table that reaches into its second block (622,592 users and up), by
// inserts and by a bulk load, finds every user, keeps every entry apart, and
// counts its slab by the huge pages it reaches.
START_TEST(test_user_table_slab_blocks_hold_every_user)
{
	const uint32_t n = 700000;
	auto hash_of = [](uint32_t i) { return (i + 1) * 2654435761u; };
	UserTable a, b;
	b.load_begin(n);
	size_t refused = 0; // plain counts in the loops: a check per user is slow
	for (uint32_t i = 0; i < n; i++) {
		auto host = static_cast<HostId>(i % 7);
		refused += a.insert(hash_of(i), 0, host, 1000 + i / 64) == no_user ? 1 : 0;
		refused += b.load_add(hash_of(i), 0, host, 1000 + i / 64) ? 0 : 1;
	}
	ck_assert_uint_eq(refused, 0);
	ck_assert_uint_eq(b.load_end(), 0);
	for (const UserTable *t : {&a, &b}) {
		ck_assert_uint_eq(t->size(), n);
		size_t wrong = 0;
		for (uint32_t i = 0; i < n; i++) {
			UserIndex u = t->find(hash_of(i), 0);
			wrong += u == no_user || t->host(u) != i % 7 ||
					 t->timestamp(u) != 1000 + i / 64
				 ? 1
				 : 0;
		}
		ck_assert_uint_eq(wrong, 0);
		size_t listed = 0;
		for (UserIndex u = t->oldest(); u != no_user; u = t->newer(u))
			listed++;
		ck_assert_uint_eq(listed, n);
		// The slab alone: 20 bytes a user, plus at most one chunk and one
		// huge page of slack; the index at most 8 bytes a user on top.
		ck_assert_uint_ge(t->memory_bytes(), size_t{n} * 20);
		ck_assert_uint_le(t->memory_bytes(), size_t{n} * 28 + (size_t{1} << 15) * 20 +
							    PageMemory::huge_page_bytes + 65536);
	}
}
END_TEST

// for_each() visits every live user once, in slab order: not erased ones, reused
// entries once, and after a table was emptied and bulk loaded again only the new
// users (the old chunks stay mapped).
START_TEST(test_user_table_for_each_visits_every_user_once)
{
	UserTable t;
	const uint32_t n = 100000; // into the first block of huge pages
	for (uint32_t i = 1; i <= n; i++)
		t.insert(i, static_cast<TagId>(i % 3), 1, i);
	for (uint32_t i = 1; i <= n; i += 5)
		t.erase(t.find(i, static_cast<TagId>(i % 3)));
	for (uint32_t i = 1; i <= 1000; i++)
		t.insert(n + i, 0, 2, n + i); // reuse erased entries
	std::vector<uint8_t> seen(n + 1001, 0);
	size_t visits = 0;
	UserIndex last = 0;
	bool ascending = true;
	t.for_each([&](UserIndex u) {
		ascending = ascending && (visits == 0 || u > last);
		last = u;
		visits++;
		seen[t.user_hash(u)]++;
	});
	ck_assert(ascending);
	ck_assert_uint_eq(visits, t.size());
	size_t wrong = 0;
	for (uint32_t h = 1; h <= n + 1000; h++) {
		bool live = h > n || (h - 1) % 5 != 0;
		wrong += seen[h] != (live ? 1 : 0) ? 1 : 0;
	}
	ck_assert_uint_eq(wrong, 0);
	// for_each_hash() visits the same users with their hashes.
	size_t hash_visits = 0, hash_wrong = 0;
	t.for_each_hash([&](UserIndex v, uint32_t hash) {
		hash_visits++;
		hash_wrong += hash != t.user_hash(v) ? 1 : 0;
	});
	ck_assert_uint_eq(hash_visits, visits);
	ck_assert_uint_eq(hash_wrong, 0);

	UserIndex u;
	while ((u = t.oldest()) != no_user)
		t.erase(u);
	t.load_begin(10);
	for (uint32_t i = 1; i <= 10; i++)
		t.load_add(500000 + i, 0, 1, i);
	t.load_end();
	visits = 0;
	t.for_each([&](UserIndex v) {
		visits++;
		ck_assert_uint_gt(t.user_hash(v), 500000);
	});
	ck_assert_uint_eq(visits, 10);
}
END_TEST

START_TEST(test_user_table_100k_users_fit_in_48_bytes_each)
{
	UserTable t;
	std::mt19937 rng(1);
	const size_t n = 100000;
	while (t.size() < n) {
		uint32_t h = rng();
		TagId tag = static_cast<TagId>(rng() % 4);
		if (t.find(h, tag) == no_user)
			t.insert(h, tag, static_cast<HostId>(rng() % 100), 1);
	}
	double per_user = static_cast<double>(t.memory_bytes()) / n;
	ck_assert_msg(per_user <= 48.0, "%.1f bytes per user", per_user);
	ck_assert_uint_ge(t.memory_bytes(), n * 20); // the entries alone are 20 bytes
}
END_TEST

// ---- misuse (programming errors abort) ----

START_TEST(test_user_table_inserting_an_existing_user_aborts)
{
	UserTable t;
	t.insert(1, 2, 0, 1);
	t.insert(1, 2, 0, 1);
}
END_TEST

START_TEST(test_user_table_using_an_erased_index_aborts)
{
	UserTable t;
	UserIndex u = t.insert(1, 0, 0, 1);
	t.erase(u);
	(void)t.host(u);
}
END_TEST

START_TEST(test_user_table_using_an_index_never_handed_out_aborts)
{
	UserTable t;
	t.insert(1, 0, 0, 1);
	t.refresh(5, 10);
}
END_TEST

START_TEST(test_user_table_inserting_with_invalid_host_aborts)
{
	UserTable t;
	t.insert(1, 0, invalid_host, 1);
}
END_TEST

// ---- cursors ----

START_TEST(test_user_table_cursor_steps_over_erased_and_refreshed_entries)
{
	UserTable t;
	std::vector<UserIndex> us;
	for (uint32_t i = 0; i < 10; i++)
		us.push_back(t.insert(i, 0, 1, 1000 + i));
	UserTable::Cursor c = t.open_cursor();
	ck_assert_uint_eq(t.cursor_next(c), us[0]);
	// The entry under the cursor is erased, the next one refreshed to the newest end.
	t.erase(us[1]);
	t.refresh(us[2], 2000);
	std::vector<uint32_t> seen;
	for (UserIndex u; (u = t.cursor_next(c)) != no_user;)
		seen.push_back(t.user_hash(u));
	t.close_cursor(c);
	std::vector<uint32_t> want = {3, 4, 5, 6, 7, 8, 9, 2};
	ck_assert(seen == want);
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_sort_waits_for_open_cursors)
{
	UserTable t;
	for (uint32_t i = 0; i < 300; i++)
		t.insert(i, 0, 1, 10000 + i);
	UserTable::Cursor c = t.open_cursor();
	for (int i = 0; i < 100; i++)
		t.cursor_next(c);
	// Older users arrive during the walk: appended so the cursor meets them, and
	// the sort asked for meanwhile waits for the cursor.
	for (uint32_t i = 0; i < 50; i++)
		t.insert(1000 + i, 0, 1, 500 + i);
	ck_assert(!t.sorted());
	t.sort_by_timestamp();
	ck_assert(!t.sorted());
	size_t rest = 0, late = 0;
	for (UserIndex u; (u = t.cursor_next(c)) != no_user; rest++)
		late += t.user_hash(u) >= 1000;
	ck_assert_uint_eq(rest, 250);
	ck_assert_uint_eq(late, 50);
	ck_assert(t.cursor_done(c));
	t.close_cursor(c);
	ck_assert(t.sorted());
	ck_assert_uint_eq(t.user_hash(t.oldest()), 1000);
	verify_list(t);
}
END_TEST

START_TEST(test_user_table_erase_host_keeps_cursors_valid)
{
	UserTable t;
	for (uint32_t i = 0; i < 100; i++)
		t.insert(i, 0, HostId(i % 2), 1000 + i);
	UserTable::Cursor a = t.open_cursor(), b = t.open_cursor();
	for (int i = 0; i < 11; i++)
		t.cursor_next(a);
	ck_assert_uint_eq(t.erase_host(1), 50);
	size_t n = 0;
	for (UserIndex u; (u = t.cursor_next(a)) != no_user; n++)
		ck_assert_uint_eq(t.host(u), 0);
	ck_assert_uint_eq(n, 44);
	n = 0;
	while (t.cursor_next(b) != no_user)
		n++;
	ck_assert_uint_eq(n, 50);
	t.close_cursor(a);
	t.close_cursor(b);
	ck_assert_uint_eq(t.open_cursors(), 0);
}
END_TEST

// The table lists the users marked resend while they are few: every marked one
// is in the list (some twice, some no longer marked), the list empties once
// none is marked, and past its cap it gives way to a walk until then.
START_TEST(test_user_table_lists_the_users_marked_resend)
{
	UserTable t;
	std::vector<UserIndex> u;
	for (uint32_t i = 0; i < 40000; i++)
		u.push_back(t.insert(i, 0, HostId(i % 3), 1000));
	auto marked = [&t]() {
		std::set<UserIndex> set;
		for (UserIndex x : *t.resend_marked()) {
			if (t.live(x) && t.resend(x))
				set.insert(x);
		}
		return set;
	};
	ck_assert(t.resend_marked() != nullptr && t.resend_marked()->empty());
	t.set_resend(u[1], true);
	t.set_resend(u[2], true);
	t.set_resend(u[2], true); // already marked: listed once
	ck_assert_uint_eq(t.resend_marked()->size(), 2);
	t.set_resend(u[1], false);
	ck_assert(marked() == std::set<UserIndex>{u[2]});
	// erased, its entry handed to a new user, marked again
	t.erase(u[2]);
	ck_assert(t.resend_marked()->empty()); // none marked any more
	t.set_resend(u[3], true);
	t.erase(u[3]);
	UserIndex again = t.insert(90000, 0, HostId(0), 1001);
	ck_assert_uint_eq(again, u[3]);
	t.set_resend(again, true);
	ck_assert(marked() == std::set<UserIndex>{again});
	// over the cap (4096, or an eighth of the table: 4999): no list
	for (uint32_t i = 10; i < 6000; i++)
		t.set_resend(u[i], true);
	ck_assert(t.resend_marked() == nullptr);
	for (uint32_t i = 10; i < 6000; i++)
		t.set_resend(u[i], false);
	ck_assert(t.resend_marked() == nullptr); // `again` is still marked
	t.set_resend(again, false);
	ck_assert(t.resend_marked() != nullptr && t.resend_marked()->empty());
}
END_TEST

static Suite *user_table_suite()
{
	Suite *s = suite_create("user-table");

	TCase *tc = tcase_create("lookup");
	tcase_add_test(tc, test_user_table_insert_then_find_returns_its_fields);
	tcase_add_test(tc, test_user_table_same_hash_in_two_tags_is_independent);
	tcase_add_test(tc, test_user_table_erase_forgets_only_that_user_and_reuses_its_index);
	tcase_add_test(tc, test_user_table_erasing_everything_leaves_an_empty_usable_table);
	suite_add_tcase(s, tc);

	tc = tcase_create("index");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_user_table_keys_sharing_a_slot_and_fingerprint_are_all_found);
	tcase_add_test(tc, test_user_table_grows_across_many_rehashes);
	tcase_add_test(tc, test_user_table_random_operations_match_a_map_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("expiry-order");
	tcase_add_test(tc, test_user_table_refresh_moves_user_to_the_newest_end);
	tcase_add_test(tc, test_user_table_refresh_never_moves_a_timestamp_backwards);
	tcase_add_test(tc, test_user_table_refresh_at_same_time_moves_to_newest_end);
	tcase_add_test(tc, test_user_table_timestamp_in_place_keeps_list_position);
	tcase_add_test(tc, test_user_table_older_timestamp_is_placed_in_order);
	tcase_add_test(tc, test_user_table_far_out_of_order_timestamps_are_fixed_by_sort);
	tcase_add_test(tc, test_user_table_sort_left_for_later_runs_before_any_ordered_walk);
	tcase_add_test(tc, test_user_table_expiring_from_the_oldest_end_while_walking);
	suite_add_tcase(s, tc);

	tc = tcase_create("hosts-and-flags");
	tcase_add_test(tc, test_user_table_counts_users_per_host_incrementally);
	tcase_add_test(tc, test_user_table_erase_host_forgets_only_its_users);
	tcase_add_test(tc, test_user_table_flags_are_independent_and_survive_updates);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 60); // 700,000 users twice, slow under the sanitizers
	tcase_add_test(tc, test_user_table_100k_users_fit_in_48_bytes_each);
	tcase_add_test(tc, test_user_table_reserve_sizes_the_index_once_for_a_bulk_load);
	tcase_add_test(tc, test_user_table_bulk_load_equals_per_user_inserts);
	tcase_add_test(tc, test_user_table_bulk_load_out_of_order_is_sorted_and_keeps_the_newest);
	tcase_add_test(tc, test_user_table_sort_of_any_disorder_equals_the_full_sort);
	tcase_add_test(tc, test_user_table_slab_blocks_hold_every_user);
	tcase_add_test(tc, test_user_table_for_each_visits_every_user_once);
	tcase_add_test(tc, test_user_table_bulk_loaded_table_takes_later_changes);
	tcase_add_test(tc, test_user_table_bulk_load_reuses_an_emptied_table_and_stops_at_the_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("misuse");
	tcase_add_test_raise_signal(tc, test_user_table_inserting_an_existing_user_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, test_user_table_find_during_a_bulk_load_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, test_user_table_bulk_load_into_a_non_empty_table_aborts,
				    SIGABRT);
	tcase_add_test_raise_signal(tc, test_user_table_using_an_erased_index_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, test_user_table_using_an_index_never_handed_out_aborts,
				    SIGABRT);
	tcase_add_test_raise_signal(tc, test_user_table_inserting_with_invalid_host_aborts,
				    SIGABRT);
	suite_add_tcase(s, tc);
	tc = tcase_create("cursors");
	tcase_add_test(tc, test_user_table_cursor_steps_over_erased_and_refreshed_entries);
	tcase_add_test(tc, test_user_table_sort_waits_for_open_cursors);
	tcase_add_test(tc, test_user_table_erase_host_keeps_cursors_valid);
	tcase_add_test(tc, test_user_table_lists_the_users_marked_resend);
	suite_add_tcase(s, tc);
	return s;
}

int main()
{
	return run_suite(user_table_suite());
}
