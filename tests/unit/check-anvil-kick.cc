// Check suite for the ipc-kick -> anvil translation used on Dovecot 2.4.
#include <check.h>

#include "check-main.h"

#include <string>

#include "anvil-kick.h"

using namespace director::core;

START_TEST(test_anvil_kick_user_and_alt_map_to_one_command)
{
	auto k = anvil_kick_from_ipc("proxy\t*\tKICK\tuser\x01tone");
	ck_assert(k.ok() && !k->by_hash);
	ck_assert(k->command == "KICK-USER\tuser\x01tone");
	auto a = anvil_kick_from_ipc("proxy\t*\tKICK-ALT\tfield\tvalue");
	ck_assert(a.ok() && !a->by_hash);
	ck_assert(a->command == "KICK-ALT-USER\tfield\tvalue");
}
END_TEST

START_TEST(test_anvil_kick_by_hash_matches_hash_and_except_ip)
{
	UsernameHash hash;
	uint32_t h = hash.hash("alice");
	auto k = anvil_kick_from_ipc("proxy\t*\tKICK-DIRECTOR-HASH\t" + std::to_string(h) +
				     "\t10.0.0.2");
	ck_assert(k.ok() && k->by_hash && k->user_hash == h);
	ck_assert(k->except_ip && k->except_ip->to_string() == "10.0.0.2");

	auto on_other = parse_anvil_session(
		"123\talice\timap-login\t127.0.0.1\t0123456789abcdef0123456789abcdef\t10.0.0.3");
	ck_assert(on_other.ok());
	auto line = anvil_kick_session(*k, *on_other, hash);
	ck_assert(line && *line == "KICK-USER\talice\t0123456789abcdef0123456789abcdef");

	// Already on the host the user moves to: stays.
	auto on_target = parse_anvil_session("123\talice\timap-login\t127.0.0.1\tguid\t10.0.0.2");
	ck_assert(on_target.ok() && !anvil_kick_session(*k, *on_target, hash));
	// Another user (the default hash is case-insensitive: ALICE matches).
	auto bob = parse_anvil_session("123\tbob\timap-login\t127.0.0.1\tguid\t10.0.0.3");
	ck_assert(bob.ok() && !anvil_kick_session(*k, *bob, hash));
	auto upper = parse_anvil_session("123\tALICE\timap-login\t127.0.0.1\tguid\t10.0.0.3");
	ck_assert(upper.ok() && anvil_kick_session(*k, *upper, hash));
	// Not proxied (a backend's own imap session): never ours to kick.
	auto local = parse_anvil_session("123\talice\timap\t127.0.0.1\tguid\t");
	ck_assert(local.ok() && !local->dest_ip && !anvil_kick_session(*k, *local, hash));
	// Extra alt-username fields are fine.
	ck_assert(parse_anvil_session("1\tu\ts\t\tg\t10.0.0.1\talt1\talt2").ok());

	// Without except IP every matching session goes.
	auto all = anvil_kick_from_ipc("proxy\t*\tKICK-DIRECTOR-HASH\t" + std::to_string(h));
	ck_assert(all.ok() && !all->except_ip && anvil_kick_session(*all, *on_target, hash));
}
END_TEST

START_TEST(test_anvil_kick_bad_input_is_an_error)
{
	const char *bad[] = {
		"",
		"proxy\t*",
		"proxy\t*\tKICK",
		"proxy\t*\tKICK\ta\tb",
		"proxy\t*\tKICK-ALT\tfield",
		"proxy\t*\tKICK-DIRECTOR-HASH\tx",
		"proxy\t*\tKICK-DIRECTOR-HASH\t99999999999",
		"proxy\t*\tKICK-DIRECTOR-HASH\t1\tnot-an-ip",
		"proxy\t*\tKILL\tuser",
		"other\t*\tKICK\tuser",
	};
	for (const char *line : bad)
		ck_assert_msg(!anvil_kick_from_ipc(line).ok(), "accepted: %s", line);
	ck_assert(!parse_anvil_session("1\tu\ts\tip\tguid").ok());
	ck_assert(!parse_anvil_session("1\tu\ts\tip\tguid\tnot-an-ip").ok());
	ck_assert(parse_anvil_kick_reply("3").ok() && *parse_anvil_kick_reply("3") == 3);
	ck_assert(!parse_anvil_kick_reply("-Missing parameters").ok());
	ck_assert(!parse_anvil_kick_reply("").ok());
}
END_TEST

int main()
{
	Suite *s = suite_create("anvil-kick");
	TCase *tc = tcase_create("translate");
	tcase_add_test(tc, test_anvil_kick_user_and_alt_map_to_one_command);
	tcase_add_test(tc, test_anvil_kick_by_hash_matches_hash_and_except_ip);
	tcase_add_test(tc, test_anvil_kick_bad_input_is_an_error);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
