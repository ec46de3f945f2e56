// Check suite for digest checks in a running ring (user-digest.h, ring-digest.cc):
// a director whose table lost users that the ring never resends gets them back
// from its left, never gets back a host's users it dropped meanwhile, and a
// peer that did not offer the checks never sees one. Directors are cores on an
// in-memory network (check-ring-net.h).
#include <map>
#include <string>

#include <check.h>

#include "check-main.h"
#include "check-ring-net.h"

#include "config-values.h"
#include "ring.h"

using namespace director::core;
using namespace ring_net;

namespace {

std::map<uint32_t, std::string> table(Net &net, size_t i)
{
	std::map<uint32_t, std::string> t;
	for (const UserListEntry &e : net.dirs[i]->user_list(std::nullopt))
		t[e.user_hash] = e.host.to_string();
	return t;
}

void assign(Net &net, size_t d, const std::string &prefix, unsigned n, RequestId first_id)
{
	for (unsigned i = 0; i < n; i++)
		net.dirs[d]->lookup(first_id + i, prefix + std::to_string(i), "", net.at(d),
				    net.fxs[d]);
	net.settle();
	ck_assert_uint_eq(net.fxs[d].lookups.size(), n);
	for (const auto &l : net.fxs[d].lookups)
		ck_assert(l.host.has_value());
	net.fxs[d].lookups.clear();
}

// Every USER update on its way to director `to` is lost.
void lose_users_to(Net &net, size_t to)
{
	net.intercept = [to](size_t, size_t dst, std::string_view line) {
		return dst == to && line.substr(0, 5) == "USER\t" ? Net::Fate::drop
								   : Net::Fate::deliver;
	};
}

size_t count_checks(const Net &net, size_t i, Effects::DigestCheckResult result)
{
	size_t n = 0;
	for (const auto &c : net.fxs[i].ring_digest_checks)
		n += c.result == result;
	return n;
}

} // namespace

// Finding 1 of the outside audit, the runtime part: lines lost after the
// handshake left a director without users while the ring said it was synced,
// and nothing ever found out. Before the checks this failed at the first
// comparison after the interval: d1 kept 0 of 200 users.
START_TEST(test_digest_check_repairs_users_a_director_missed)
{
	Net net(3);
	net.tick(ring_digest_check_after_sync_secs + 3);
	ck_assert(net.all_synced());
	lose_users_to(net, 1);
	assign(net, 0, "lost", 200, 1);
	net.intercept = nullptr;
	ck_assert_uint_eq(net.dirs[1]->user_count(), 0);
	ck_assert_uint_eq(net.dirs[2]->user_count(), 200);
	ck_assert(net.all_synced()); // nothing in the protocol noticed

	net.tick(ring_digest_check_interval_secs + 2);
	auto want = table(net, 0);
	ck_assert_uint_eq(want.size(), 200);
	for (size_t i = 1; i < 3; i++)
		ck_assert_msg(table(net, i) == want, "d%zu holds %zu users", i, table(net, i).size());
	bool found = false;
	for (const auto &c : net.fxs[1].ring_digest_checks) {
		if (c.result == Effects::DigestCheckResult::repaired) {
			ck_assert_uint_eq(c.changed, 200);
			ck_assert_uint_ge(c.received, 200);
			ck_assert_uint_gt(c.differing, 0);
			found = true;
		}
	}
	ck_assert(found);
	ck_assert(net.logs[1]->has("User digest check found our table different from our "
				   "left's"));
	// The others found nothing to take.
	ck_assert_uint_eq(count_checks(net, 0, Effects::DigestCheckResult::repaired), 0);
	ck_assert_uint_eq(count_checks(net, 2, Effects::DigestCheckResult::repaired), 0);
	// A repair is looked at again soon, and then matches.
	ck_assert_uint_ge(count_checks(net, 1, Effects::DigestCheckResult::match), 1);
}
END_TEST

// A host flushed here while our check was out must not come back with our
// left's answer, which it wrote before the flush reached it: the answer is
// ignored and the next check repairs the rest. Fails with the guard removed:
// d1 holds users on the flushed host again.
START_TEST(test_digest_check_answer_does_not_bring_back_a_flushed_host)
{
	Net net(3);
	net.tick(ring_digest_check_after_sync_secs + 3);
	assign(net, 0, "kept", 200, 1);
	lose_users_to(net, 1);
	assign(net, 0, "lost", 200, 1000);
	ck_assert_uint_eq(net.dirs[1]->user_count(), 200);
	// Hold our left's answer on its way to d1.
	net.intercept = [](size_t from, size_t to, std::string_view line) {
		return from == 0 && to == 1 && line.substr(0, 12) == "USER-DIGEST\t"
			       ? Net::Fate::hold
			       : Net::Fate::deliver;
	};
	for (int s = 0; s < ring_digest_check_interval_secs + 10 && net.held() == 0; s++)
		net.tick(1);
	ck_assert_uint_gt(net.held(), 2);

	// Meanwhile d1 flushes the host of its first user; the flush reaches all.
	IpAddr flushed = *parse_stock_ip(table(net, 1).begin()->second);
	net.dirs[1]->host_flush(77, flushed, net.at(1), net.fxs[1]);
	net.settle();
	net.intercept = nullptr;
	net.release_held();
	for (size_t i = 0; i < 3; i++) {
		for (const auto &[hash, host] : table(net, i))
			ck_assert_msg(host != flushed.to_string(), "d%zu has user %u on the flushed host",
				      i, hash);
	}
	ck_assert_uint_eq(count_checks(net, 1, Effects::DigestCheckResult::discarded), 1);
	ck_assert(net.logs[1]->has("ignored (a host's users were dropped meanwhile)"));

	// The next check, after the quiet time, takes the rest.
	net.tick(ring_digest_check_quiet_secs + 3);
	auto want = table(net, 0);
	for (size_t i = 1; i < 3; i++)
		ck_assert_msg(table(net, i) == want, "d%zu differs", i);
	ck_assert_uint_ge(count_checks(net, 1, Effects::DigestCheckResult::repaired), 1);
}
END_TEST

// A peer that offered USER-DIGEST but not USER-DIGEST-CHECK (our release before
// the checks, which drops a connection over a USER-DIGEST line after the
// handshake) is never sent a CHECK.
START_TEST(test_digest_check_only_with_a_peer_that_offered_it)
{
	for (bool offered : {false, true}) {
		auto rewrite = [offered](std::string_view line) {
			std::string l(line);
			const std::string offer = "\tUSER-DIGEST-CHECK";
			if (!offered && l.rfind("VERSION\t", 0) == 0 && l.find(offer) != std::string::npos)
				l.erase(l.find(offer), offer.size());
			return l;
		};
		size_t checks = 0, other_digest_lines = 0;
		Net net(2, DirectorConfig(), SIZE_MAX, rewrite);
		net.intercept = [&](size_t, size_t, std::string_view line) {
			if (line.rfind("USER-DIGEST\tCHECK\t", 0) == 0)
				checks++;
			else if (line.rfind("USER-DIGEST\t", 0) == 0)
				other_digest_lines++;
			return Net::Fate::deliver;
		};
		net.tick(ring_digest_check_interval_secs + 10);
		ck_assert(net.all_synced());
		if (offered) {
			ck_assert_uint_ge(checks, 2);
			ck_assert_uint_ge(count_checks(net, 0, Effects::DigestCheckResult::match), 1);
		} else {
			ck_assert_uint_eq(checks, 0);
			ck_assert_uint_eq(other_digest_lines, 0);
			ck_assert_uint_eq(net.fxs[0].ring_digest_checks.size(), 0);
		}
	}
}
END_TEST

// Answers that break the exchange drop the connection with a clear error;
// none of them changes the table.
START_TEST(test_digest_check_bad_answers_drop_the_connection)
{
	for (const char *bad : {"USER-DIGEST\tREPAIRED\t0", "USER-DIGEST\tU\t1\t10.0.0.1\t5",
				"USER-DIGEST\tREPAIR\t9\t4", "USER-DIGEST\tSOMETHING",
				"USER-DIGEST\tD\t0\t0000000000000000"}) {
		Net net(2);
		net.tick(ring_digest_check_after_sync_secs + 3);
		size_t users = net.dirs[1]->user_count();
		RingConnId from0 = 0;
		for (const auto &e : net.dirs[1]->director_list(net.now)) {
			if (e.has_connection && e.ip && *e.ip == Net::addr(0) && e.type == "left")
				from0 = e.conn;
		}
		ck_assert(from0 != 0);
		net.dirs[1]->ring_line(from0, bad, net.at(1), net.fxs[1]);
		bool closed = false;
		for (const auto &c : net.fxs[1].ring_closes)
			closed |= c.id == from0;
		ck_assert_msg(closed, "not dropped over '%s'", bad);
		ck_assert_uint_eq(net.dirs[1]->user_count(), users);
		ck_assert_msg(net.logs[1]->has("USER-DIGEST"), "no log line for '%s'", bad);
	}
}
END_TEST

int main()
{
	Suite *s = suite_create("ring-digest-check");
	TCase *tc = tcase_create("checks");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_digest_check_repairs_users_a_director_missed);
	tcase_add_test(tc, test_digest_check_answer_does_not_bring_back_a_flushed_host);
	tcase_add_test(tc, test_digest_check_only_with_a_peer_that_offered_it);
	tcase_add_test(tc, test_digest_check_bad_answers_drop_the_connection);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
