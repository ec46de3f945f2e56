// Check suite for ring security in the director core: what a connection may
// change before and after its handshake, ME/CONNECT/DIRECTOR checks, and the
// authenticated ring between two Director cores joined in memory.
#include <check.h>

#include "check-fixtures.h"
#include "check-main.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "director.h"

using namespace director::core;

namespace {

struct Log : LogSink {
	std::vector<std::string> lines;
	void log(LogLevel, const std::string &m) override { lines.push_back(m); }
	bool has(const std::string &part) const
	{
		for (const auto &l : lines) {
			if (l.find(part) != std::string::npos)
				return true;
		}
		return false;
	}
};

struct CountingRandom : RandomSource {
	uint8_t next = 1;
	void fill(uint8_t *data, size_t size) override
	{
		for (size_t i = 0; i < size; i++)
			data[i] = next++;
	}
};

const int64_t t0 = 1700000000;

bool has_host(const Director &d, const char *addr, unsigned vhosts = 0)
{
	for (const auto &h : d.host_list()) {
		if (h.ip == ip(addr) && (vhosts == 0 || h.vhost_count == vhosts))
			return true;
	}
	return false;
}

bool closed(const Effects &fx, RingConnId id)
{
	for (const auto &c : fx.ring_closes) {
		if (c.id == id)
			return true;
	}
	return false;
}

bool sent(const Effects &fx, RingConnId id, const std::string &prefix)
{
	for (const auto &s : fx.ring_sends) {
		if (s.id != id)
			continue;
		for (size_t at = s.data.find(prefix); at != std::string::npos;
		     at = s.data.find(prefix, at + 1)) {
			if (at == 0 || s.data[at - 1] == '\n')
				return true;
		}
	}
	return false;
}

// `d` is 127.0.0.2 among 127.0.0.1..3 with mail hosts 10.0.0.1-3; a
// connection arrives from 127.0.0.1 and says VERSION and ME.
RingConnId accept_from(Director &d, Effects &fx, const char *from = "127.0.0.1",
		       const char *me = "ME\t127.0.0.1\t9090\t1700000000")
{
	for (const char *h : {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
		d.add_config_host(ip(h), "", "");
	d.ring_start({{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}},
		     ip("127.0.0.2"), 9090, t0, fx);
	RingConnId in = d.ring_accept(ip(from), t0, fx);
	ck_assert_uint_ne(in, 0);
	d.ring_line(in, "VERSION\tdirector\t1\t9", t0, fx);
	d.ring_line(in, me, t0, fx);
	return in;
}

const char *intrusion[] = {
	"HOST-REMOVE\t127.0.0.1\t9090\t1000\t10.0.0.1",
	"HOST\t127.0.0.1\t9090\t1001\t10.0.0.2\t0\t\tD1700000000\t",
	"USER-MOVE\t127.0.0.1\t9090\t1002\t12345\t10.0.0.3",
	"USER\t777\t10.0.0.3\t1700000000",
	"HOST-HAND-START\t1",
	"HOST\t10.0.0.3\t7\t\tU0\t",
	"HOST-HAND-END\t1",
	"U\t888\t10.0.0.3\t1700000000",
};

} // namespace

// --- before the handshake finished --------------------------------------------

START_TEST(test_changes_before_done_change_nothing)
{
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx);
	for (const char *line : intrusion)
		d.ring_line(in, line, t0, fx);
	d.ring_line(in, "PING\t1700000000\t0", t0, fx);
	ck_assert(sent(fx, in, "PONG\t"));
	ck_assert(!closed(fx, in));
	ck_assert(has_host(d, "10.0.0.1", 100));
	ck_assert(has_host(d, "10.0.0.2", 100));
	ck_assert(has_host(d, "10.0.0.3", 100));
	ck_assert_uint_eq(d.user_count(), 0);
	// the connection never finishes: it times out, still nothing changed
	Effects later;
	d.tick(t0 + 60, later);
	ck_assert(closed(later, in));
	ck_assert(has_host(d, "10.0.0.1", 100));
	ck_assert_uint_eq(d.user_count(), 0);
}
END_TEST

START_TEST(test_changes_before_done_apply_at_done)
{
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx);
	d.ring_line(in, "HOST-HAND-START\t0", t0, fx);
	d.ring_line(in, "HOST\t10.0.0.9\t5\t\tU0\t", t0, fx);
	d.ring_line(in, "HOST-HAND-END\t0", t0, fx);
	d.ring_line(in, "U\t888\t10.0.0.9\t1700000000", t0, fx);
	d.ring_line(in, "USER\t999\t10.0.0.1\t1700000000", t0, fx);
	ck_assert(!has_host(d, "10.0.0.9"));
	ck_assert_uint_eq(d.user_count(), 0);
	d.ring_line(in, "OPTIONS\tconsistent-hashing", t0, fx);
	d.ring_line(in, "DONE", t0, fx);
	ck_assert(!closed(fx, in));
	ck_assert(has_host(d, "10.0.0.9", 5));
	ck_assert_uint_eq(d.user_count(), 2);
}
END_TEST

START_TEST(test_unlisted_director_in_handshake_is_ignored)
{
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx);
	d.ring_line(in, "DIRECTOR\t192.0.2.7\t9090", t0, fx);
	d.ring_line(in, "DONE", t0, fx);
	ck_assert(log.has("Ignoring DIRECTOR 192.0.2.7:9090: not listed"));
	for (const auto &e : d.director_list(t0))
		ck_assert(!e.ip || *e.ip != ip("192.0.2.7"));
	for (const auto &c : fx.ring_connects)
		ck_assert(c.ip != ip("192.0.2.7"));
}
END_TEST

// --- ME ---------------------------------------------------------------------

START_TEST(test_me_from_another_address_is_refused)
{
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx, "127.0.0.1", "ME\t127.0.0.3\t9090\t1700000000");
	ck_assert(closed(fx, in));
	ck_assert(log.has("ME says it is 127.0.0.3:9090 but the connection comes from 127.0.0.1"));
}
END_TEST

START_TEST(test_me_naming_an_unlisted_director_is_refused)
{
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx, "127.0.0.1", "ME\t127.0.0.1\t9999\t1700000000");
	ck_assert(closed(fx, in));
	ck_assert(log.has("ME names 127.0.0.1:9999, which is not listed"));
	for (const auto &e : d.director_list(t0))
		ck_assert(!(e.ip && *e.ip == ip("127.0.0.1") && e.port == 9999));
}
END_TEST

// --- after the handshake ---------------------------------------------------------

START_TEST(test_connect_to_an_unlisted_director_is_ignored)
{
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx);
	d.ring_line(in, "DONE", t0, fx);
	fx = Effects();
	d.ring_line(in, "CONNECT\t192.0.2.7\t25", t0, fx);
	ck_assert(fx.ring_connects.empty());
	ck_assert(log.has("Ignoring CONNECT 192.0.2.7:25: not listed"));
	// a listed one is still followed
	d.ring_line(in, "CONNECT\t127.0.0.1\t9090", t0, fx);
	ck_assert_uint_eq(fx.ring_connects.size(), 1);
}
END_TEST

START_TEST(test_director_from_the_left_adds_it)
{
	// How `doveadm director ring add` reaches the ring.
	Log log;
	Director d(DirectorConfig(), log);
	Effects fx;
	RingConnId in = accept_from(d, fx);
	d.ring_line(in, "DONE", t0, fx);
	d.ring_line(in, "DIRECTOR\t127.0.0.9\t9090", t0, fx);
	bool found = false;
	for (const auto &e : d.director_list(t0))
		found |= e.ip && *e.ip == ip("127.0.0.9");
	ck_assert(found);
}
END_TEST

// --- the authenticated ring --------------------------------------------------------

namespace {

// Two cores, 127.0.0.1 (a) and 127.0.0.2 (b), joined in memory.
struct Pair {
	Log la, lb;
	CountingRandom ra, rb;
	Director a{DirectorConfig(), la}, b{DirectorConfig(), lb};
	Effects fa, fb;
	std::map<RingConnId, RingConnId> a_to_b, b_to_a;
	std::vector<std::string> wire; // every line, for checks

	Pair(const std::string &secret_a, const std::string &secret_b)
	{
		rb.next = 100;
		if (!secret_a.empty())
			a.set_ring_secret(secret_a, ra);
		if (!secret_b.empty())
			b.set_ring_secret(secret_b, rb);
		for (Director *d : {&a, &b})
			d->add_config_host(ip("10.0.0.1"), "", "");
	}
	void start()
	{
		std::vector<RingDirectorConfig> list{{ip("127.0.0.1"), 9090}, {ip("127.0.0.2"), 9090}};
		a.ring_start(list, ip("127.0.0.1"), 9090, t0, fa);
		b.ring_start(list, ip("127.0.0.2"), 9090, t0, fb);
		settle();
	}
	void deliver(Director &to, Effects &to_fx, RingConnId id, const std::string &data)
	{
		size_t start = 0;
		while (start < data.size()) {
			size_t lf = data.find('\n', start);
			std::string line = data.substr(start, lf - start);
			wire.push_back(line);
			to.ring_line(id, line, t0, to_fx);
			start = lf + 1;
		}
	}
	void run(Director &self, Effects &fx, Director &peer, Effects &peer_fx, bool self_is_a)
	{
		auto &out = self_is_a ? a_to_b : b_to_a;
		auto &back = self_is_a ? b_to_a : a_to_b;
		Effects e;
		std::swap(e, fx);
		for (auto &c : e.ring_connects) {
			RingConnId theirs = peer.ring_accept(self_is_a ? ip("127.0.0.1") : ip("127.0.0.2"),
							     t0, peer_fx);
			if (theirs == 0) {
				self.ring_closed(c.id, "refused", t0, fx);
				continue;
			}
			out[c.id] = theirs;
			back[theirs] = c.id;
			self.ring_connected(c.id, t0, fx);
		}
		for (auto &s : e.ring_sends) {
			auto it = out.find(s.id);
			if (it != out.end())
				deliver(peer, peer_fx, it->second, s.data);
		}
		for (auto &c : e.ring_closes) {
			auto it = out.find(c.id);
			if (it == out.end())
				continue;
			RingConnId theirs = it->second;
			out.erase(it);
			back.erase(theirs);
			peer.ring_closed(theirs, "EOF", t0, peer_fx);
		}
	}
	void settle()
	{
		for (int i = 0; i < 1000; i++) {
			bool moved = !fa.ring_connects.empty() || !fa.ring_sends.empty() ||
				     !fa.ring_closes.empty() || !fb.ring_connects.empty() ||
				     !fb.ring_sends.empty() || !fb.ring_closes.empty();
			if (!moved)
				return;
			run(a, fa, b, fb, true);
			run(b, fb, a, fa, false);
		}
		ck_abort_msg("did not settle");
	}
	bool wire_has(const std::string &prefix) const
	{
		for (const auto &l : wire) {
			if (l.rfind(prefix, 0) == 0)
				return true;
		}
		return false;
	}
};

} // namespace

START_TEST(test_same_secret_forms_the_ring)
{
	Pair p("0123456789abcdef-secret", "0123456789abcdef-secret");
	p.start();
	ck_assert(p.a.ring_synced() && p.b.ring_synced());
	ck_assert(p.wire_has("RING-AUTH\t"));
	ck_assert(p.wire_has("VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t"));
	ck_assert(!p.la.has("Ring authentication failed") && !p.lb.has("Ring authentication failed"));
	int left = 0, right = 0;
	for (const auto &e : p.a.director_list(t0)) {
		left += e.type == "left";
		right += e.type == "right";
	}
	ck_assert_int_eq(left, 1);
	ck_assert_int_eq(right, 1);
}
END_TEST

START_TEST(test_wrong_secret_is_refused_before_anything_is_sent)
{
	Pair p("0123456789abcdef-secret", "0123456789abcdef-other!");
	p.start();
	ck_assert(p.la.has("wrong ring authentication proof") ||
		  p.lb.has("wrong ring authentication proof"));
	// no host list, users or directors crossed
	ck_assert(!p.wire_has("HOST-HAND-START"));
	ck_assert(!p.wire_has("DIRECTOR\t"));
	ck_assert(!p.wire_has("DONE"));
	for (const auto &e : p.a.director_list(t0))
		ck_assert(e.type != "left" && e.type != "right");
}
END_TEST

START_TEST(test_peer_without_secret_is_refused_and_never_sees_ring_auth)
{
	Pair p("0123456789abcdef-secret", "");
	p.start();
	ck_assert(p.la.has("did not offer ring authentication"));
	ck_assert(p.lb.has("The peer has director_ring_secret_file set, we do not"));
	ck_assert(!p.wire_has("RING-AUTH"));
	ck_assert(!p.a.ring_synced() || p.a.director_list(t0).size() == 2);
	for (const auto &e : p.a.director_list(t0))
		ck_assert(e.type != "left" && e.type != "right");
}
END_TEST

START_TEST(test_with_secret_lines_before_the_proof_close_the_connection)
{
	Log log;
	CountingRandom rnd;
	Director d(DirectorConfig(), log);
	d.set_ring_secret("0123456789abcdef-secret", rnd);
	Effects fx;
	RingConnId in = accept_from(d, fx); // VERSION without an offer: refused
	ck_assert(closed(fx, in));
	ck_assert(log.has("did not offer ring authentication"));
	// a peer that offers but then sends a ring change before its proof
	RingConnId in2 = d.ring_accept(ip("127.0.0.1"), t0, fx);
	d.ring_line(in2, "VERSION\tdirector\t1\t9\tAUTH-HMAC-SHA256\t" + std::string(64, 'a'), t0,
		    fx);
	d.ring_line(in2, "ME\t127.0.0.1\t9090\t1700000000", t0, fx);
	d.ring_line(in2, "HOST-REMOVE\t127.0.0.1\t9090\t5\t10.0.0.1", t0, fx);
	ck_assert(closed(fx, in2));
	ck_assert(log.has("before proving the ring secret"));
	ck_assert(has_host(d, "10.0.0.1"));
}
END_TEST

int main()
{
	Suite *s = suite_create("ring-security");
	TCase *tc = tcase_create("handshake");
	tcase_add_test(tc, test_changes_before_done_change_nothing);
	tcase_add_test(tc, test_changes_before_done_apply_at_done);
	tcase_add_test(tc, test_unlisted_director_in_handshake_is_ignored);
	suite_add_tcase(s, tc);
	tc = tcase_create("me");
	tcase_add_test(tc, test_me_from_another_address_is_refused);
	tcase_add_test(tc, test_me_naming_an_unlisted_director_is_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("after-handshake");
	tcase_add_test(tc, test_connect_to_an_unlisted_director_is_ignored);
	tcase_add_test(tc, test_director_from_the_left_adds_it);
	suite_add_tcase(s, tc);
	tc = tcase_create("secret");
	tcase_add_test(tc, test_same_secret_forms_the_ring);
	tcase_add_test(tc, test_wrong_secret_is_refused_before_anything_is_sent);
	tcase_add_test(tc, test_peer_without_secret_is_refused_and_never_sees_ring_auth);
	tcase_add_test(tc, test_with_secret_lines_before_the_proof_close_the_connection);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
