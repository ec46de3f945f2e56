// Check suite for setting-value parsers and Dovecot's numeric/IP value syntax.
#include <check.h>

#include "check-main.h"

#include <string>

#include "config-values.h"

using namespace director::core;

// Compares as std::string, so temporaries (format_x().c_str()) are copied before
// they die; check's own ck_assert_str_eq keeps only the pointer.
#define CK_STR_EQ(a, b)                                                                    \
	do {                                                                               \
		std::string ck_a_ = (a);                                                   \
		std::string ck_b_ = (b);                                                   \
		ck_assert_msg(ck_a_ == ck_b_, "'%s' != '%s'", ck_a_.c_str(), ck_b_.c_str()); \
	} while (0)

START_TEST(test_stock_numbers_accept_exactly_stock_syntax)
{
	ck_assert(parse_stock_uint32("0") == 0u);
	ck_assert(parse_stock_uint32("4294967295") == 4294967295u);
	ck_assert(!parse_stock_uint32("4294967296"));
	ck_assert(!parse_stock_uint32(""));
	ck_assert(!parse_stock_uint32("-1"));
	ck_assert(!parse_stock_uint32("+1"));
	ck_assert(!parse_stock_uint32(" 1"));
	ck_assert(!parse_stock_uint32("1 "));
	ck_assert(!parse_stock_uint32("0x10"));
	ck_assert(parse_stock_uint32("007") == 7u);
	ck_assert(parse_stock_uint64("18446744073709551615") == 18446744073709551615ull);
	ck_assert(!parse_stock_uint64("18446744073709551616"));
	ck_assert(parse_stock_time("-5") == -5);
	ck_assert(parse_stock_time("1795343918") == 1795343918);
	ck_assert(!parse_stock_time("-"));
	ck_assert(!parse_stock_time("--5"));
	ck_assert(!parse_stock_time("9223372036854775808"));
	ck_assert(parse_stock_port("1") == 1);
	ck_assert(parse_stock_port("65535") == 65535);
	ck_assert(!parse_stock_port("0"));
	ck_assert(!parse_stock_port("65536"));
}
END_TEST

START_TEST(test_stock_ip_accepts_what_net_addr2ip_accepts)
{
	struct {
		const char *in;
		const char *out; // nullptr = refused
	} rows[] = {
		{"10.0.0.1", "10.0.0.1"},       {"167772161", "10.0.0.1"},
		{"010.0.0.1", "10.0.0.1"},      {"10.1", "10.0.0.1"},
		{"0x0a.0.0.1", "10.0.0.1"},     {"::1", "::1"},
		{"[::1]", "::1"},               {"2001:db8::5", "2001:db8::5"},
		{"10.0.0.256", nullptr},        {"", nullptr},
		{"mail.example.com", nullptr},  {"[::1", nullptr},
		{"::g", nullptr},               {"4294967296", nullptr},
	};
	for (const auto &row : rows) {
		auto ip = parse_stock_ip(row.in);
		if (row.out == nullptr) {
			ck_assert_msg(!ip, "'%s' accepted", row.in);
		} else {
			ck_assert_msg(ip.has_value(), "'%s' refused", row.in);
			CK_STR_EQ(ip->to_string().c_str(), row.out);
		}
	}
}
END_TEST

START_TEST(test_mail_servers_ips_names_and_tags)
{
	auto r = parse_mail_servers("  10.0.0.1 mail-1.example.com@blue  2001:db8::5@x@y ");
	ck_assert_msg(r.ok(), "%s", r.ok() ? "" : r.error().c_str());
	ck_assert_uint_eq(r->size(), 3);
	ck_assert(!(*r)[0].needs_dns && (*r)[0].ip.to_string() == "10.0.0.1" && (*r)[0].tag.empty());
	ck_assert((*r)[1].needs_dns && (*r)[1].hostname == "mail-1.example.com");
	CK_STR_EQ((*r)[1].tag.c_str(), "blue");
	CK_STR_EQ((*r)[2].ip.to_string().c_str(), "2001:db8::5");
	CK_STR_EQ((*r)[2].tag.c_str(), "x@y");
}
END_TEST

START_TEST(test_mail_servers_ranges_expand_inclusively)
{
	auto r = parse_mail_servers("10.2.0.21-10.2.0.24@t 10.0.0.9-10.0.0.9");
	ck_assert(r.ok());
	ck_assert_uint_eq(r->size(), 5);
	CK_STR_EQ((*r)[0].ip.to_string().c_str(), "10.2.0.21");
	CK_STR_EQ((*r)[3].ip.to_string().c_str(), "10.2.0.24");
	CK_STR_EQ((*r)[3].tag.c_str(), "t");
	CK_STR_EQ((*r)[4].ip.to_string().c_str(), "10.0.0.9");

	r = parse_mail_servers("10.0.0.0-10.0.0.255");
	ck_assert(r.ok() && r->size() == 256);
	r = parse_mail_servers("2001:db8::fffe-2001:db8::1:0");
	ck_assert(!r.ok()); // crosses the last 16 bits
	r = parse_mail_servers("2001:db8::1-2001:db8::3");
	ck_assert(r.ok() && r->size() == 3);
	CK_STR_EQ((*r)[2].ip.to_string().c_str(), "2001:db8::3");
	r = parse_mail_servers("2001:db8::-2001:db8::ffff");
	ck_assert(r.ok() && r->size() == 65536);
}
END_TEST

START_TEST(test_mail_servers_errors_name_the_entry)
{
	struct {
		const char *value;
		const char *error;
	} rows[] = {
		{"", "Empty server list"},
		{"   ", "Empty server list"},
		{"10.0.0.5-10.0.0.1", "IP addresses reversed: 10.0.0.5-10.0.0.1"},
		{"10.0.0.1-10.0.1.1", "IP address range too large: 10.0.0.1-10.0.1.1"},
		{"10.0.0.1-::1", "IP address family mismatch: 10.0.0.1 vs ::1"},
		{"10.0.0.1 @blue", "Unknown mail host"},
	};
	for (const auto &row : rows) {
		auto r = parse_mail_servers(row.value);
		ck_assert_msg(!r.ok(), "'%s' accepted", row.value);
		ck_assert_msg(r.error().find(row.error) != std::string::npos, "'%s': %s", row.value,
			      r.error().c_str());
	}
	// a dash between non-IPs is a host name, not a range
	auto r = parse_mail_servers("10.0.0.1-foo");
	ck_assert(r.ok() && (*r)[0].needs_dns && (*r)[0].hostname == "10.0.0.1-foo");
}
END_TEST

START_TEST(test_director_servers_host_port_forms)
{
	auto r = parse_director_servers("10.1.0.11:9090 10.1.0.12 dir3.example.com:9091 "
					"[2001:db8::1]:9092 [::1] 2001:db8::2",
					9090);
	ck_assert_msg(r.ok(), "%s", r.ok() ? "" : r.error().c_str());
	ck_assert_uint_eq(r->size(), 6);
	ck_assert((*r)[0].ip && (*r)[0].ip->to_string() == "10.1.0.11" && (*r)[0].port == 9090);
	ck_assert((*r)[1].port == 9090);
	ck_assert(!(*r)[2].ip && (*r)[2].host == "dir3.example.com" && (*r)[2].port == 9091);
	ck_assert((*r)[3].ip && (*r)[3].ip->to_string() == "2001:db8::1" && (*r)[3].port == 9092);
	ck_assert((*r)[4].ip && (*r)[4].port == 9090);
	ck_assert((*r)[5].ip && (*r)[5].ip->to_string() == "2001:db8::2" && (*r)[5].port == 9090);

	r = parse_director_servers("", 9090);
	ck_assert(r.ok() && r->empty());
	const char *bad[] = {"10.0.0.1:", "10.0.0.1:0", "10.0.0.1:x", "[::1", "[::1]x",
			     "[::1]:70000", ":9090"};
	for (const char *value : bad) {
		r = parse_director_servers(value, 9090);
		ck_assert_msg(!r.ok(), "'%s' accepted", value);
		ck_assert(r.error().find("Invalid director host:port in '") == 0);
	}
}
END_TEST

START_TEST(test_proxy_notify_line_is_hashed_as_written)
{
	ck_assert(proxy_notify_user("alice@example.com") == "alice@example.com");
	ck_assert(proxy_notify_user("a\001tb") == "a\001tb"); // not unescaped
	ck_assert(proxy_notify_user(std::string_view("ab\0cd", 5)) == "ab");
}
END_TEST

int main()
{
	Suite *s = suite_create("config-values");
	TCase *tc = tcase_create("stock syntax");
	tcase_add_test(tc, test_stock_numbers_accept_exactly_stock_syntax);
	tcase_add_test(tc, test_stock_ip_accepts_what_net_addr2ip_accepts);
	suite_add_tcase(s, tc);
	tc = tcase_create("director_mail_servers");
	tcase_add_test(tc, test_mail_servers_ips_names_and_tags);
	tcase_add_test(tc, test_mail_servers_ranges_expand_inclusively);
	tcase_add_test(tc, test_mail_servers_errors_name_the_entry);
	suite_add_tcase(s, tc);
	tc = tcase_create("director_servers");
	tcase_add_test(tc, test_director_servers_host_port_forms);
	suite_add_tcase(s, tc);
	tc = tcase_create("proxy-notify");
	tcase_add_test(tc, test_proxy_notify_line_is_hashed_as_written);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
