// Check suite for the typed kick: its 2.3 ipc wording and its anvil translation
// used on Dovecot 2.4.
#include <check.h>

#include "check-main.h"

#include <string>

#include "anvil-kick.h"
#include "kick.h"

using namespace director::core;

START_TEST(test_anvil_kick_user_and_alt_map_to_one_command)
{
	auto k = anvil_kick(Kick::by_user("user\tone", KickReason::admin));
	ck_assert(!k.by_hash);
	ck_assert(k.command == "KICK-USER\tuser\x01tone");
	auto a = anvil_kick(Kick::by_alt_field("field", "val\nue", KickReason::admin));
	ck_assert(!a.by_hash);
	ck_assert(a.command == "KICK-ALT-USER\tfield\tval\x01nue");
}
END_TEST

START_TEST(test_anvil_kick_by_hash_matches_hash_and_except_ip)
{
	UsernameHash hash;
	uint32_t h = hash.hash("alice");
	auto k = anvil_kick(Kick::by_user_hash(h, IpAddr::parse("10.0.0.2"), "", KickReason::move));
	ck_assert(k.by_hash && k.user_hash == h);
	ck_assert(k.except_ip && k.except_ip->to_string() == "10.0.0.2");

	auto on_other = parse_anvil_session(
		"123\talice\timap-login\t127.0.0.1\t0123456789abcdef0123456789abcdef\t10.0.0.3");
	ck_assert(on_other.ok());
	auto line = anvil_kick_session(k, *on_other, hash);
	ck_assert(line && *line == "KICK-USER\talice\t0123456789abcdef0123456789abcdef");

	// Already on the host the user moves to: stays.
	auto on_target = parse_anvil_session("123\talice\timap-login\t127.0.0.1\tguid\t10.0.0.2");
	ck_assert(on_target.ok() && !anvil_kick_session(k, *on_target, hash));
	// Another user (the default hash is case-insensitive: ALICE matches).
	auto bob = parse_anvil_session("123\tbob\timap-login\t127.0.0.1\tguid\t10.0.0.3");
	ck_assert(bob.ok() && !anvil_kick_session(k, *bob, hash));
	auto upper = parse_anvil_session("123\tALICE\timap-login\t127.0.0.1\tguid\t10.0.0.3");
	ck_assert(upper.ok() && anvil_kick_session(k, *upper, hash));
	// Not proxied (a backend's own imap session): never ours to kick.
	auto local = parse_anvil_session("123\talice\timap\t127.0.0.1\tguid\t");
	ck_assert(local.ok() && !local->dest_ip && !anvil_kick_session(k, *local, hash));
	// Extra alt-username fields are fine.
	ck_assert(parse_anvil_session("1\tu\ts\t\tg\t10.0.0.1\talt1\talt2").ok());

	// Without except IP every matching session goes.
	auto all = anvil_kick(Kick::by_user_hash(h, std::nullopt, "", KickReason::move));
	ck_assert(!all.except_ip && anvil_kick_session(all, *on_target, hash));
}
END_TEST

START_TEST(test_anvil_bad_input_is_an_error)
{
	ck_assert(!parse_anvil_session("1\tu\ts\tip\tguid").ok());
	ck_assert(!parse_anvil_session("1\tu\ts\tip\tguid\tnot-an-ip").ok());
	ck_assert(parse_anvil_kick_reply("3").ok() && *parse_anvil_kick_reply("3") == 3);
	ck_assert(!parse_anvil_kick_reply("-Missing parameters").ok());
	ck_assert(!parse_anvil_kick_reply("").ok());
}
END_TEST

START_TEST(test_kick_ipc_line_words_each_kick_for_2_3)
{
	ck_assert(kick_ipc_line(Kick::by_user("a\tb", KickReason::admin)) == "proxy\t*\tKICK\ta\001tb");
	ck_assert(kick_ipc_line(Kick::by_alt_field("f\001", "v", KickReason::admin)) ==
		  "proxy\t*\tKICK-ALT\tf\001" "1\tv");
	ck_assert(kick_ipc_line(Kick::by_user_hash(42, std::nullopt, "t", KickReason::move)) ==
		  "proxy\t*\tKICK-DIRECTOR-HASH\t42");
	ck_assert(kick_ipc_line(Kick::by_user_hash(4294967295u, IpAddr::parse("10.0.0.2"), "",
						   KickReason::conflict)) ==
		  "proxy\t*\tKICK-DIRECTOR-HASH\t4294967295\t10.0.0.2");
	ck_assert(std::string(kick_reason_name(KickReason::conflict)) == "conflict");
}
END_TEST

int main()
{
	Suite *s = suite_create("anvil-kick");
	TCase *tc = tcase_create("translate");
	tcase_add_test(tc, test_anvil_kick_user_and_alt_map_to_one_command);
	tcase_add_test(tc, test_anvil_kick_by_hash_matches_hash_and_except_ip);
	tcase_add_test(tc, test_anvil_bad_input_is_an_error);
	tcase_add_test(tc, test_kick_ipc_line_words_each_kick_for_2_3);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
