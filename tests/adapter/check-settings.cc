// Check suite for the settings the adapter hands to lib-dovecot's parser:
// the parser infos of this build's Dovecot API (settings-23.c or
// settings-24.c) define exactly the settings of core/settings-table.h, in its
// order, with its defaults; DirectorSettings starts from the same defaults.
#include "adapter-test.h"

#include <cstring>
#include <string>

#include "adapter/director-settings.h"
#include "core/settings-table.h"

extern "C" {
#include "settings-parser.h"
#include "settings-shim.h"
#include "state-settings-shim.h"
#include "health-settings-shim.h"
}

namespace def = director::core::setting_default;

namespace {

const setting_define *find_define(const setting_parser_info &info, const char *key)
{
	for (const setting_define *d = info.defines; d->key != nullptr; d++) {
		if (std::strcmp(d->key, key) == 0)
			return d;
	}
	return nullptr;
}

size_t define_count(const setting_parser_info &info)
{
	size_t n = 0;
	for (const setting_define *d = info.defines; d->key != nullptr; d++)
		n++;
	return n;
}

// The default the parser info holds for `key`, read as the table's kind.
template <typename T> T info_default(const setting_parser_info &info, const char *key)
{
	const setting_define *d = find_define(info, key);
	ck_assert_msg(d != nullptr, "%s is not defined", key);
	const void *p = static_cast<const char *>(info.defaults) + d->offset;
	return *static_cast<const T *>(p);
}

void expect_default(const setting_parser_info &info, const char *key, const char *want)
{
	const char *got = info_default<const char *>(info, key);
	ck_assert_msg(std::strcmp(got, want) == 0, "%s default '%s', want '%s'", key, got, want);
}

void expect_default(const setting_parser_info &info, const char *key, unsigned want)
{
	unsigned got = info_default<unsigned int>(info, key);
	ck_assert_msg(got == want, "%s default %u, want %u", key, got, want);
}

void expect_default(const setting_parser_info &info, const char *key, uint64_t want)
{
	uint64_t got = info_default<uoff_t>(info, key);
	ck_assert_msg(got == want, "%s default %llu, want %llu", key,
		      (unsigned long long)got, (unsigned long long)want);
}

// Every entry of the list, in order, with the table's default.
#define DIRECTOR_EXPECT_ENTRY(kind, name, value) \
	ck_assert_str_eq(info.defines[i].key, #name); \
	expect_default(info, #name, def::name); \
	i++;

} // namespace

START_TEST(test_main_parser_info_is_the_table)
{
	const setting_parser_info &info = director_settings_shim_info;
	size_t i = 0;
	DIRECTOR_SETTINGS_MAIN(DIRECTOR_EXPECT_ENTRY)
	ck_assert_uint_eq(define_count(info), i);
}
END_TEST

START_TEST(test_state_parser_info_is_the_table)
{
	const setting_parser_info &info = director_state_settings_shim_info;
	size_t i = 0;
	DIRECTOR_SETTINGS_STATE(DIRECTOR_EXPECT_ENTRY)
	ck_assert_uint_eq(define_count(info), i);
}
END_TEST

START_TEST(test_health_parser_info_is_the_table)
{
	const setting_parser_info &info = director_health_settings_shim_info;
	size_t i = 0;
	DIRECTOR_SETTINGS_HEALTH(DIRECTOR_EXPECT_ENTRY)
	ck_assert_uint_eq(define_count(info), i);
}
END_TEST

START_TEST(test_director_settings_start_from_the_table)
{
	director::adapter::DirectorSettings s;
	ck_assert_str_eq(s.director_username_hash.c_str(), def::director_username_hash);
	ck_assert_uint_eq(s.user_expire_secs, def::director_user_expire);
	ck_assert_uint_eq(s.user_kick_delay_secs, def::director_user_kick_delay);
	ck_assert_uint_eq(s.ping_idle_timeout_secs, def::director_ping_idle_timeout);
	ck_assert_uint_eq(s.ping_max_timeout_secs, def::director_ping_max_timeout);
	ck_assert_uint_eq(s.max_parallel_moves, def::director_max_parallel_moves);
	ck_assert_uint_eq(s.max_parallel_kicks, def::director_max_parallel_kicks);
	ck_assert_uint_eq(s.output_buffer_size, def::director_output_buffer_size);
	ck_assert_str_eq(s.state_file.c_str(), def::director_state_file);
	ck_assert_uint_eq(s.state_interval_secs, def::director_state_interval);
	ck_assert_uint_eq(s.health_interval_msecs, def::director_health_interval);
	ck_assert_uint_eq(s.health_timeout_msecs, def::director_health_timeout);
	ck_assert_uint_eq(s.health_fail_rounds, def::director_health_fail_rounds);
	ck_assert_uint_eq(s.health_rapid_interval_msecs, def::director_health_rapid_interval);
	ck_assert_uint_eq(s.health_rapid_polls, def::director_health_rapid_polls);
	ck_assert_uint_eq(s.health_rapid_threshold, def::director_health_rapid_threshold);
	ck_assert_str_eq(s.health_max_down.c_str(), def::director_health_max_down);
	ck_assert_uint_eq(s.health_decider_timeout_secs, def::director_health_decider_timeout);
}
END_TEST

int main()
{
	Suite *s = suite_create("settings");
	TCase *tc = tcase_create("parser infos");
	tcase_add_test(tc, test_main_parser_info_is_the_table);
	tcase_add_test(tc, test_state_parser_info_is_the_table);
	tcase_add_test(tc, test_health_parser_info_is_the_table);
	tcase_add_test(tc, test_director_settings_start_from_the_table);
	suite_add_tcase(s, tc);
	return adapter_test::run_suite(s);
}
