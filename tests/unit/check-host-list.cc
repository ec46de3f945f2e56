// Check suite for core/host-list and core/hash-ring: the stock test vectors,
// the SYNC hosts_hash fingerprint, tags, down and 0-vhost hosts.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// After the C++ headers: Check defines a fail() macro that breaks <ios>.
#include <check.h>

#include "check-main.h"

#include "host-list.h"
#include "user-hash.h"

using namespace director::core;

static IpAddr ip(const char *s)
{
	auto v = IpAddr::parse(s);
	ck_assert_msg(v.has_value(), "%s", s);
	return *v;
}

static std::vector<std::string> split(const std::string &s, char sep)
{
	std::vector<std::string> out;
	std::string cur;
	std::istringstream in(s);
	while (std::getline(in, cur, sep))
		out.push_back(cur);
	if (!s.empty() && s.back() == sep)
		out.emplace_back();
	return out;
}

// Every row of the stock director's recorded lookups (test-vectors.tsv, see
// hashing-and-state.md for the encoding) maps to the recorded host.
START_TEST(test_host_list_matches_every_stock_test_vector)
{
	std::ifstream in(TEST_DATA_DIR "/test-vectors.tsv");
	ck_assert_msg(in.good(), "cannot open test-vectors.tsv");
	std::string line;
	std::getline(in, line); // header
	unsigned rows = 0, matched = 0;
	while (std::getline(in, line)) {
		if (line.empty())
			continue;
		std::vector<std::string> f = split(line, '\t');
		ck_assert_uint_eq(f.size(), 5);
		HostList hosts;
		for (const std::string &entry : split(f[2], ',')) {
			std::string spec = entry, tag;
			size_t at = spec.find('@');
			if (at != std::string::npos) {
				tag = spec.substr(at + 1);
				spec = spec.substr(0, at);
			}
			std::vector<std::string> p = split(spec, '/');
			HostId id = *hosts.add(ip(p[0].c_str()), tag, std::stoul(p[1]));
			if (p.size() > 2 && p[2] == "down")
				hosts.set_down(id, true, 1);
		}
		uint32_t h = UsernameHash().hash(f[0]);
		ck_assert_msg(h == std::stoul(f[3]), "user hash of %s", f[0].c_str());
		auto tag = hosts.find_tag(f[1]);
		HostId got = tag ? hosts.lookup(h, *tag) : invalid_host;
		std::string got_ip = got == invalid_host ? "" : hosts.get(got).ip.to_string();
		if (got_ip == f[4])
			matched++;
		else
			fprintf(stderr, "mismatch: %s tag=%s got=%s want=%s\n", f[0].c_str(),
				f[1].c_str(), got_ip.c_str(), f[4].c_str());
		rows++;
	}
	ck_assert_uint_eq(rows, 660);
	ck_assert_uint_eq(matched, rows);
}
END_TEST

START_TEST(test_host_list_hosts_hash_matches_stock_sync_values)
{
	HostList hosts;
	hosts.add(ip("10.0.0.2"), "");
	hosts.add(ip("10.0.0.1"), "");
	hosts.add(ip("10.0.0.3"), "");
	ck_assert_uint_eq(hosts.hosts_hash(), 1239033269u);
	HostId h4 = *hosts.add(ip("10.0.0.4"), "", 77);
	ck_assert_uint_eq(hosts.hosts_hash(), 1522526113u);
	hosts.set_down(h4, true, 1795343918);
	ck_assert_uint_eq(hosts.hosts_hash(), 2518017855u);
}
END_TEST

START_TEST(test_host_list_down_host_gets_no_new_users)
{
	HostList hosts;
	HostId a = *hosts.add(ip("10.0.0.1"), "");
	HostId b = *hosts.add(ip("10.0.0.2"), "");
	hosts.set_down(a, true, 100);
	for (uint32_t h = 1; h < 4000000000u; h += 99991)
		ck_assert_uint_eq(hosts.lookup(h, default_tag), b);
	hosts.set_down(b, true, 100);
	ck_assert_uint_eq(hosts.lookup(12345, default_tag), invalid_host);
	ck_assert(!hosts.have_usable_hosts(default_tag));
}
END_TEST

START_TEST(test_host_list_zero_vhost_host_gets_no_users)
{
	HostList hosts;
	HostId a = *hosts.add(ip("10.0.0.1"), "", 0);
	HostId b = *hosts.add(ip("10.0.0.2"), "", 5);
	for (uint32_t h = 1; h < 4000000000u; h += 99991)
		ck_assert_uint_ne(hosts.lookup(h, default_tag), a);
	ck_assert_uint_eq(hosts.lookup(7, default_tag), b);
}
END_TEST

START_TEST(test_host_list_tags_have_separate_rings)
{
	HostList hosts;
	HostId plain = *hosts.add(ip("10.0.0.1"), "");
	HostId blue = *hosts.add(ip("10.0.0.9"), "blue");
	TagId t = *hosts.find_tag("blue");
	ck_assert(hosts.have_tags());
	for (uint32_t h = 1; h < 4000000000u; h += 999983) {
		ck_assert_uint_eq(hosts.lookup(h, default_tag), plain);
		ck_assert_uint_eq(hosts.lookup(h, t), blue);
	}
	ck_assert(!hosts.find_tag("green").has_value());
}
END_TEST

START_TEST(test_host_list_vhost_change_moves_only_changed_arcs)
{
	HostList hosts;
	HostId a = *hosts.add(ip("10.0.0.1"), "");
	HostId b = *hosts.add(ip("10.0.0.2"), "");
	std::vector<HostId> before;
	for (uint32_t h = 1; h < 4000000000u; h += 400009)
		before.push_back(hosts.lookup(h, default_tag));
	hosts.set_vhost_count(b, 200);
	size_t i = 0;
	for (uint32_t h = 1; h < 4000000000u; h += 400009, i++) {
		// Adding points to b can only take users from a, never give b's away.
		if (before[i] == b)
			ck_assert_uint_eq(hosts.lookup(h, default_tag), b);
	}
	(void)a;
}
END_TEST

START_TEST(test_host_list_reuses_removed_ids_and_orders_by_ip)
{
	HostList hosts;
	HostId a = *hosts.add(ip("10.0.0.3"), "");
	*hosts.add(ip("::1"), "");
	*hosts.add(ip("10.0.0.1"), "");
	hosts.remove(a);
	ck_assert_uint_eq(hosts.find(ip("10.0.0.3")), invalid_host);
	HostId c = *hosts.add(ip("10.0.0.2"), "");
	ck_assert_uint_eq(c, a);
	std::vector<HostId> ids = hosts.sorted_ids();
	ck_assert_uint_eq(ids.size(), 3);
	ck_assert(hosts.get(ids[0]).ip.to_string() == "10.0.0.1");
	ck_assert(hosts.get(ids[1]).ip.to_string() == "10.0.0.2");
	ck_assert(hosts.get(ids[2]).ip.to_string() == "::1");
}
END_TEST

int main()
{
	Suite *s = suite_create("host-list");
	TCase *tc = tcase_create("stock-compat");
	tcase_add_test(tc, test_host_list_matches_every_stock_test_vector);
	tcase_add_test(tc, test_host_list_hosts_hash_matches_stock_sync_values);
	suite_add_tcase(s, tc);
	tc = tcase_create("ring");
	tcase_add_test(tc, test_host_list_down_host_gets_no_new_users);
	tcase_add_test(tc, test_host_list_zero_vhost_host_gets_no_users);
	tcase_add_test(tc, test_host_list_tags_have_separate_rings);
	tcase_add_test(tc, test_host_list_vhost_change_moves_only_changed_arcs);
	suite_add_tcase(s, tc);
	tc = tcase_create("bookkeeping");
	tcase_add_test(tc, test_host_list_reuses_removed_ids_and_orders_by_ip);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
