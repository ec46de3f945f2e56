// Check suite for the Dovecot 2.3 kick client (adapter/kick-client-23.cc)
// against the ipc service's side of the exchange over a socketpair: the exact
// lines each kind of kick sends, the replies it takes, and a peer that
// misbehaves, closes or never answers.
#include "kick-test.h"

#include <memory>

#include "core/ip-addr.h"
#include "core/kick.h"
#include "core/user-hash.h"

using director::adapter::KickClient;
using director::core::IpAddr;
using director::core::Kick;
using director::core::KickReason;
using director::core::UsernameHash;
using adapter_test::run_until;
using kick_test::logged;
using kick_test::Peer;
using kick_test::Result;

namespace {

constexpr unsigned test_reply_timeout_msecs = 300;

std::unique_ptr<KickClient> make_client(Peer &peer)
{
	auto hash = UsernameHash::parse("%Lu");
	ck_assert(hash.ok());
	return KickClient::create(director::adapter::director_root_event(), *hash,
				  peer.connector(), test_reply_timeout_msecs);
}

bool received_lines(Peer &peer, unsigned n)
{
	unsigned lines = 0;
	for (char c : peer.received)
		lines += c == '\n';
	return lines >= n;
}

} // namespace

// What stock 2.3 login processes take from the ipc service (login-common's
// ipc-proxy commands), one line per kind of kick, values tab-escaped.
START_TEST(test_ipc_kick_lines_on_the_wire)
{
	Peer peer;
	auto client = make_client(peer);
	Result r[5];
	client->kick(Kick::by_user("us\ter@example.com", KickReason::admin), r[0].callback());
	client->kick(Kick::by_alt_field("master_user", "jo\\hn", KickReason::admin),
		     r[1].callback());
	client->kick(Kick::by_user_hash(3046011393u, std::nullopt, "", KickReason::move),
		     r[2].callback());
	client->kick(Kick::by_user_hash(17, IpAddr::parse("10.0.0.2"), "tag", KickReason::conflict),
		     r[3].callback());
	client->kick(Kick::by_user_hash(18, IpAddr::parse("fd00::1"), "", KickReason::conflict),
		     r[4].callback());
	ck_assert(run_until([&]() { return received_lines(peer, 5); }, 5000));
	ck_assert_str_eq(peer.received.c_str(),
			 "proxy\t*\tKICK\tus\001ter@example.com\n"
			 "proxy\t*\tKICK-ALT\tmaster_user\tjo\\hn\n"
			 "proxy\t*\tKICK-DIRECTOR-HASH\t3046011393\n"
			 "proxy\t*\tKICK-DIRECTOR-HASH\t17\t10.0.0.2\n"
			 "proxy\t*\tKICK-DIRECTOR-HASH\t18\tfd00::1\n");
	ck_assert_uint_eq(peer.connects, 1);
	for (const Result &one : r)
		ck_assert_uint_eq(one.calls, 0);
}
END_TEST

// Replies come in the order the kicks were sent: "+<count>" is done, "-<error>"
// failed with the error, ":" lines are logged and wait for the final line.
START_TEST(test_ipc_replies_are_matched_in_order)
{
	Peer peer;
	auto client = make_client(peer);
	Result a, b, c;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	client->kick(Kick::by_user("b", KickReason::admin), b.callback());
	client->kick(Kick::by_user("c", KickReason::admin), c.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 3); }, 5000));
	peer.send("+2\n-Unknown command\n:3\n");
	ck_assert(run_until([&]() { return b.calls == 1 && logged("unexpected reply"); }, 5000));
	ck_assert_uint_eq(a.calls, 1);
	ck_assert(a.ok);
	ck_assert(!b.ok);
	ck_assert_str_eq(b.error.c_str(), "Unknown command");
	ck_assert_uint_eq(c.calls, 0);
	ck_assert(logged("login process sent an unexpected reply to a kick: 3"));
	peer.send("+\n");
	ck_assert(run_until([&]() { return c.calls == 1; }, 5000));
	ck_assert(c.ok);
	ck_assert(!peer.saw_eof);
}
END_TEST

// A line that is no reply: a clear log line, every waiting kick fails, the
// connection is closed and the next kick opens a new one.
START_TEST(test_ipc_malformed_reply_fails_the_kicks_and_reconnects)
{
	Peer peer;
	auto client = make_client(peer);
	Result a, b;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	client->kick(Kick::by_user("b", KickReason::admin), b.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 2); }, 5000));
	peer.send("garbage\tline\n");
	ck_assert(run_until([&]() { return a.calls == 1 && b.calls == 1 && peer.saw_eof; },
			    5000));
	ck_assert(!a.ok && !b.ok);
	ck_assert_str_eq(a.error.c_str(), "Invalid reply from ipc");
	ck_assert_str_eq(b.error.c_str(), "Invalid reply from ipc");
	ck_assert(logged("ipc sent an invalid reply to a kick: garbage\tline"));

	Result c;
	client->kick(Kick::by_user("c", KickReason::admin), c.callback());
	ck_assert_uint_eq(peer.connects, 2);
	ck_assert(run_until([&]() { return received_lines(peer, 1); }, 5000));
	ck_assert_str_eq(peer.received.c_str(), "proxy\t*\tKICK\tc\n");
	peer.send("+1\n");
	ck_assert(run_until([&]() { return c.calls == 1; }, 5000));
	ck_assert(c.ok);
}
END_TEST

// A line with no kick waiting is logged and ignored.
START_TEST(test_ipc_line_with_no_kick_waiting_is_logged)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 1); }, 5000));
	peer.send("+0\n+0\n");
	ck_assert(run_until([&]() { return logged("ipc sent a line with no kick waiting"); },
			    5000));
	ck_assert_uint_eq(a.calls, 1);
	ck_assert(a.ok);
}
END_TEST

// The ipc service closes the connection (it restarted): the kicks waiting on
// it fail at once, with a log line, and the next kick reconnects.
START_TEST(test_ipc_peer_close_fails_waiting_kicks)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 1); }, 5000));
	peer.close_peer();
	ck_assert(run_until([&]() { return a.calls == 1; }, 5000));
	ck_assert(!a.ok);
	ck_assert_str_eq(a.error.c_str(), "Disconnected");
	ck_assert(logged("ipc disconnected with 1 kicks unanswered"));

	Result b;
	client->kick(Kick::by_user("b", KickReason::admin), b.callback());
	ck_assert_uint_eq(peer.connects, 2);
	ck_assert(run_until([&]() { return received_lines(peer, 1); }, 5000));
	peer.send("+0\n");
	ck_assert(run_until([&]() { return b.calls == 1; }, 5000));
	ck_assert(b.ok);
}
END_TEST

// A hung ipc service: after the reply timeout every waiting kick fails (so
// the core's count of running kicks goes down again), once, with a log line,
// and the connection is dropped.
START_TEST(test_ipc_reply_timeout_fails_every_waiting_kick)
{
	Peer peer;
	auto client = make_client(peer);
	Result a, b;
	client->kick(Kick::by_user_hash(5, std::nullopt, "", KickReason::move), a.callback());
	client->kick(Kick::by_user("b", KickReason::admin), b.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 2); }, 5000));
	ck_assert_uint_eq(a.calls, 0);
	ck_assert(run_until([&]() { return a.calls == 1 && b.calls == 1 && peer.saw_eof; },
			    5000));
	ck_assert(!a.ok && !b.ok);
	ck_assert_str_eq(a.error.c_str(), "Timeout waiting for the ipc reply");
	ck_assert(logged("ipc did not answer a kick in 300 msecs, giving up on 2 kicks"));
	// A late reply finds no connection and reports nothing twice.
	ck_assert(!run_until([&]() { return a.calls > 1 || b.calls > 1; }, 500));
}
END_TEST

// The reply timeout runs from the previous reply, not from the first kick: a
// slow but answering ipc service does not fail kicks.
START_TEST(test_ipc_reply_timeout_restarts_after_each_reply)
{
	Peer peer;
	auto client = make_client(peer);
	Result r[4];
	for (Result &one : r)
		client->kick(Kick::by_user("u", KickReason::admin), one.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 4); }, 5000));
	for (unsigned i = 0; i < 4; i++) {
		// 200 ms per reply, 800 ms in all: over the 300 ms timeout
		// only if it ran from the first kick.
		ck_assert(!run_until([&]() { return r[i].calls > 0; }, 200));
		peer.send("+1\n");
		ck_assert(run_until([&]() { return r[i].calls == 1; }, 5000));
		ck_assert(r[i].ok);
	}
	ck_assert(!peer.saw_eof);
}
END_TEST

// No ipc socket: the kick fails from the ioloop, not inside kick().
START_TEST(test_ipc_unreachable_fails_from_the_ioloop)
{
	Peer peer;
	peer.reachable = false;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	ck_assert_uint_eq(a.calls, 0);
	ck_assert(run_until([&]() { return a.calls == 1; }, 5000));
	ck_assert(!a.ok);
	ck_assert_str_eq(a.error.c_str(), "ipc connect failed");
	peer.reachable = true;
	Result b;
	client->kick(Kick::by_user("b", KickReason::admin), b.callback());
	ck_assert_uint_eq(peer.connects, 1);
}
END_TEST

// Destroying the client (shutdown) reports the kicks still waiting, once.
START_TEST(test_ipc_destroyed_client_reports_waiting_kicks)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	ck_assert(run_until([&]() { return received_lines(peer, 1); }, 5000));
	client.reset();
	ck_assert_uint_eq(a.calls, 1);
	ck_assert(!a.ok);
	ck_assert(run_until([&]() { return peer.saw_eof; }, 5000));
}
END_TEST

int main()
{
	Suite *s = suite_create("kick-client-23");
	TCase *tc = adapter_test::tcase("wire");
	tcase_add_test(tc, test_ipc_kick_lines_on_the_wire);
	tcase_add_test(tc, test_ipc_replies_are_matched_in_order);
	suite_add_tcase(s, tc);
	tc = adapter_test::tcase("bad peer");
	tcase_add_test(tc, test_ipc_malformed_reply_fails_the_kicks_and_reconnects);
	tcase_add_test(tc, test_ipc_line_with_no_kick_waiting_is_logged);
	tcase_add_test(tc, test_ipc_peer_close_fails_waiting_kicks);
	tcase_add_test(tc, test_ipc_unreachable_fails_from_the_ioloop);
	tcase_add_test(tc, test_ipc_destroyed_client_reports_waiting_kicks);
	suite_add_tcase(s, tc);
	tc = adapter_test::tcase("reply timeout");
	tcase_add_test(tc, test_ipc_reply_timeout_fails_every_waiting_kick);
	tcase_add_test(tc, test_ipc_reply_timeout_restarts_after_each_reply);
	suite_add_tcase(s, tc);
	return adapter_test::run_suite(s);
}
