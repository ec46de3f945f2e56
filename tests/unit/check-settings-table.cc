// Check suite for core/settings-table.h: the core's defaults are the table's.
// DirectorConfig, HealthConfig and UsernameHash default-construct to the
// settings' defaults; a literal written into one of them instead of the
// table's constant fails here once it differs.
#include <cstring>
#include <set>
#include <string>

#include <check.h>

#include "check-main.h"

#include "director-types.h"
#include "health.h"
#include "settings-table.h"
#include "user-hash.h"

namespace def = director::core::setting_default;
using director::core::DirectorConfig;
using director::core::HealthConfig;
using director::core::UsernameHash;

START_TEST(test_director_config_defaults_are_the_table)
{
	DirectorConfig c;
	ck_assert_uint_eq(c.user_expire_secs, def::director_user_expire);
	ck_assert_uint_eq(c.user_kick_delay_secs, def::director_user_kick_delay);
	ck_assert_uint_eq(c.max_parallel_moves, def::director_max_parallel_moves);
	ck_assert_uint_eq(c.max_parallel_kicks, def::director_max_parallel_kicks);
	ck_assert_uint_eq(c.ping_idle_timeout_secs, def::director_ping_idle_timeout);
	ck_assert_uint_eq(c.ping_max_timeout_secs, def::director_ping_max_timeout);
	ck_assert(c.flush_program_set == (std::strlen(def::director_flush_socket) != 0));
	ck_assert_str_eq(c.username_hash.format().c_str(), def::director_username_hash);
}
END_TEST

START_TEST(test_default_username_hash_is_the_parsed_default)
{
	// The default constructor builds "%Lu" without parsing it: it must hash
	// like the parsed table default.
	auto parsed = UsernameHash::parse(def::director_username_hash);
	ck_assert(parsed.ok());
	UsernameHash built;
	for (const char *user : {"user1", "User1@Example.COM", "", "ÄÖ@x", "a b\tc"}) {
		ck_assert_msg(built.expand(user) == parsed->expand(user), "%s", user);
		ck_assert_uint_eq(built.hash(user), parsed->hash(user));
	}
}
END_TEST

START_TEST(test_health_config_defaults_are_the_table)
{
	HealthConfig c;
	ck_assert_int_eq(c.interval_msecs, def::director_health_interval);
	ck_assert_int_eq(c.timeout_msecs, def::director_health_timeout);
	ck_assert_uint_eq(c.fail_rounds, def::director_health_fail_rounds);
	ck_assert_int_eq(c.rapid_interval_msecs, def::director_health_rapid_interval);
	ck_assert_uint_eq(c.rapid_polls, def::director_health_rapid_polls);
	ck_assert_uint_eq(c.rapid_threshold, def::director_health_rapid_threshold);
	ck_assert_int_eq(c.decider_timeout_secs, def::director_health_decider_timeout);
	auto max_down = director::core::parse_health_max_down(def::director_health_max_down);
	ck_assert(max_down.ok());
	ck_assert_uint_eq(c.max_down.value, max_down->value);
	ck_assert(c.max_down.percent == max_down->percent);
	ck_assert(c.checks.empty() == (std::strlen(def::director_health_checks) == 0));
	ck_assert(c.deciders.empty() && !c.login.has_value());
	ck_assert_str_eq(c.lmtp_from.c_str(), def::director_health_lmtp_from);
	ck_assert_str_eq(c.lmtp_rcpt.c_str(), def::director_health_lmtp_rcpt);
}
END_TEST

START_TEST(test_every_setting_is_listed_once)
{
	std::set<std::string> names;
	size_t count = 0;
#define NAME(kind, name, value) \
	names.insert(#name); \
	count++;
	DIRECTOR_SETTINGS_ALL(NAME)
#undef NAME
	ck_assert_uint_eq(names.size(), count);
	// The parts make up the whole.
	size_t parts = 0;
#define COUNT(kind, name, value) parts++;
	DIRECTOR_SETTINGS_STOCK(COUNT)
	DIRECTOR_SETTINGS_RING(COUNT)
	DIRECTOR_SETTINGS_STATE(COUNT)
	DIRECTOR_SETTINGS_HEALTH(COUNT)
#undef COUNT
	ck_assert_uint_eq(parts, count);
}
END_TEST

START_TEST(test_validated_defaults_pass_their_own_checks)
{
	// The defaults must start a director: what the adapter's checks and
	// validate_health_config() demand of a configured value.
	ck_assert_uint_ge(def::director_user_expire, 10);
	ck_assert_uint_ge(def::director_max_parallel_moves, 1);
	ck_assert_uint_ge(def::director_max_parallel_kicks, 1);
	ck_assert_uint_ge(def::director_state_interval, 1);
	ck_assert(UsernameHash::parse(def::director_username_hash).ok());
	HealthConfig c;
	ck_assert(director::core::validate_health_config(c).ok());
}
END_TEST

int main()
{
	Suite *s = suite_create("settings-table");
	TCase *tc = tcase_create("defaults");
	tcase_add_test(tc, test_director_config_defaults_are_the_table);
	tcase_add_test(tc, test_default_username_hash_is_the_parsed_default);
	tcase_add_test(tc, test_health_config_defaults_are_the_table);
	tcase_add_test(tc, test_every_setting_is_listed_once);
	tcase_add_test(tc, test_validated_defaults_pass_their_own_checks);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
