// Check suite for the gauges' OpenMetrics text (core/metrics).
#include <check.h>

#include "check-main.h"

#include <string>

#include "metrics.h"

using namespace director::core;

namespace {

MetricsSnapshot two_hosts()
{
	MetricsSnapshot s;
	s.hosts.push_back({"10.0.0.1", "", 5, 100, true, std::nullopt});
	s.hosts.push_back({"10.0.0.2", "blue", 0, 0, false, std::nullopt});
	s.ring_synced = false;
	s.ring_left = 1;
	s.ring_right = 1;
	s.ring_in = 2;
	s.requests_delayed = 3;
	s.moves_in_progress = 4;
	s.kicks_in_progress = 6;
	return s;
}

bool contains(const std::string &text, const std::string &line)
{
	return text.find("\n" + line + "\n") != std::string::npos ||
	       text.compare(0, line.size() + 1, line + "\n") == 0;
}

size_t count_of(const std::string &text, const std::string &needle)
{
	size_t n = 0;
	for (size_t pos = text.find(needle); pos != std::string::npos;
	     pos = text.find(needle, pos + 1))
		n++;
	return n;
}

} // namespace

START_TEST(test_metrics_gauges_carry_the_snapshot_values)
{
	std::string t = format_openmetrics(two_hosts());
	ck_assert(contains(t, "dovecot_director_users{host=\"10.0.0.1\",tag=\"\"} 5"));
	ck_assert(contains(t, "dovecot_director_users{host=\"10.0.0.2\",tag=\"blue\"} 0"));
	ck_assert(contains(t, "dovecot_director_host_vhosts{host=\"10.0.0.1\",tag=\"\"} 100"));
	ck_assert(contains(t, "dovecot_director_host_up{host=\"10.0.0.1\",tag=\"\"} 1"));
	ck_assert(contains(t, "dovecot_director_host_up{host=\"10.0.0.2\",tag=\"blue\"} 0"));
	ck_assert(contains(t, "dovecot_director_ring_synced 0"));
	ck_assert(contains(t, "dovecot_director_ring_connections{direction=\"left\"} 1"));
	ck_assert(contains(t, "dovecot_director_ring_connections{direction=\"right\"} 1"));
	ck_assert(contains(t, "dovecot_director_ring_connections{direction=\"in\"} 2"));
	ck_assert(contains(t, "dovecot_director_ring_connections{direction=\"out\"} 0"));
	ck_assert(contains(t, "dovecot_director_requests_delayed 3"));
	ck_assert(contains(t, "dovecot_director_moves_in_progress 4"));
	ck_assert(contains(t, "dovecot_director_kicks_in_progress 6"));
}
END_TEST

START_TEST(test_metrics_every_family_has_one_type_and_help_line)
{
	std::string t = format_openmetrics(two_hosts());
	for (const char *name :
	     {"dovecot_director_users", "dovecot_director_host_vhosts", "dovecot_director_host_up",
	      "dovecot_director_ring_synced", "dovecot_director_ring_connections",
	      "dovecot_director_requests_delayed", "dovecot_director_moves_in_progress",
	      "dovecot_director_kicks_in_progress"}) {
		ck_assert_uint_eq(count_of(t, std::string("# TYPE ") + name + " gauge\n"), 1);
		ck_assert_uint_eq(count_of(t, std::string("# HELP ") + name + " "), 1);
	}
}
END_TEST

START_TEST(test_metrics_text_ends_with_eof_line_once)
{
	std::string t = format_openmetrics(two_hosts());
	ck_assert_uint_eq(count_of(t, "# EOF"), 1);
	ck_assert(t.size() >= 6 && t.compare(t.size() - 6, 6, "# EOF\n") == 0);
	MetricsSnapshot empty;
	std::string e = format_openmetrics(empty);
	ck_assert(e.compare(e.size() - 6, 6, "# EOF\n") == 0);
	ck_assert(contains(e, "dovecot_director_ring_synced 1"));
}
END_TEST

START_TEST(test_metrics_label_values_are_escaped)
{
	ck_assert(openmetrics_escape_label("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
	ck_assert(openmetrics_escape_label("plain") == "plain");
	MetricsSnapshot s;
	s.hosts.push_back({"10.0.0.1", "x\"y\nz", 1, 1, true, std::nullopt});
	std::string t = format_openmetrics(s);
	ck_assert(contains(t, "dovecot_director_users{host=\"10.0.0.1\",tag=\"x\\\"y\\nz\"} 1"));
}
END_TEST

START_TEST(test_metrics_health_families_only_when_checks_are_on)
{
	MetricsSnapshot s = two_hosts();
	std::string off = format_openmetrics(s);
	ck_assert(off.find("health") == std::string::npos);

	s.health_checks = true;
	s.health_decider = true;
	s.hosts[0].health = MetricsHealth{"suspect", false, false};
	s.hosts[1].health = MetricsHealth{"down", false, true};
	std::string t = format_openmetrics(s);
	ck_assert(contains(t, "# TYPE dovecot_director_host_health stateset"));
	ck_assert(contains(t, "dovecot_director_health_decider 1"));
	ck_assert(contains(t, "dovecot_director_host_health{host=\"10.0.0.1\",tag=\"\","
			      "dovecot_director_host_health=\"suspect\"} 1"));
	ck_assert(contains(t, "dovecot_director_host_health{host=\"10.0.0.1\",tag=\"\","
			      "dovecot_director_host_health=\"up\"} 0"));
	ck_assert(contains(t, "dovecot_director_host_health{host=\"10.0.0.2\",tag=\"blue\","
			      "dovecot_director_host_health=\"down\"} 1"));
	// one sample per state per host, exactly one of them 1
	ck_assert_uint_eq(count_of(t, "dovecot_director_host_health{host=\"10.0.0.2\""), 6);
	ck_assert_uint_eq(count_of(t, "dovecot_director_host_health{host=\"10.0.0.2\",tag=\"blue\","
				      "dovecot_director_host_health=\"down\"} 1"),
			  1);
	ck_assert(contains(t, "dovecot_director_host_health_check_ok{host=\"10.0.0.1\",tag=\"\"} 0"));
	ck_assert(contains(t, "dovecot_director_host_down_by_health{host=\"10.0.0.2\",tag=\"blue\"} 1"));
	ck_assert(t.compare(t.size() - 6, 6, "# EOF\n") == 0);
}
END_TEST

int main()
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("gauges");
	tcase_add_test(tc, test_metrics_gauges_carry_the_snapshot_values);
	tcase_add_test(tc, test_metrics_every_family_has_one_type_and_help_line);
	tcase_add_test(tc, test_metrics_text_ends_with_eof_line_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("escaping");
	tcase_add_test(tc, test_metrics_label_values_are_escaped);
	suite_add_tcase(s, tc);
	tc = tcase_create("health");
	tcase_add_test(tc, test_metrics_health_families_only_when_checks_are_on);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
