// Check suite for core/health: settings values, probe dialogs, the verdict
// state machine (rounds, rapid phase, no flapping), the decider rule with
// take-over, the mass-failure guard and "only undo our own downs".
#include <map>
#include <string>
#include <utility>
#include <vector>

// After the C++ headers: Check defines a fail() macro that breaks <ios>.
#include <check.h>

#include "check-main.h"

#include "health.h"

using namespace director::core;

static IpAddr ip(const char *s)
{
	auto v = IpAddr::parse(s);
	ck_assert_msg(v.has_value(), "%s", s);
	return *v;
}

// dovemon's defaults with short, easy numbers: 3 failed rounds every 1000
// msecs, then 7 of 10 rapid polls every 100 msecs; one probe per host.
static HealthConfig test_config()
{
	HealthConfig c;
	c.checks = *parse_health_checks("imap:143");
	c.interval_msecs = 1000;
	c.rapid_interval_msecs = 100;
	c.fail_rounds = 3;
	c.rapid_polls = 10;
	c.rapid_threshold = 7;
	c.max_down = *parse_health_max_down("1");
	return c;
}

// Runs due rounds with `result(ip)` until `until_msecs`; returns every
// transition seen. Time advances in 10 msec steps.
template <typename F>
static std::vector<HealthTransition> run(HealthChecker &hc, int64_t &now, int64_t until, F result)
{
	std::vector<HealthTransition> out;
	for (; now < until; now += 10) {
		for (const IpAddr &a : hc.due(now)) {
			bool ok = result(a);
			hc.probe_done(a, ok, ok ? "" : "refused", now, out);
		}
	}
	return out;
}

static const HealthHostStatus &status_of(const std::vector<HealthHostStatus> &all,
					 const IpAddr &a)
{
	for (const auto &s : all) {
		if (s.ip == a)
			return s;
	}
	ck_abort_msg("no status for %s", a.to_string().c_str());
	return all.front();
}

static std::vector<std::pair<IpAddr, bool>> hosts3(bool d1 = false, bool d2 = false,
						   bool d3 = false)
{
	return {{ip("10.0.0.1"), d1}, {ip("10.0.0.2"), d2}, {ip("10.0.0.3"), d3}};
}


// Feeds `line` and checks what the dialog sends back (a helper: Check's
// macros evaluate their arguments more than once).
static void expect_send(HealthDialog &d, const char *line, const char *want)
{
	std::string got = d.line(line).send;
	ck_assert_msg(got == want, "after '%s' sent '%s', wanted '%s'", line, got.c_str(), want);
}

// ---- settings values

START_TEST(test_health_checks_parse_defaults_and_per_host_lists)
{
	auto c = parse_health_checks("imap:143,lmtp:24 10.0.0.5=pop3:110 ::1=imaps:993");
	ck_assert(c.ok());
	ck_assert_uint_eq(c->defaults.size(), 2);
	ck_assert(c->defaults[1] == (HealthProbe{HealthProtocol::lmtp, 24}));
	ck_assert(c->for_host(ip("10.0.0.5"))[0] == (HealthProbe{HealthProtocol::pop3, 110}));
	ck_assert(c->for_host(ip("::1"))[0] == (HealthProbe{HealthProtocol::imaps, 993}));
	ck_assert_uint_eq(c->for_host(ip("10.0.0.9")).size(), 2);
	ck_assert(parse_health_checks("")->empty());
}
END_TEST

START_TEST(test_health_checks_reject_bad_items)
{
	const char *bad[] = {"imap", "imap:0", "imap:70000", "smtp:25", "imap:143 pop3:110",
			     "x=imap:143", "10.0.0.1=imap:143 10.0.0.1=pop3:110", "imap:14a",
			     "10.0.0.1="};
	for (const char *b : bad)
		ck_assert_msg(!parse_health_checks(b).ok(), "accepted %s", b);
}
END_TEST

START_TEST(test_health_max_down_counts_and_percentages)
{
	ck_assert_uint_eq(parse_health_max_down("2")->limit(10), 2);
	ck_assert_uint_eq(parse_health_max_down("30%")->limit(10), 3);
	ck_assert_uint_eq(parse_health_max_down("30%")->limit(3), 1); // at least one
	ck_assert_uint_eq(parse_health_max_down("0%")->limit(10), 0);
	ck_assert_uint_eq(parse_health_max_down("0")->limit(10), 0);
	ck_assert(!parse_health_max_down("101%").ok());
	ck_assert(!parse_health_max_down("-1").ok());
	ck_assert(!parse_health_max_down("").ok());
	ck_assert(!parse_health_max_down("%").ok());
}
END_TEST

START_TEST(test_health_deciders_parse_sorted_with_default_port)
{
	auto d = parse_health_deciders("10.0.0.2 10.0.0.1:9091 [::1]:9000 10.0.0.2:9090", 9090);
	ck_assert(d.ok());
	ck_assert_uint_eq(d->size(), 3); // the duplicate is dropped
	ck_assert((*d)[0].name() == "10.0.0.1:9091");
	ck_assert((*d)[1].name() == "10.0.0.2:9090");
	ck_assert((*d)[2].name() == "[::1]:9000");
	ck_assert(!parse_health_deciders("director1.example.com", 9090).ok());
	ck_assert(!parse_health_deciders("10.0.0.1:0", 9090).ok());
	ck_assert(!parse_health_deciders("[::1", 9090).ok());
}
END_TEST

START_TEST(test_health_login_file_needs_user_and_password)
{
	auto l = parse_health_login("# probe account\nuser=probe@example.com\npassword=a b=c\n");
	ck_assert(l.ok());
	ck_assert_str_eq(l->user.c_str(), "probe@example.com");
	ck_assert_str_eq(l->password.c_str(), "a b=c");
	ck_assert(!parse_health_login("user=x\n").ok());
	ck_assert(!parse_health_login("password=x\n").ok());
	ck_assert(!parse_health_login("user=x\npassword=y\nshell=z\n").ok());
	ck_assert(!parse_health_login(std::string("user=x\npassword=a\0b\n", 20)).ok());
}
END_TEST

START_TEST(test_health_config_validation_names_the_setting)
{
	HealthConfig c = test_config();
	ck_assert(validate_health_config(c).ok());
	c.rapid_threshold = 11;
	auto st = validate_health_config(c);
	ck_assert(!st.ok());
	ck_assert(st.error().find("director_health_rapid_threshold") != std::string::npos);
	c = test_config();
	c.fail_rounds = 0;
	ck_assert(!validate_health_config(c).ok());
}
END_TEST

// ---- dialogs

START_TEST(test_health_dialog_imap_banner_only)
{
	HealthConfig c = test_config();
	HealthDialog d(HealthProtocol::imap, c);
	auto s = d.line("* OK [CAPABILITY IMAP4rev1] ready");
	ck_assert(s.done && s.ok);
	ck_assert_str_eq(s.send.c_str(), "h1 LOGOUT\r\n");
	HealthDialog bad(HealthProtocol::imap, c);
	s = bad.line("* BYE too many connections");
	ck_assert(s.done && !s.ok);
	ck_assert(s.reason.find("too many connections") != std::string::npos);
}
END_TEST

START_TEST(test_health_dialog_imap_login_quotes_and_checks_tagged_reply)
{
	HealthConfig c = test_config();
	c.login = HealthLogin{"probe", "pa\"ss\\"};
	HealthDialog d(HealthProtocol::imap, c);
	auto s = d.line("* OK ready");
	ck_assert(!s.done);
	ck_assert_str_eq(s.send.c_str(), "h1 LOGIN \"probe\" \"pa\\\"ss\\\\\"\r\n");
	s = d.line("* CAPABILITY IMAP4rev1");
	ck_assert(!s.done && s.send.empty());
	s = d.line("h1 OK Logged in");
	ck_assert(s.done && s.ok);
	HealthDialog no(HealthProtocol::imap, c);
	no.line("* OK ready");
	s = no.line("h1 NO [AUTHENTICATIONFAILED] Authentication failed.");
	ck_assert(s.done && !s.ok);
	ck_assert(s.reason.find("IMAP login failed") == 0);
}
END_TEST

START_TEST(test_health_dialog_pop3_login)
{
	HealthConfig c = test_config();
	c.login = HealthLogin{"probe", "secret"};
	HealthDialog d(HealthProtocol::pop3, c);
	expect_send(d, "+OK Dovecot ready.", "USER probe\r\n");
	expect_send(d, "+OK", "PASS secret\r\n");
	auto s = d.line("+OK Logged in.");
	ck_assert(s.done && s.ok);
	HealthDialog bad(HealthProtocol::pop3, c);
	bad.line("+OK Dovecot ready.");
	bad.line("+OK");
	s = bad.line("-ERR [AUTH] Authentication failed.");
	ck_assert(s.done && !s.ok);
}
END_TEST

START_TEST(test_health_dialog_lmtp_rcpt_with_multiline_replies)
{
	HealthConfig c = test_config();
	c.lmtp_rcpt = "probe@example.com";
	HealthDialog d(HealthProtocol::lmtp, c);
	expect_send(d, "220 host Dovecot LMTP ready", "LHLO director-health\r\n");
	expect_send(d, "250-host", "");
	expect_send(d, "250-PIPELINING", "");
	expect_send(d, "250 8BITMIME", "MAIL FROM:<>\r\n");
	expect_send(d, "250 2.1.0 OK", "RCPT TO:<probe@example.com>\r\n");
	auto s = d.line("250 2.1.5 OK");
	ck_assert(s.done && s.ok);
	HealthDialog bad(HealthProtocol::lmtp, c);
	bad.line("220 ready");
	bad.line("250 ok");
	bad.line("250 ok");
	s = bad.line("550 5.1.1 <probe@example.com> User doesn't exist");
	ck_assert(s.done && !s.ok);
	ck_assert(s.reason.find("RCPT TO") != std::string::npos);
	HealthConfig plain = test_config();
	HealthDialog banner(HealthProtocol::lmtp, plain);
	s = banner.line("421 shutting down");
	ck_assert(s.done && !s.ok);
}
END_TEST

START_TEST(test_health_dialog_quotes_server_text_safely)
{
	HealthConfig c = test_config();
	HealthDialog d(HealthProtocol::imap, c);
	auto s = d.line(std::string("bad\tbanner\x01") + std::string(500, 'x'));
	ck_assert(s.done && !s.ok);
	ck_assert(s.reason.find('\t') == std::string::npos);
	ck_assert_uint_lt(s.reason.size(), 200);
}
END_TEST

// ---- verdicts

START_TEST(test_health_verdict_needs_failed_rounds_then_rapid_majority)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	IpAddr bad = ip("10.0.0.2");
	auto changes = run(hc, now, 1990, [&](const IpAddr &a) { return !(a == bad); });
	// rounds at 0 and 1000: suspect, not yet the rapid phase
	ck_assert(status_of(hc.status(), bad).state == HealthState::suspect);
	changes = run(hc, now, 2010, [&](const IpAddr &a) { return !(a == bad); });
	ck_assert(status_of(hc.status(), bad).state == HealthState::checking_down);
	// 7 rapid polls 100 msecs apart
	changes = run(hc, now, 2010 + 6 * 100, [&](const IpAddr &a) { return !(a == bad); });
	ck_assert(status_of(hc.status(), bad).state == HealthState::checking_down);
	changes = run(hc, now, 2010 + 7 * 100, [&](const IpAddr &a) { return !(a == bad); });
	ck_assert(status_of(hc.status(), bad).state == HealthState::down);
	ck_assert_uint_eq(changes.size(), 1);
	ck_assert(changes[0].from == HealthState::checking_down);
	ck_assert(changes[0].reason.find("refused") == 0);
	ck_assert(status_of(hc.status(), ip("10.0.0.1")).state == HealthState::up);
}
END_TEST

START_TEST(test_health_verdict_rapid_phase_without_majority_keeps_up)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	IpAddr h = ip("10.0.0.1");
	run(hc, now, 2010, [&](const IpAddr &) { return false; });
	ck_assert(status_of(hc.status(), h).state == HealthState::checking_down);
	// healthy again: 4 good polls make 7 bad ones impossible
	auto changes = run(hc, now, 2500, [&](const IpAddr &) { return true; });
	ck_assert(status_of(hc.status(), h).state == HealthState::up);
	for (const auto &t : changes)
		ck_assert(t.to != HealthState::down);
}
END_TEST

START_TEST(test_health_alternating_host_never_changes_verdict)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	std::map<IpAddr, unsigned> rounds;
	// each host fails two rounds of three, for a minute
	auto changes = run(hc, now, 60'000, [&](const IpAddr &a) { return rounds[a]++ % 3 == 2; });
	for (const auto &t : changes)
		ck_assert(t.to != HealthState::down && t.to != HealthState::checking_down);
	HealthActions a = hc.decide(now);
	ck_assert(a.down.empty());
}
END_TEST

START_TEST(test_health_down_host_comes_back_through_the_same_phases)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	bool healthy = false;
	run(hc, now, 3000, [&](const IpAddr &) { return healthy; });
	ck_assert(status_of(hc.status(), ip("10.0.0.3")).state == HealthState::down);
	healthy = true;
	run(hc, now, now + 1500, [&](const IpAddr &) { return healthy; });
	ck_assert(status_of(hc.status(), ip("10.0.0.3")).state == HealthState::recovering);
	run(hc, now, now + 3000, [&](const IpAddr &) { return healthy; });
	ck_assert(status_of(hc.status(), ip("10.0.0.3")).state == HealthState::up);
}
END_TEST

START_TEST(test_health_rounds_in_flight_are_not_rescheduled)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	ck_assert_uint_eq(hc.due(0).size(), 3);
	ck_assert_uint_eq(hc.due(5000).size(), 0); // all three still in flight
	std::vector<HealthTransition> t;
	hc.probe_done(ip("10.0.0.1"), true, "", 5000, t);
	ck_assert_uint_eq(hc.due(5000).size(), 1); // late: due at once
	ck_assert(!hc.next_due_msecs().has_value()); // every host is in flight
}
END_TEST

START_TEST(test_health_hosts_without_probes_are_not_checked)
{
	HealthConfig c = test_config();
	c.checks = *parse_health_checks("10.0.0.2=lmtp:24");
	HealthChecker hc(c);
	hc.observe_hosts(hosts3());
	auto due = hc.due(0);
	ck_assert_uint_eq(due.size(), 1);
	ck_assert(due[0] == ip("10.0.0.2"));
}
END_TEST

// ---- decider actions, guard, ownership

START_TEST(test_health_decider_downs_and_ups_its_own_host)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	bool healthy = false;
	IpAddr h = ip("10.0.0.2");
	run(hc, now, 3000, [&](const IpAddr &a) { return !(a == h) || healthy; });
	HealthActions a = hc.decide(now);
	ck_assert_uint_eq(a.down.size(), 1);
	ck_assert(a.down[0].ip == h);
	hc.observe_hosts(hosts3(false, true, false));
	ck_assert(status_of(hc.status(), h).down_by_health);
	ck_assert(hc.decide(now).down.empty()); // already down
	healthy = true;
	run(hc, now, now + 5000, [&](const IpAddr &a) { return !(a == h) || healthy; });
	a = hc.decide(now);
	ck_assert_uint_eq(a.up.size(), 1);
	ck_assert(a.up[0] == h);
}
END_TEST

START_TEST(test_health_operator_down_of_healthy_host_is_never_undone)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	run(hc, now, 5000, [&](const IpAddr &) { return true; });
	hc.observe_hosts(hosts3(true, false, false)); // doveadm director down
	run(hc, now, now + 5000, [&](const IpAddr &) { return true; });
	HealthActions a = hc.decide(now);
	ck_assert(a.up.empty() && a.down.empty());
	ck_assert(!status_of(hc.status(), ip("10.0.0.1")).down_by_health);
	// ... even after the host failed and recovered while down
	run(hc, now, now + 5000, [&](const IpAddr &) { return false; });
	run(hc, now, now + 10000, [&](const IpAddr &) { return true; });
	ck_assert(hc.decide(now).up.empty());
}
END_TEST

START_TEST(test_health_down_by_another_decider_on_failing_host_is_ours)
{
	// A director that is not (yet) the decider sees the ring take a host
	// down that its own rounds also find failing: after a take-over it may
	// bring the host back.
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	bool healthy = false;
	IpAddr h = ip("10.0.0.3");
	run(hc, now, 1500, [&](const IpAddr &a) { return !(a == h) || healthy; });
	hc.observe_hosts(hosts3(false, false, true));
	ck_assert(status_of(hc.status(), h).down_by_health);
	healthy = true;
	run(hc, now, now + 8000, [&](const IpAddr &a) { return !(a == h) || healthy; });
	HealthActions a = hc.decide(now);
	ck_assert_uint_eq(a.up.size(), 1);
}
END_TEST

START_TEST(test_health_guard_holds_hosts_up_and_says_so_once)
{
	HealthChecker hc(test_config()); // max_down = 1
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	run(hc, now, 3000, [&](const IpAddr &a) { return a == ip("10.0.0.1"); });
	HealthActions a = hc.decide(now);
	ck_assert_uint_eq(a.down.size(), 1);
	ck_assert(a.down[0].ip == ip("10.0.0.2"));
	ck_assert_uint_eq(a.blocked.size(), 1);
	ck_assert(a.blocked[0].ip == ip("10.0.0.3"));
	ck_assert_uint_eq(a.blocked[0].limit, 1);
	hc.observe_hosts(hosts3(false, true, false));
	a = hc.decide(now + 1000);
	ck_assert(a.down.empty());
	ck_assert(a.blocked.empty()); // logged once ...
	ck_assert(status_of(hc.status(), ip("10.0.0.3")).guard_blocked);
	a = hc.decide(now + health_guard_relog_msecs);
	ck_assert_uint_eq(a.blocked.size(), 1); // ... and again a minute later
}
END_TEST

START_TEST(test_health_guard_counts_operator_downs)
{
	HealthChecker hc(test_config()); // max_down = 1
	hc.observe_hosts(hosts3(true, false, false));
	int64_t now = 0;
	run(hc, now, 3000, [&](const IpAddr &a) { return !(a == ip("10.0.0.2")); });
	HealthActions a = hc.decide(now);
	ck_assert(a.down.empty());
	ck_assert_uint_eq(a.blocked.size(), 1);
}
END_TEST

START_TEST(test_health_guard_counts_unchecked_hosts)
{
	HealthConfig c = test_config(); // max_down = 1
	c.checks = *parse_health_checks("10.0.0.2=imap:143 10.0.0.3=imap:143");
	HealthChecker hc(c);
	hc.observe_hosts(hosts3(true, false, false)); // .1: not checked, down
	int64_t now = 0;
	run(hc, now, 3000, [&](const IpAddr &) { return false; });
	HealthActions a = hc.decide(now);
	ck_assert(a.down.empty());
	ck_assert_uint_eq(a.blocked.size(), 2);
}
END_TEST

START_TEST(test_health_max_down_zero_never_downs)
{
	HealthConfig c = test_config();
	c.max_down = *parse_health_max_down("0");
	HealthChecker hc(c);
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	run(hc, now, 3000, [&](const IpAddr &) { return false; });
	ck_assert(hc.decide(now).down.empty());
}
END_TEST

START_TEST(test_health_refused_down_is_retried)
{
	HealthChecker hc(test_config());
	hc.observe_hosts(hosts3());
	int64_t now = 0;
	run(hc, now, 3000, [&](const IpAddr &a) { return !(a == ip("10.0.0.1")); });
	ck_assert_uint_eq(hc.decide(now).down.size(), 1);
	hc.observe_hosts(hosts3()); // the Director refused (host being synced)
	ck_assert_uint_eq(hc.decide(now + 1000).down.size(), 1);
}
END_TEST

// ---- the decider rule

static HealthDecider dec(const char *a, uint16_t port = 9090)
{
	return HealthDecider{ip(a), port};
}

START_TEST(test_health_decider_is_lowest_present_listed_director)
{
	std::vector<HealthDecider> all = {dec("10.0.0.2"), dec("10.0.0.1"), dec("10.0.0.3")};
	HealthDeciderRule r1(all, dec("10.0.0.1"), 10), r2(all, dec("10.0.0.2"), 10);
	for (auto *r : {&r1, &r2})
		r->ring_state(true, 100);
	// during the join grace nobody decides
	ck_assert(!r1.is_decider(105));
	r2.sync_seen(dec("10.0.0.1"), 108);
	ck_assert(r1.is_decider(110));
	ck_assert(!r2.is_decider(110));
	ck_assert(r2.current_decider(110) == dec("10.0.0.1"));
	// .1 falls silent: .2 takes over after the timeout
	ck_assert(!r2.is_decider(117));
	ck_assert(r2.is_decider(118));
	// .1 is back: .2 yields at once
	r2.sync_seen(dec("10.0.0.1"), 130);
	ck_assert(!r2.is_decider(130));
}
END_TEST

START_TEST(test_health_unlisted_director_never_decides)
{
	HealthDeciderRule r({dec("10.0.0.1")}, dec("10.0.0.9"), 10);
	r.ring_state(true, 0);
	ck_assert(!r.self_listed());
	ck_assert(!r.is_decider(1000));
	ck_assert(!r.heartbeat_due(1000));
	HealthDeciderRule none({}, dec("10.0.0.9"), 10);
	none.ring_state(true, 0);
	ck_assert(!none.is_decider(1000));
}
END_TEST

START_TEST(test_health_standalone_director_always_decides)
{
	HealthDeciderRule r({}, std::nullopt, 10);
	ck_assert(r.is_decider(0));
}
END_TEST

START_TEST(test_health_decider_grace_restarts_when_ring_is_lost)
{
	HealthDeciderRule r({dec("10.0.0.1")}, dec("10.0.0.1"), 10);
	r.ring_state(true, 0);
	ck_assert(r.is_decider(10));
	r.ring_state(false, 20);
	ck_assert(!r.is_decider(21));
	r.ring_state(true, 30);
	ck_assert(!r.is_decider(35));
	ck_assert(r.is_decider(40));
}
END_TEST

START_TEST(test_health_heartbeats_three_per_timeout)
{
	HealthDeciderRule r({dec("10.0.0.1")}, dec("10.0.0.1"), 9);
	ck_assert(!r.heartbeat_due(100)); // not in a ring yet
	r.ring_state(true, 100);
	unsigned n = 0;
	for (int64_t t = 100; t < 127; t++)
		n += r.heartbeat_due(t) ? 1 : 0;
	ck_assert_uint_eq(n, 9);
}
END_TEST

START_TEST(test_health_two_deciders_never_both_decide)
{
	// Both see each other's heartbeats every 2 secs: at every second at
	// most one of them decides, also around restarts of the lower one.
	std::vector<HealthDecider> all = {dec("10.0.0.1"), dec("10.0.0.2")};
	HealthDeciderRule a(all, dec("10.0.0.1"), 6), b(all, dec("10.0.0.2"), 6);
	b.ring_state(true, 0);
	for (int64_t t = 0; t < 200; t++) {
		bool a_up = t < 50 || t >= 80; // a is gone for 30 secs
		if (t == 80)
			a = HealthDeciderRule(all, dec("10.0.0.1"), 6); // restarted
		if (a_up) {
			a.ring_state(true, t);
			if (t % 2 == 0)
				b.sync_seen(dec("10.0.0.1"), t);
		}
		if (t % 2 == 0)
			a.sync_seen(dec("10.0.0.2"), t);
		ck_assert_msg(!(a_up && a.is_decider(t) && b.is_decider(t)), "both at %d", int(t));
		if (t == 70)
			ck_assert(b.is_decider(t));
		if (t == 150)
			ck_assert(a.is_decider(t) && !b.is_decider(t));
	}
}
END_TEST

int main()
{
	Suite *s = suite_create("health");
	TCase *tc = tcase_create("settings");
	tcase_add_test(tc, test_health_checks_parse_defaults_and_per_host_lists);
	tcase_add_test(tc, test_health_checks_reject_bad_items);
	tcase_add_test(tc, test_health_max_down_counts_and_percentages);
	tcase_add_test(tc, test_health_deciders_parse_sorted_with_default_port);
	tcase_add_test(tc, test_health_login_file_needs_user_and_password);
	tcase_add_test(tc, test_health_config_validation_names_the_setting);
	suite_add_tcase(s, tc);
	tc = tcase_create("dialogs");
	tcase_add_test(tc, test_health_dialog_imap_banner_only);
	tcase_add_test(tc, test_health_dialog_imap_login_quotes_and_checks_tagged_reply);
	tcase_add_test(tc, test_health_dialog_pop3_login);
	tcase_add_test(tc, test_health_dialog_lmtp_rcpt_with_multiline_replies);
	tcase_add_test(tc, test_health_dialog_quotes_server_text_safely);
	suite_add_tcase(s, tc);
	tc = tcase_create("verdicts");
	tcase_add_test(tc, test_health_verdict_needs_failed_rounds_then_rapid_majority);
	tcase_add_test(tc, test_health_verdict_rapid_phase_without_majority_keeps_up);
	tcase_add_test(tc, test_health_alternating_host_never_changes_verdict);
	tcase_add_test(tc, test_health_down_host_comes_back_through_the_same_phases);
	tcase_add_test(tc, test_health_rounds_in_flight_are_not_rescheduled);
	tcase_add_test(tc, test_health_hosts_without_probes_are_not_checked);
	suite_add_tcase(s, tc);
	tc = tcase_create("actions");
	tcase_add_test(tc, test_health_decider_downs_and_ups_its_own_host);
	tcase_add_test(tc, test_health_operator_down_of_healthy_host_is_never_undone);
	tcase_add_test(tc, test_health_down_by_another_decider_on_failing_host_is_ours);
	tcase_add_test(tc, test_health_guard_holds_hosts_up_and_says_so_once);
	tcase_add_test(tc, test_health_guard_counts_operator_downs);
	tcase_add_test(tc, test_health_guard_counts_unchecked_hosts);
	tcase_add_test(tc, test_health_max_down_zero_never_downs);
	tcase_add_test(tc, test_health_refused_down_is_retried);
	suite_add_tcase(s, tc);
	tc = tcase_create("decider");
	tcase_add_test(tc, test_health_decider_is_lowest_present_listed_director);
	tcase_add_test(tc, test_health_unlisted_director_never_decides);
	tcase_add_test(tc, test_health_standalone_director_always_decides);
	tcase_add_test(tc, test_health_decider_grace_restarts_when_ring_is_lost);
	tcase_add_test(tc, test_health_heartbeats_three_per_timeout);
	tcase_add_test(tc, test_health_two_deciders_never_both_decide);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
