// Check suite for core/ip-addr: parsing, canonical printing, stock ordering
// and the stock net_ip_hash() value.
#include <arpa/inet.h>
#include <cstdlib>
#include <string>

#include <check.h>

#include "check-main.h"

#include "ip-addr.h"

using director::core::IpAddr;

START_TEST(test_ip_addr_parses_and_prints_canonical_forms)
{
	struct Row {
		const char *in, *out;
	} rows[] = {
		{"10.0.0.1", "10.0.0.1"},
		{"2001:DB8:0:0:0:0:0:5", "2001:db8::5"},
		{"::1", "::1"},
		{"2001:db8::8:1aad", "2001:db8::8:1aad"},
	};
	for (const Row &r : rows) {
		auto ip = IpAddr::parse(r.in);
		ck_assert_msg(ip.has_value(), "%s", r.in);
		std::string text = ip->to_string();
		ck_assert_str_eq(text.c_str(), r.out);
	}
}
END_TEST

// IPv4 is printed without inet_ntop: every octet value in every position
// must come out as inet_ntop prints it, and append_to() must append.
START_TEST(test_ip_addr_prints_ipv4_as_inet_ntop)
{
	for (unsigned v = 0; v < 256; v++) {
		for (unsigned pos = 0; pos < 4; pos++) {
			uint8_t b[4] = {1, 20, 255, 0};
			b[pos] = uint8_t(v);
			IpAddr ip = IpAddr::v4(b[0], b[1], b[2], b[3]);
			char want[INET_ADDRSTRLEN];
			ck_assert_ptr_nonnull(inet_ntop(AF_INET, b, want, sizeof(want)));
			std::string text = ip.to_string();
			ck_assert_str_eq(text.c_str(), want);
			std::string out = "host=";
			ip.append_to(out);
			std::string expected = std::string("host=") + want;
			ck_assert_str_eq(out.c_str(), expected.c_str());
		}
	}
}
END_TEST

START_TEST(test_ip_addr_rejects_names_ports_and_garbage)
{
	const char *bad[] = {"", "mail.example.com", "10.0.0.1:143", "[::1]", "10.0.0", "10.0.0.256",
			     "1.2.3.4 ", " 1.2.3.4", "::g"};
	for (const char *b : bad)
		ck_assert_msg(!IpAddr::parse(b).has_value(), "accepted '%s'", b);
	// Found by fuzzing: a NUL must not end the address early.
	ck_assert(!IpAddr::parse(std::string_view("10.0.0.1\0junk", 13)).has_value());
}
END_TEST

START_TEST(test_ip_addr_orders_ipv4_before_ipv6_then_by_bytes)
{
	auto a = *IpAddr::parse("10.0.0.2");
	auto b = *IpAddr::parse("10.0.0.10");
	auto c = *IpAddr::parse("::1");
	ck_assert(a < b);
	ck_assert(b < c);
	ck_assert(!(c < a));
	ck_assert(a == *IpAddr::parse("10.0.0.2"));
}
END_TEST

START_TEST(test_ip_addr_stock_hash_of_ipv4_is_little_endian_s_addr)
{
	ck_assert_uint_eq(IpAddr::parse("10.0.0.1")->stock_hash(), 0x0100000Au);
}
END_TEST

int main()
{
	Suite *s = suite_create("ip-addr");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_ip_addr_parses_and_prints_canonical_forms);
	tcase_add_test(tc, test_ip_addr_prints_ipv4_as_inet_ntop);
	tcase_add_test(tc, test_ip_addr_rejects_names_ports_and_garbage);
	suite_add_tcase(s, tc);
	tc = tcase_create("order-and-hash");
	tcase_add_test(tc, test_ip_addr_orders_ipv4_before_ipv6_then_by_bytes);
	tcase_add_test(tc, test_ip_addr_stock_hash_of_ipv4_is_little_endian_s_addr);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
