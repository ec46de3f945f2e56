// Check suite for core/user-hash: director_username_hash templates and the
// 32-bit user hash.
#include <cstdlib>
#include <string>

#include <check.h>

#include "check-main.h"

#include "user-hash.h"

using director::core::UsernameHash;

static std::string expand(const char *format, const char *user)
{
	auto h = UsernameHash::parse(format);
	ck_assert_msg(h.ok(), "%s: %s", format, h.ok() ? "" : h.error().c_str());
	return h->expand(user);
}

// Check's string asserts keep the pointer they are given, so the expansion
// must outlive the assertion.
static void expect_expand(const char *format, const char *user, const char *want)
{
	std::string got = expand(format, user);
	ck_assert_msg(got == want, "%s(%s) = '%s', want '%s'", format, user, got.c_str(), want);
}

START_TEST(test_user_hash_matches_observed_stock_value)
{
	// Seen in a stock USER-LIST after a login of user1@example.com.
	ck_assert_uint_eq(UsernameHash().hash("user1@example.com"), 287140048u);
	ck_assert_uint_eq(UsernameHash().hash("User1@Example.COM"), 287140048u);
}
END_TEST

START_TEST(test_user_hash_lowercases_ascii_only)
{
	expect_expand("%Lu", "\xc3\x84RGER", "\xc3\x84rger");
	expect_expand("%u", "MiXed", "MiXed");
}
END_TEST

START_TEST(test_user_hash_expands_local_part_and_domain)
{
	expect_expand("%n", "alice@example.com", "alice");
	expect_expand("%d", "alice@example.com", "example.com");
	expect_expand("%d", "alice", "");
	expect_expand("%n", "alice", "alice");
	expect_expand("%Ln@%Ud", "Bob@Example.com", "bob@EXAMPLE.COM");
	expect_expand("%{username}+%{domain}", "a@b@c", "a+b@c");
	expect_expand("x%%y%u", "u", "x%yu");
}
END_TEST

START_TEST(test_user_hash_applies_widths_offsets_and_modifiers)
{
	expect_expand("%3u", "abcdef", "abc");
	expect_expand("%1.2u", "abcdef", "bc");
	expect_expand("%-2.u", "abcdef", "ef");
	expect_expand("%Ru", "abc", "cba");
	expect_expand("%Tu", "abc  ", "abc");
	expect_expand("%Mu", "abc", "900150983cd24fb0d6963f7d28e17f72");
	expect_expand("%Eu", "a\"b", "a\\\"b");
	expect_expand("%Du", "a.b", "a,dc=b");
	// %H pads the hash to the offset with zeros (ELF hash of "abc" = 0x6783).
	expect_expand("%8.Hu", "abc", "00006783");
	expect_expand("%Hu", "abc", "6783");
}
END_TEST

START_TEST(test_user_hash_refuses_unknown_variables)
{
	const char *bad[] = {"%x", "%{pid}", "%{env:HOME}", "%Lz", "%99999.Hu", "%2000u"};
	for (const char *b : bad)
		ck_assert_msg(!UsernameHash::parse(b).ok(), "accepted '%s'", b);
}
END_TEST

START_TEST(test_user_hash_slow_path_equals_fast_path)
{
	// "%Lu" takes the fast path; "%L{user}" goes through the template.
	auto slow = UsernameHash::parse("%L{user}");
	ck_assert(slow.ok());
	ck_assert_uint_eq(slow->hash("Carol@X"), UsernameHash().hash("Carol@X"));
}
END_TEST

int main()
{
	Suite *s = suite_create("user-hash");
	TCase *tc = tcase_create("hash");
	tcase_add_test(tc, test_user_hash_matches_observed_stock_value);
	tcase_add_test(tc, test_user_hash_lowercases_ascii_only);
	tcase_add_test(tc, test_user_hash_slow_path_equals_fast_path);
	suite_add_tcase(s, tc);
	tc = tcase_create("template");
	tcase_add_test(tc, test_user_hash_expands_local_part_and_domain);
	tcase_add_test(tc, test_user_hash_applies_widths_offsets_and_modifiers);
	tcase_add_test(tc, test_user_hash_refuses_unknown_variables);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
