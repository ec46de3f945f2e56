// Check suite for auth reply inspection and rewriting (login-and-userdb.md §2.3, §3).
#include <check.h>

#include "check-main.h"

#include <string>

#include "auth-reply.h"
#include "line-reader.h"

using namespace director::core;

// Compares as std::string, so temporaries (format_x().c_str()) are copied before
// they die; check's own ck_assert_str_eq keeps only the pointer.
#define CK_STR_EQ(a, b)                                                                    \
	do {                                                                               \
		std::string ck_a_ = (a);                                                   \
		std::string ck_b_ = (b);                                                   \
		ck_assert_msg(ck_a_ == ck_b_, "'%s' != '%s'", ck_a_.c_str(), ck_b_.c_str()); \
	} while (0)

START_TEST(test_auth_reply_observed_login_line_needs_host)
{
	const std::string line = "OK\t1\tuser=user1@example.com\tproxy\tlip=127.0.77.1\tlport=143\t"
				 "original_user=User1@Example.com\tpass=pass";
	AuthReply r = inspect_auth_reply(line, AuthReplySocket::login);
	ck_assert(r.inspected && r.proxy && !r.has_host && !r.proxy_maybe);
	CK_STR_EQ(r.id.c_str(), "1");
	ck_assert(r.username == std::string("user1@example.com"));
	ck_assert(r.local_ip && r.local_ip->to_string() == "127.0.77.1");
	ck_assert_uint_eq(r.local_port, 143);
	ck_assert(r.warnings.empty());
	ck_assert(auth_reply_needs_host(r));
	CK_STR_EQ(format_auth_reply_with_host(r, line, 450, *IpAddr::parse("10.0.0.2"), "")
				 .c_str(),
			 (line + "\tproxy_refresh=450\thost=10.0.0.2").c_str());
	CK_STR_EQ(format_auth_reply_with_host(r, line, 450, *IpAddr::parse("10.0.0.2"),
						     "mail2.example.net")
				 .c_str(),
			 (line + "\tproxy_refresh=450\thost=mail2.example.net\thostip=10.0.0.2")
				 .c_str());
}
END_TEST

START_TEST(test_auth_reply_observed_userdb_pass_line)
{
	const std::string line = "PASS\t7\tuser=user1@example.com\tproxy=y\tlip=127.0.77.1\tlport=24";
	AuthReply r = inspect_auth_reply(line, AuthReplySocket::userdb);
	ck_assert(r.inspected && auth_reply_needs_host(r));
	CK_STR_EQ(format_auth_reply_with_host(r, line, 450, *IpAddr::parse("10.0.0.2"), "")
				 .c_str(),
			 (line + "\tproxy_refresh=450\thost=10.0.0.2").c_str());
	CK_STR_EQ(format_auth_reply_fail(line).c_str(), "FAIL\t7\tcode=temp_fail");
	// the other socket type does not inspect it
	ck_assert(!inspect_auth_reply(line, AuthReplySocket::login).inspected);
	ck_assert(!inspect_auth_reply("OK\t1\tuser=a\tproxy", AuthReplySocket::userdb).inspected);
}
END_TEST

struct DecisionRow {
	const char *line;
	bool needs_host;
};

static const DecisionRow decision_rows[] = {
	{"OK\t1\tuser=a\tproxy", true},
	{"OK\t1\tuser=a\tproxy=y", true},
	{"OK\t1\tuser=a\tproxy=", true},
	{"OK\t1\tuser=a\tdirector_proxy_maybe", true},
	{"OK\t1\tuser=a\tdirector_proxy_maybe=yes", true},
	{"OK\t1\tuser=a", false},                     // not proxied
	{"OK\t1\tuser=a\tproxy_maybe", false},        // auth turns this into proxy
	{"OK\t1\tuser=a\tproxyx", false},
	{"OK\t1\tuser=a\tdirector_proxy_maybex", false},
	{"OK\t1\tuser=a\tproxy\thost=10.0.0.1", false}, // passdb chose the host
	{"OK\t1\tproxy", false},                        // no user name
	{"OK\t1\tdestuser=b\tproxy", true},
	{"OK\t1\tuser=\tproxy", true},                  // empty name still counts
	{"OK\t1", false},
	{"OK\t", false},
	{"OK", false},
	{"FAIL\t1\tuser=a\tproxy", false},
	{"CONT\t1\tabc", false},
	{"ok\t1\tuser=a\tproxy", false},
};

START_TEST(test_auth_reply_decision_table)
{
	const DecisionRow &row = decision_rows[_i];
	AuthReply r = inspect_auth_reply(row.line, AuthReplySocket::login);
	ck_assert_msg(auth_reply_needs_host(r) == row.needs_host, "row %d '%s'", _i, row.line);
}
END_TEST

START_TEST(test_auth_reply_destuser_wins_and_first_user_counts)
{
	AuthReply r = inspect_auth_reply("OK\t1\tuser=a\tdestuser=b\tproxy", AuthReplySocket::login);
	ck_assert(r.username == std::string("b"));
	r = inspect_auth_reply("OK\t1\tdestuser=b\tuser=a\tproxy", AuthReplySocket::login);
	ck_assert(r.username == std::string("b"));
	r = inspect_auth_reply("OK\t1\tuser=a\tuser=c\tproxy", AuthReplySocket::login);
	ck_assert(r.username == std::string("a"));
	r = inspect_auth_reply("OK\t1\tdestuser=b\tdestuser=d\tproxy", AuthReplySocket::login);
	ck_assert(r.username == std::string("d"));
	r = inspect_auth_reply("OK\t1\tuser=a\001tb\tproxy\tdirector_tag=blue", AuthReplySocket::login);
	ck_assert(r.username == std::string("a\tb"));
	CK_STR_EQ(r.tag.c_str(), "blue");
}
END_TEST

START_TEST(test_auth_reply_invalid_lip_lport_port_are_warnings)
{
	AuthReply r = inspect_auth_reply("OK\t1\tuser=a\tproxy\tlip=nope\tlport=0\tport=70000",
					 AuthReplySocket::login);
	ck_assert(auth_reply_needs_host(r));
	ck_assert_uint_eq(r.warnings.size(), 3);
	CK_STR_EQ(r.warnings[0].c_str(), "auth sent invalid lip field: nope");
	CK_STR_EQ(r.warnings[1].c_str(), "auth sent invalid lport field: 0");
	CK_STR_EQ(r.warnings[2].c_str(), "auth sent invalid port field: 70000");
	ck_assert(!r.local_ip && r.local_port == 0 && r.dest_port == 0);
}
END_TEST

START_TEST(test_auth_reply_proxy_maybe_self_check)
{
	IpAddr self = *IpAddr::parse("127.0.77.1");
	IpAddr other = *IpAddr::parse("10.0.0.2");
	const std::string line = "OK\t9\tuser=a\tdirector_proxy_maybe\tlip=127.0.77.1\tlport=143";
	AuthReply r = inspect_auth_reply(line, AuthReplySocket::login);
	ck_assert(auth_reply_host_is_self(r, self));
	ck_assert(!auth_reply_host_is_self(r, other));
	CK_STR_EQ(format_auth_reply_with_host(r, line, 450, self, "").c_str(), line.c_str());
	CK_STR_EQ(format_auth_reply_with_host(r, line, 450, other, "").c_str(),
			 (line + "\tproxy_refresh=450\thost=10.0.0.2").c_str());

	r = inspect_auth_reply(line + "\tport=143", AuthReplySocket::login);
	ck_assert(auth_reply_host_is_self(r, self));
	r = inspect_auth_reply(line + "\tport=993", AuthReplySocket::login);
	ck_assert(!auth_reply_host_is_self(r, self));
	r = inspect_auth_reply("OK\t9\tuser=a\tdirector_proxy_maybe\tlip=127.0.77.1\tport=993",
			       AuthReplySocket::login);
	ck_assert(auth_reply_host_is_self(r, self)); // lport unknown: ports not compared

	// without director_proxy_maybe, a self host still gets host= appended
	const std::string plain = "OK\t9\tuser=a\tproxy\tlip=127.0.77.1\tlport=143";
	r = inspect_auth_reply(plain, AuthReplySocket::login);
	CK_STR_EQ(format_auth_reply_with_host(r, plain, 450, self, "").c_str(),
			 (plain + "\tproxy_refresh=450\thost=127.0.77.1").c_str());
}
END_TEST

START_TEST(test_auth_reply_master_user_separator_cuts_name)
{
	AuthReply r = inspect_auth_reply("OK\t1\tuser=alice*admin\tproxy", AuthReplySocket::login);
	CK_STR_EQ(std::string(auth_reply_hash_name(r, "*")).c_str(), "alice");
	CK_STR_EQ(std::string(auth_reply_hash_name(r, "")).c_str(), "alice*admin");
	CK_STR_EQ(std::string(auth_reply_hash_name(r, "+*")).c_str(), "alice*admin"); // first char only
}
END_TEST

START_TEST(test_auth_reply_fail_line_keeps_raw_id)
{
	CK_STR_EQ(format_auth_reply_fail("OK\t123\tuser=a\tproxy").c_str(),
			 "FAIL\t123\tcode=temp_fail");
	CK_STR_EQ(format_auth_reply_fail("OK\t12").c_str(), "FAIL\t12\tcode=temp_fail");
	CK_STR_EQ(format_auth_reply_fail("PASS\t7\tuser=a").c_str(),
			 "FAIL\t7\tcode=temp_fail");
}
END_TEST

START_TEST(test_auth_reply_authreply_handshake)
{
	ck_assert(parse_authreply_handshake("VERSION\tdirector-authreply-client\t1\t0").ok());
	ck_assert(!parse_authreply_handshake("VERSION\tdirector-authreply-client\t2\t0").ok());
	ck_assert(!parse_authreply_handshake("VERSION\tdirector-doveadm\t1\t0").ok());
	CK_STR_EQ(format_authreply_handshake().c_str(),
			 "VERSION\tdirector-authreply-server\t1\t0");
}
END_TEST

START_TEST(test_auth_reply_lines_byte_at_a_time)
{
	const std::string input = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nDONE\n"
				  "OK\t1\tuser=u\tproxy\nFAIL\t2\tuser=v\n";
	LineReader reader(16384);
	std::string line;
	int inspected = 0, forwarded = 0;
	for (char byte : input) {
		reader.feed(std::string_view(&byte, 1));
		while (reader.next_line(line) == LineReader::Status::line) {
			AuthReply r = inspect_auth_reply(line, AuthReplySocket::login);
			if (auth_reply_needs_host(r))
				inspected++;
			else
				forwarded++;
		}
	}
	ck_assert_int_eq(inspected, 1);
	ck_assert_int_eq(forwarded, 4);
}
END_TEST

// login/director's view of how busy a connection is: the client's AUTH lines
// open a request at auth, its CANCEL lines and auth's OK and FAIL end one.
START_TEST(test_auth_request_counter_counts_open_requests)
{
	AuthRequestCounter c;
	c.client_bytes("VERSION\t1\t2\nCPID\t4711\n");
	ck_assert_uint_eq(c.open(), 0);
	c.client_bytes("AUTH\t1\tPLAIN\tservice=imap\nAUTH\t2\tPLAIN\tservice=imap\n"
		       "AUTH\t3\tPLAIN\tservice=imap\n");
	ck_assert_uint_eq(c.open(), 3);
	// auth's handshake lines and a CONT end nothing.
	for (const char *line : {"VERSION\t1\t2", "MECH\tPLAIN\tplaintext", "SPID\t1", "CUID\t1",
				 "COOKIE\tabc", "DONE", "CONT\t2\t"})
		c.auth_line(line);
	ck_assert_uint_eq(c.open(), 3);
	c.client_bytes("CONT\t2\tdGVzdA==\n");
	ck_assert_uint_eq(c.open(), 3);
	c.auth_line("OK\t1\tuser=u1\tproxy");
	c.auth_line("FAIL\t2\tuser=u2");
	ck_assert_uint_eq(c.open(), 1);
	c.client_bytes("CANCEL\t3\n");
	ck_assert_uint_eq(c.open(), 0);
	// Ends with nothing open are ignored, never below zero.
	c.auth_line("OK\t9\tuser=u9");
	c.client_bytes("CANCEL\t9\n");
	ck_assert_uint_eq(c.open(), 0);
	// Lines that only look alike open nothing.
	c.client_bytes("AUTH\nAUTHX\t1\nauth\t1\n AUTH\t1\nCANCEL\nCANCELX\t1\n");
	ck_assert_uint_eq(c.open(), 0);
	c.auth_line("OKAY\t1");
	c.auth_line("FAILED\t1");
	c.client_bytes("AUTH\t5\tPLAIN\n");
	ck_assert_uint_eq(c.open(), 1);
}
END_TEST

// The client's bytes reach us in chunks of any size: every split of the
// same bytes counts the same.
START_TEST(test_auth_request_counter_chunks_split_anywhere)
{
	const std::string bytes = "VERSION\t1\t2\nAUTH\t1\tPLAIN\tresp=AUTH\t\nAUTH\t2\tPLAIN\n"
				  "AUTH\nCANCEL\t1\nCANC\nAUTH\t3\tX\nCANCEL\t2\nAUTH\t4\n";
	// Open at the end: 1..4 opened, 1 and 2 cancelled.
	const unsigned expected = 2;
	AuthRequestCounter whole;
	whole.client_bytes(bytes);
	ck_assert_uint_eq(whole.open(), expected);
	for (size_t a = 0; a <= bytes.size(); a++) {
		for (size_t b = a; b <= bytes.size(); b += 3) {
			AuthRequestCounter c;
			c.client_bytes(std::string_view(bytes).substr(0, a));
			c.client_bytes(std::string_view(bytes).substr(a, b - a));
			c.client_bytes(std::string_view(bytes).substr(b));
			ck_assert_msg(c.open() == expected, "split at %zu and %zu: %u open", a, b,
				      c.open());
		}
	}
	AuthRequestCounter bytewise;
	for (char ch : bytes)
		bytewise.client_bytes(std::string_view(&ch, 1));
	ck_assert_uint_eq(bytewise.open(), expected);
}
END_TEST


int main()
{
	Suite *s = suite_create("auth-reply");
	TCase *tc = tcase_create("inspect");
	tcase_add_test(tc, test_auth_reply_observed_login_line_needs_host);
	tcase_add_test(tc, test_auth_reply_observed_userdb_pass_line);
	tcase_add_loop_test(tc, test_auth_reply_decision_table, 0,
			    sizeof(decision_rows) / sizeof(decision_rows[0]));
	tcase_add_test(tc, test_auth_reply_destuser_wins_and_first_user_counts);
	tcase_add_test(tc, test_auth_reply_invalid_lip_lport_port_are_warnings);
	tcase_add_test(tc, test_auth_reply_lines_byte_at_a_time);
	suite_add_tcase(s, tc);
	tc = tcase_create("rewrite");
	tcase_add_test(tc, test_auth_reply_proxy_maybe_self_check);
	tcase_add_test(tc, test_auth_reply_master_user_separator_cuts_name);
	tcase_add_test(tc, test_auth_reply_fail_line_keeps_raw_id);
	tcase_add_test(tc, test_auth_reply_authreply_handshake);
	tcase_add_test(tc, test_auth_request_counter_counts_open_requests);
	tcase_add_test(tc, test_auth_request_counter_chunks_split_anywhere);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
