// Check suite for core::DirectorList: ring order, the ip:port index, the cap, the
// neighbours of self and purging removed directors.
#include "director-list.h"

#include <check.h>

#include "check-main.h"

using namespace director::core;

namespace {

IpAddr v4(uint8_t d)
{
	return IpAddr::v4(10, 0, 0, d);
}

} // namespace

START_TEST(test_director_list_finds_by_ip_and_port)
{
	DirectorList l;
	DirectorHost *a = l.add(v4(1), 9090);
	DirectorHost *b = l.add(v4(1), 9091);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_eq(l.find(v4(1), 9090), a);
	ck_assert_ptr_eq(l.find(v4(1), 9091), b);
	ck_assert_ptr_null(l.find(v4(1), 9092));
	ck_assert_ptr_null(l.find(v4(2), 9090));
	ck_assert_ptr_eq(l.find_any(v4(1), std::nullopt), a);
	ck_assert_ptr_null(l.add(v4(1), 9090)); // already listed
	ck_assert_uint_eq(l.size(), 2);
	ck_assert(l.listed(v4(1)));
	a->removed = true;
	ck_assert(l.listed(v4(1)));
	b->removed = true;
	ck_assert(!l.listed(v4(1)));
}
END_TEST

START_TEST(test_director_list_keeps_ring_order_and_finds_the_right)
{
	DirectorList l;
	for (uint8_t d : {5, 1, 3, 4, 2})
		l.add(v4(d), 9090);
	for (size_t i = 0; i < l.size(); i++)
		ck_assert(l.all()[i]->ip == v4(uint8_t(i + 1)));
	l.set_self(l.find(v4(4), 9090));
	ck_assert(l.after_self(1)->ip == v4(5));
	ck_assert(l.after_self(2)->ip == v4(1));
	ck_assert(l.preferred_right()->ip == v4(5));
	l.find(v4(5), 9090)->removed = true;
	ck_assert(l.preferred_right()->ip == v4(1));
	// 1 is closer to our right than 3.
	ck_assert_int_gt(l.cmp_to_self(l.find(v4(1), 9090), l.find(v4(3), 9090)), 0);
	ck_assert_int_lt(l.cmp_to_self(l.find(v4(3), 9090), l.find(v4(1), 9090)), 0);
	ck_assert(l.others());
}
END_TEST

// Regression (outside audit): every DIRECTOR or CONNECT line from a peer added a
// director, without limit and with linear lookups.
START_TEST(test_director_list_is_capped)
{
	DirectorList l;
	size_t added = 0;
	for (uint32_t i = 0; i < 40000; i++) {
		IpAddr ip = IpAddr::v4(10, uint8_t(i >> 16), uint8_t(i >> 8), uint8_t(i));
		if (l.add(ip, 9090) != nullptr)
			added++;
	}
	ck_assert_uint_eq(added, max_ring_directors);
	ck_assert(l.full());
	ck_assert_ptr_nonnull(l.find(IpAddr::v4(10, 0, 0, 5), 9090));
}
END_TEST

START_TEST(test_director_list_purge_keeps_directors_in_use)
{
	DirectorList l;
	DirectorHost *a = l.add(v4(1), 9090);
	DirectorHost *b = l.add(v4(2), 9090);
	l.set_self(l.add(v4(3), 9090));
	a->removed = true;
	b->removed = true;
	l.purge([b](const DirectorHost *h) { return h == b; });
	ck_assert_ptr_null(l.find(v4(1), 9090));
	ck_assert_ptr_eq(l.find(v4(2), 9090), b);
	ck_assert_uint_eq(l.size(), 2);
	ck_assert_ptr_nonnull(l.add(v4(1), 9090)); // may come back
}
END_TEST

int main()
{
	Suite *s = suite_create("director-list");
	TCase *tc = tcase_create("list");
	tcase_add_test(tc, test_director_list_finds_by_ip_and_port);
	tcase_add_test(tc, test_director_list_keeps_ring_order_and_finds_the_right);
	tcase_add_test(tc, test_director_list_is_capped);
	tcase_add_test(tc, test_director_list_purge_keeps_directors_in_use);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
