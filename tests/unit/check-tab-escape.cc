// Check suite for Dovecot tab-escaping, field splitting and log quoting.
#include <check.h>

#include "check-main.h"

#include <string>

#include "tab-escape.h"

using namespace director::core;

START_TEST(test_tab_escape_escapes_the_five_special_bytes)
{
	ck_assert(tab_escape(std::string_view("a\0b\001c\td\re\nf", 11)) ==
		  "a\001" "0b\001" "1c\001" "td\001" "re\001" "nf");
	ck_assert(tab_escape("plain text") == "plain text");
	std::string out = "x";
	tab_escape_append(out, "\t");
	ck_assert(out == "x\001t");
}
END_TEST

START_TEST(test_tab_unescape_reverses_escape)
{
	std::string all;
	for (int c = 0; c < 256; c++)
		all += static_cast<char>(c);
	ck_assert(tab_unescape(tab_escape(all)) == all);
	ck_assert(tab_unescape("a\001xb") == "axb");  // unknown escape: byte kept
	ck_assert(tab_unescape("ab\001") == "ab");    // trailing lone escape dropped
}
END_TEST

START_TEST(test_split_tabescaped_splits_then_unescapes)
{
	auto f = split_tabescaped("USER-KICK\t1\ta\001tb\t");
	ck_assert_uint_eq(f.size(), 4);
	ck_assert(f[0] == "USER-KICK" && f[1] == "1" && f[2] == "a\tb" && f[3].empty());
	auto v = split_tabs("a\001t\tb");
	ck_assert_uint_eq(v.size(), 2);
	ck_assert(v[0] == "a\001t");
}
END_TEST

START_TEST(test_quote_for_log_hexes_unprintables_and_truncates)
{
	ck_assert(quote_for_log("ok") == "ok");
	ck_assert(quote_for_log("a\tb\\\r\n") == "a\tb\\x5c\\x0d\\x0a");
	ck_assert(quote_for_log(std::string(100, 'x'), 80) == std::string(80, 'x') + "...");
}
END_TEST

int main()
{
	Suite *s = suite_create("tab-escape");
	TCase *tc = tcase_create("escape");
	tcase_add_test(tc, test_tab_escape_escapes_the_five_special_bytes);
	tcase_add_test(tc, test_tab_unescape_reverses_escape);
	suite_add_tcase(s, tc);
	tc = tcase_create("split");
	tcase_add_test(tc, test_split_tabescaped_splits_then_unescapes);
	suite_add_tcase(s, tc);
	tc = tcase_create("log");
	tcase_add_test(tc, test_quote_for_log_hexes_unprintables_and_truncates);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
