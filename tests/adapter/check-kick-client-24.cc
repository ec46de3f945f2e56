// Check suite for the Dovecot 2.4 kick client (adapter/kick-client-24.cc)
// against anvil's side of the exchange over a socketpair: the handshake, the
// exact lines each kind of kick sends (a kick by user hash reads CONNECT-DUMP
// first), the replies it takes, and an anvil that misbehaves, closes or never
// answers.
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
constexpr const char *client_handshake = "VERSION\tanvil-client\t2\t0\n\n";
constexpr const char *server_handshake = "VERSION\tanvil-server\t2\t0\n";

UsernameHash lower_user_hash()
{
	auto hash = UsernameHash::parse("%Lu");
	ck_assert(hash.ok());
	return *hash;
}

std::unique_ptr<KickClient> make_client(Peer &peer)
{
	return KickClient::create(director::adapter::director_root_event(), lower_user_hash(),
				  peer.connector(), test_reply_timeout_msecs);
}

// Waits until the peer got `text` after the client's handshake, and forgets
// what it got so far.
bool expect(Peer &peer, const std::string &text)
{
	std::string want = std::string(client_handshake) + text;
	if (!run_until([&]() { return peer.received.size() >= want.size(); }, 5000))
		return false;
	bool same = peer.received == want;
	if (!same)
		fprintf(stderr, "peer got '%s', expected '%s'\n", peer.received.c_str(),
			want.c_str());
	return same;
}

} // namespace

START_TEST(test_anvil_kick_by_user_and_alt_field_lines)
{
	Peer peer;
	auto client = make_client(peer);
	client->connect();
	ck_assert_uint_eq(peer.connects, 1);
	peer.send(server_handshake);
	Result a, b;
	client->kick(Kick::by_user("us\ter@example.com", KickReason::admin), a.callback());
	client->kick(Kick::by_alt_field("master_user", "john", KickReason::admin),
		     b.callback());
	// One command in flight: the second waits for the first reply.
	ck_assert(expect(peer, "KICK-USER\tus\001ter@example.com\n"));
	peer.send("2\n");
	ck_assert(run_until([&]() { return a.calls == 1; }, 5000));
	ck_assert(a.ok);
	ck_assert(expect(peer, "KICK-USER\tus\001ter@example.com\nKICK-ALT-USER\tmaster_user\tjohn\n"));
	peer.send("0\n");
	ck_assert(run_until([&]() { return b.calls == 1; }, 5000));
	ck_assert(b.ok);
}
END_TEST

// By user hash: CONNECT-DUMP, then KICK-USER <user> <conn-guid> for each
// proxied session whose user hashes to it, except those proxied to except_ip.
START_TEST(test_anvil_kick_by_hash_kicks_matching_sessions)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	uint32_t alice = lower_user_hash().hash("alice");
	client->kick(Kick::by_user_hash(alice, IpAddr::parse("10.1.0.2"), "", KickReason::conflict),
		     a.callback());
	peer.send(server_handshake);
	ck_assert(expect(peer, "CONNECT-DUMP\n"));
	peer.send("master_user\n"
		  "101\tAlice\timap\t10.0.0.9\tguid1\t10.1.0.1\tam\n"
		  "102\talice\timap\t10.0.0.9\tguid2\t10.1.0.2\tam\n"
		  "103\tbob\timap\t10.0.0.9\tguid3\t10.1.0.1\tbm\n"
		  "104\talice\timap\t10.0.0.9\tguid4\t\tam\n"
		  "105\talice\tpop3\t10.0.0.9\tguid5\t10.1.0.3\tam\n"
		  "\n");
	ck_assert(expect(peer, "CONNECT-DUMP\nKICK-USER\tAlice\tguid1\n"));
	peer.send("1\n");
	ck_assert(expect(peer, "CONNECT-DUMP\nKICK-USER\tAlice\tguid1\nKICK-USER\talice\tguid5\n"));
	ck_assert_uint_eq(a.calls, 0);
	peer.send("1\n");
	ck_assert(run_until([&]() { return a.calls == 1; }, 5000));
	ck_assert(a.ok);
}
END_TEST

START_TEST(test_anvil_malformed_kick_reply_fails_the_kick)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	peer.send(server_handshake);
	ck_assert(expect(peer, "KICK-USER\ta\n"));
	peer.send("-1 lots\n");
	ck_assert(run_until([&]() { return a.calls == 1; }, 5000));
	ck_assert(!a.ok);
	ck_assert_str_eq(a.error.c_str(), "invalid kick reply from anvil: -1 lots");
}
END_TEST

START_TEST(test_anvil_bad_handshake_fails_the_kick)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	peer.send("VERSION\tdoveadm-server\t1\t0\n");
	ck_assert(run_until([&]() { return a.calls == 1 && peer.saw_eof; }, 5000));
	ck_assert(!a.ok);
	ck_assert(logged("anvil sent an unexpected handshake: VERSION\tdoveadm-server"));
}
END_TEST

// anvil closes with a kick in flight: it is sent once more on a new
// connection; a second close fails it.
START_TEST(test_anvil_close_retries_once_then_fails)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	peer.send(server_handshake);
	ck_assert(expect(peer, "KICK-USER\ta\n"));
	peer.close_peer();
	ck_assert(run_until([&]() { return peer.connects == 2 && peer.fd != -1; }, 5000));
	peer.send(server_handshake);
	ck_assert(expect(peer, "KICK-USER\ta\n"));
	ck_assert_uint_eq(a.calls, 0);
	peer.close_peer();
	ck_assert(run_until([&]() { return a.calls == 1; }, 5000));
	ck_assert(!a.ok);
	ck_assert(logged("anvil disconnected"));
}
END_TEST

// A hung anvil: the kick fails after the reply timeout, with a log line, and
// the kicks queued behind it fail too, so the core's count of running kicks
// goes down again.
START_TEST(test_anvil_reply_timeout_fails_the_kicks)
{
	Peer peer;
	auto client = make_client(peer);
	Result a, b;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	client->kick(Kick::by_user("b", KickReason::admin), b.callback());
	peer.send(server_handshake);
	ck_assert(expect(peer, "KICK-USER\ta\n"));
	ck_assert_uint_eq(a.calls, 0);
	ck_assert(run_until([&]() { return a.calls == 1 && b.calls == 1 && peer.saw_eof; },
			    5000));
	ck_assert(!a.ok && !b.ok);
	ck_assert_str_eq(a.error.c_str(), "anvil timed out");
	ck_assert(logged("anvil did not answer in 300 msecs"));
	ck_assert(!run_until([&]() { return a.calls > 1 || b.calls > 1; }, 500));
}
END_TEST

START_TEST(test_anvil_destroyed_client_reports_waiting_kicks)
{
	Peer peer;
	auto client = make_client(peer);
	Result a;
	client->kick(Kick::by_user("a", KickReason::admin), a.callback());
	peer.send(server_handshake);
	ck_assert(expect(peer, "KICK-USER\ta\n"));
	client.reset();
	ck_assert_uint_eq(a.calls, 1);
	ck_assert(!a.ok);
}
END_TEST

int main()
{
	Suite *s = suite_create("kick-client-24");
	TCase *tc = adapter_test::tcase("wire");
	tcase_add_test(tc, test_anvil_kick_by_user_and_alt_field_lines);
	tcase_add_test(tc, test_anvil_kick_by_hash_kicks_matching_sessions);
	suite_add_tcase(s, tc);
	tc = adapter_test::tcase("bad peer");
	tcase_add_test(tc, test_anvil_malformed_kick_reply_fails_the_kick);
	tcase_add_test(tc, test_anvil_bad_handshake_fails_the_kick);
	tcase_add_test(tc, test_anvil_close_retries_once_then_fails);
	tcase_add_test(tc, test_anvil_destroyed_client_reports_waiting_kicks);
	suite_add_tcase(s, tc);
	tc = adapter_test::tcase("reply timeout");
	tcase_add_test(tc, test_anvil_reply_timeout_fails_the_kicks);
	suite_add_tcase(s, tc);
	return adapter_test::run_suite(s);
}
