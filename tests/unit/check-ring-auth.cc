// Check suite for the authenticated ring handshake (ring-auth): the secret
// file's contents, the VERSION offer and RING-AUTH codecs, and two RingAuth
// state machines talking to each other.
#include <check.h>

#include "check-main.h"

#include <string>
#include <vector>

#include "digest.h"
#include "ring-auth.h"

using namespace director::core;

namespace {

const std::string secret_a = "0123456789abcdef-shared";
const std::string secret_b = "0123456789abcdef-other!";

RingAuthNonce nonce(uint8_t fill)
{
	RingAuthNonce n;
	for (size_t i = 0; i < n.size(); i++)
		n[i] = uint8_t(fill + i);
	return n;
}

RingEndpoint ep(uint8_t last, uint16_t port)
{
	return RingEndpoint{IpAddr::v4(127, 0, 0, last), port};
}

std::string version_line(const RingAuth &a)
{
	return "VERSION\tdirector\t1\t9\t" + a.offer();
}

// Runs a whole exchange; returns true when both sides proved.
struct Pair {
	RingAuth c, a;
	std::string c_error, a_error;
	Pair(const std::string &sc, const std::string &sa, RingEndpoint cme, uint8_t nc = 1,
	     uint8_t na = 101)
		: c(sc, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(nc)),
		  a(sa, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(na)), me(cme)
	{
	}
	RingEndpoint me;
	bool run()
	{
		// both VERSIONs cross; the acceptor's ME; the connector's ME
		RingAuth::Step sc = c.peer_version(version_line(a));
		RingAuth::Step sa = a.peer_version(version_line(c));
		ck_assert(sa.send.empty());
		if (!sc.error.empty() || !sa.error.empty()) {
			c_error = sc.error;
			a_error = sa.error;
			return false;
		}
		ck_assert(!sc.send.empty());
		ck_assert(c.peer_me(ep(2, 9090)).error.empty());
		sa = a.peer_me(me);
		ck_assert(sa.error.empty());
		sa = a.peer_proof(sc.send);
		a_error = sa.error;
		if (!sa.error.empty())
			return false;
		ck_assert(sa.proved && !sa.send.empty());
		sc = c.peer_proof(sa.send);
		c_error = sc.error;
		return sc.proved && sc.send.empty();
	}
};

} // namespace

// --- digest ------------------------------------------------------------------

START_TEST(test_hmac_sha256_matches_rfc4231_case_2)
{
	auto mac = hmac_sha256("Jefe", "what do ya want for nothing?");
	ck_assert(mac.has_value());
	const uint8_t want[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
				0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
				0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
	ck_assert(equal_constant_time(mac->data(), want, sizeof(want)));
	ck_assert(!equal_constant_time(mac->data(), want + 1, 16));
}
END_TEST

// --- secret ------------------------------------------------------------------

START_TEST(test_ring_secret_strips_one_line_ending)
{
	ck_assert(*parse_ring_secret("0123456789abcdef\n") == "0123456789abcdef");
	ck_assert(*parse_ring_secret("0123456789abcdef\r\n") == "0123456789abcdef");
	ck_assert(*parse_ring_secret("0123456789abcdef") == "0123456789abcdef");
}
END_TEST

START_TEST(test_ring_secret_refuses_short_long_and_multiline)
{
	ck_assert(!parse_ring_secret("").ok());
	ck_assert(!parse_ring_secret("short\n").ok());
	ck_assert(!parse_ring_secret(std::string(ring_secret_min_bytes - 1, 'x')).ok());
	ck_assert(parse_ring_secret(std::string(ring_secret_min_bytes, 'x')).ok());
	ck_assert(parse_ring_secret(std::string(ring_secret_max_bytes, 'x')).ok());
	ck_assert(!parse_ring_secret(std::string(ring_secret_max_bytes + 1, 'x')).ok());
	ck_assert(!parse_ring_secret("0123456789abcdef\n\n").ok());
	ck_assert(!parse_ring_secret("01234567\n89abcdef").ok());
	ck_assert(!parse_ring_secret(std::string("0123456789\0abcdef", 17)).ok());
	ck_assert(parse_ring_secret("short").error().find("at least 16") != std::string::npos);
}
END_TEST

// --- offer codec -------------------------------------------------------------

START_TEST(test_offer_round_trips_in_a_version_line)
{
	std::string line = "VERSION\tdirector\t1\t9\t" + format_ring_auth_offer(nonce(7));
	auto r = parse_ring_auth_offer(line);
	ck_assert(r.ok() && r->has_value());
	ck_assert(**r == nonce(7));
	ck_assert_uint_eq(format_ring_auth_offer(nonce(7)).size(),
			  ring_auth_mechanism.size() + 1 + 2 * ring_auth_nonce_bytes);
}
END_TEST

START_TEST(test_offer_table)
{
	const std::string hex = format_ring_auth_offer(nonce(0)).substr(ring_auth_mechanism.size() + 1);
	struct Row {
		std::string line;
		int want; // 1 offer, 0 none, -1 error
	} rows[] = {
		{"VERSION\tdirector\t1\t9", 0},                         // stock
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t" + hex, 1}, // valid
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t" + hex + "\textra", 1},
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256", -1},        // missing nonce
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t", -1},      // empty nonce
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t" + hex.substr(2), -1}, // short
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t" + hex + "00", -1},    // long
		{"VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t" + std::string(64, 'g'), -1},
		{"VERSION\tdirector\t1\t9\tAUTH-SOMETHING-ELSE\t" + hex, 0}, // unknown mechanism
		{"VERSION\tdirector\t1\t9\tauth-hmac-sha256\t" + hex, 0},    // case matters
		{"ME\t127.0.0.1\t9090\tAUTH-HMAC-SHA256\t" + hex, 0},        // not VERSION
		{"VERSION\tdirector\t1\t9\t" + std::string(2000, 'A'), 0},   // oversized
		{"", 0},
	};
	for (const Row &row : rows) {
		auto r = parse_ring_auth_offer(row.line);
		int got = !r.ok() ? -1 : r->has_value() ? 1 : 0;
		ck_assert_msg(got == row.want, "offer '%.60s': got %d want %d", row.line.c_str(), got,
			      row.want);
		if (!r.ok())
			ck_assert(!r.error().empty());
	}
}
END_TEST

// --- RING-AUTH codec -----------------------------------------------------------

START_TEST(test_ring_auth_line_table)
{
	RingAuthProof p{};
	p[0] = 0xab;
	p[31] = 0x01;
	std::string good = format_ring_auth_line(p);
	ck_assert(good.rfind("RING-AUTH\tab", 0) == 0);
	ck_assert(*parse_ring_auth_line(good) == p);
	std::string hex = good.substr(10);
	struct Row {
		std::string line;
		bool ok;
	} rows[] = {
		{good, true},
		{"RING-AUTH\t" + hex.substr(0, 62) + "AB", true}, // upper case accepted
		{"RING-AUTH", false},                            // missing field
		{"RING-AUTH\t", false},                          // empty field
		{"RING-AUTH\t" + hex + "\t" + hex, false},       // extra field
		{"RING-AUTH\t" + hex.substr(1), false},          // odd length
		{"RING-AUTH\t" + hex + "00", false},             // too long
		{"RING-AUTH\t" + std::string(64, 'z'), false},   // not hex
		{"RING-AUTH\t" + std::string(5000, 'a'), false}, // oversized
		{"RING-AUTHX\t" + hex, false},                   // unknown command
		{"PING\t1\t2", false},
		// escaped command name: the classifier and the parser agree (fuzz)
		{"\001RING-AUTH\t" + hex, false},
	};
	for (const Row &row : rows) {
		auto r = parse_ring_auth_line(row.line);
		ck_assert_msg(r.ok() == row.ok, "'%.60s'", row.line.c_str());
		if (!r.ok())
			ck_assert(!r.error().empty());
	}
	ck_assert(is_ring_auth_line("RING-AUTH"));
	ck_assert(is_ring_auth_line("RING-AUTH\tjunk"));
	ck_assert(!is_ring_auth_line("RING-AUTHX\tjunk"));
	ck_assert(!is_ring_auth_line("VERSION\tdirector\t1\t9"));
}
END_TEST

START_TEST(test_only_handshake_and_keepalive_commands_before_proof)
{
	for (const char *ok : {"VERSION", "ME", "RING-AUTH", "PING", "PONG", "QUIT"})
		ck_assert_msg(ring_auth_allowed_before_proof(ok), "%s", ok);
	for (const char *no : {"DIRECTOR", "CONNECT", "HOST", "HOST-REMOVE", "HOST-HAND-START", "U",
			       "USER", "SYNC", "DONE", "OPTIONS", "DIRECTOR-REMOVE", "USER-MOVE", ""})
		ck_assert_msg(!ring_auth_allowed_before_proof(no), "%s", no);
}
END_TEST

// --- the exchange ---------------------------------------------------------------

START_TEST(test_same_secret_both_sides_prove)
{
	Pair p(secret_a, secret_a, ep(1, 9090));
	ck_assert_msg(p.run(), "c: %s a: %s", p.c_error.c_str(), p.a_error.c_str());
	ck_assert(p.c.proved() && p.a.proved());
}
END_TEST

START_TEST(test_wrong_secret_is_refused_by_the_acceptor)
{
	Pair p(secret_b, secret_a, ep(1, 9090));
	ck_assert(!p.run());
	ck_assert(p.a.failed());
	ck_assert(p.a_error.find("wrong ring authentication proof") != std::string::npos);
	ck_assert(!p.a.proved() && !p.c.proved());
}
END_TEST

START_TEST(test_wrong_secret_is_refused_by_the_connector)
{
	// An acceptor that cannot prove: the connector's check must fail too.
	RingAuth c(secret_a, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(1));
	RingAuth a(secret_b, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(101));
	RingAuth::Step sc = c.peer_version(version_line(a));
	(void)a.peer_version(version_line(c));
	(void)a.peer_me(ep(1, 9090));
	// a forged acceptor proof made with secret_b
	auto forged = ring_auth_proof(secret_b, RingAuthRole::acceptor, ep(1, 9090), ep(2, 9090),
				      nonce(1), nonce(101));
	RingAuth::Step r = c.peer_proof(format_ring_auth_line(*forged));
	ck_assert(!r.proved && !r.error.empty());
	ck_assert(c.failed());
}
END_TEST

START_TEST(test_peer_without_offer_is_refused)
{
	RingAuth c(secret_a, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(1));
	RingAuth::Step s = c.peer_version("VERSION\tdirector\t1\t9");
	ck_assert(s.send.empty());
	ck_assert(s.error.find("did not offer") != std::string::npos);
	RingAuth a(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(2));
	ck_assert(!a.peer_version("VERSION\tdirector\t1\t9").error.empty());
	ck_assert(a.failed());
	// once failed, nothing revives it
	ck_assert(!a.peer_me(ep(1, 9090)).error.empty());
	ck_assert(!a.peer_proof("RING-AUTH\t" + std::string(64, '0')).error.empty());
}
END_TEST

START_TEST(test_recorded_proof_does_not_work_with_new_nonces)
{
	// Record a connector proof from one session...
	RingAuth c1(secret_a, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(1));
	RingAuth a1(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(101));
	std::string recorded = c1.peer_version(version_line(a1)).send;
	ck_assert(!recorded.empty());
	// ...and replay it, with the same connector nonce, to a new acceptor
	// session, which has a fresh nonce.
	RingAuth a2(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(150));
	ck_assert(a2.peer_version(version_line(c1)).error.empty());
	ck_assert(a2.peer_me(ep(1, 9090)).error.empty());
	RingAuth::Step s = a2.peer_proof(recorded);
	ck_assert(!s.proved && s.send.empty() && !s.error.empty());
}
END_TEST

START_TEST(test_proof_is_bound_to_the_claimed_endpoint)
{
	// The connector proves as 127.0.0.1:9090 but ME claims port 9091.
	Pair p(secret_a, secret_a, ep(1, 9091));
	ck_assert(!p.run());
	ck_assert(!p.a_error.empty() && p.a.failed());
	// and to the acceptor's address: a proof for another acceptor fails
	RingAuth a(secret_a, RingAuthRole::acceptor, ep(3, 9090), std::nullopt, nonce(101));
	RingAuth c(secret_a, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(1));
	std::string proof = c.peer_version(version_line(a)).send;
	(void)a.peer_version(version_line(c));
	(void)a.peer_me(ep(1, 9090));
	ck_assert(!a.peer_proof(proof).proved);
}
END_TEST

START_TEST(test_reflected_proof_and_nonce_are_refused)
{
	// Our own nonce back in the peer's VERSION.
	RingAuth c(secret_a, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(1));
	ck_assert(c.peer_version(version_line(c)).error.find("own nonce") != std::string::npos);
	// An acceptor's proof sent back to it as if it were the connector's.
	RingAuth a(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(101));
	auto as_acceptor = ring_auth_proof(secret_a, RingAuthRole::acceptor, ep(1, 9090),
					   ep(2, 9090), nonce(1), nonce(101));
	(void)a.peer_version("VERSION\tdirector\t1\t9\t" + format_ring_auth_offer(nonce(1)));
	(void)a.peer_me(ep(1, 9090));
	ck_assert(!a.peer_proof(format_ring_auth_line(*as_acceptor)).proved);
}
END_TEST

START_TEST(test_out_of_order_inputs_fail)
{
	RingAuth a(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(101));
	ck_assert(a.peer_proof("RING-AUTH\t" + std::string(64, '0')).error.find("RING-AUTH while") !=
		  std::string::npos);
	RingAuth a2(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(101));
	ck_assert(a2.peer_version("VERSION\tdirector\t1\t9\t" + format_ring_auth_offer(nonce(1)))
			  .error.empty());
	// RING-AUTH before ME: the acceptor does not know whom to check yet
	ck_assert(!a2.peer_proof("RING-AUTH\t" + std::string(64, '0')).error.empty());
	// duplicate VERSION
	RingAuth a3(secret_a, RingAuthRole::acceptor, ep(2, 9090), std::nullopt, nonce(101));
	std::string v = "VERSION\tdirector\t1\t9\t" + format_ring_auth_offer(nonce(1));
	ck_assert(a3.peer_version(v).error.empty());
	ck_assert(!a3.peer_version(v).error.empty());
	// a proved pair: a second RING-AUTH is an error
	Pair p(secret_a, secret_a, ep(1, 9090));
	ck_assert(p.run());
	ck_assert(!p.a.peer_proof("RING-AUTH\t" + std::string(64, '0')).error.empty());
	// a connector whose acceptor's ME names someone else
	RingAuth c(secret_a, RingAuthRole::connector, ep(1, 9090), ep(2, 9090), nonce(1));
	ck_assert(!c.peer_me(ep(2, 9091)).error.empty());
}
END_TEST

START_TEST(test_malformed_proof_lines_fail_cleanly)
{
	for (const char *line : {"RING-AUTH", "RING-AUTH\tzz", "RING-AUTH\t\t", "RING-AUTH\t"}) {
		Pair p(secret_a, secret_a, ep(1, 9090));
		(void)p.c.peer_version(version_line(p.a));
		(void)p.a.peer_version(version_line(p.c));
		(void)p.a.peer_me(ep(1, 9090));
		RingAuth::Step s = p.a.peer_proof(line);
		ck_assert_msg(!s.proved && !s.error.empty() && s.send.empty(), "%s", line);
	}
}
END_TEST

int main()
{
	Suite *s = suite_create("ring-auth");
	TCase *tc = tcase_create("digest");
	tcase_add_test(tc, test_hmac_sha256_matches_rfc4231_case_2);
	suite_add_tcase(s, tc);
	tc = tcase_create("secret");
	tcase_add_test(tc, test_ring_secret_strips_one_line_ending);
	tcase_add_test(tc, test_ring_secret_refuses_short_long_and_multiline);
	suite_add_tcase(s, tc);
	tc = tcase_create("codec");
	tcase_add_test(tc, test_offer_round_trips_in_a_version_line);
	tcase_add_test(tc, test_offer_table);
	tcase_add_test(tc, test_ring_auth_line_table);
	tcase_add_test(tc, test_only_handshake_and_keepalive_commands_before_proof);
	suite_add_tcase(s, tc);
	tc = tcase_create("exchange");
	tcase_add_test(tc, test_same_secret_both_sides_prove);
	tcase_add_test(tc, test_wrong_secret_is_refused_by_the_acceptor);
	tcase_add_test(tc, test_wrong_secret_is_refused_by_the_connector);
	tcase_add_test(tc, test_peer_without_offer_is_refused);
	tcase_add_test(tc, test_recorded_proof_does_not_work_with_new_nonces);
	tcase_add_test(tc, test_proof_is_bound_to_the_claimed_endpoint);
	tcase_add_test(tc, test_reflected_proof_and_nonce_are_refused);
	tcase_add_test(tc, test_out_of_order_inputs_fail);
	tcase_add_test(tc, test_malformed_proof_lines_fail_cleanly);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
