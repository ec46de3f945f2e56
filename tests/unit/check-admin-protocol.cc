// Check suite for the director-admin (doveadm) codec: handshake, a table of command
// lines, reply-line formats, round trips and byte-at-a-time input.
// <fstream> before <check.h>: check defines a fail() macro.
#include <fstream>

#include <check.h>

#include "check-main.h"

#include <string>
#include <vector>

#include "admin-protocol.h"
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

namespace {

struct Row {
	const char *line;
	bool ok;
	AdminCommandKind kind; // when ok
	const char *error;     // substring when !ok
};

const Row rows[] = {
	{"HOST-LIST", true, AdminCommandKind::host_list, ""},
	{"HOST-LIST\textra", true, AdminCommandKind::host_list, ""},
	{"HOST-LIST-REMOVED", true, AdminCommandKind::host_list_removed, ""},
	{"DIRECTOR-LIST", true, AdminCommandKind::director_list, ""},
	{"DIRECTOR-ADD\t10.0.0.1", true, AdminCommandKind::director_add, ""},
	{"DIRECTOR-ADD\t10.0.0.1\t9090", true, AdminCommandKind::director_add, ""},
	{"DIRECTOR-ADD", false, {}, "doveadm sent invalid DIRECTOR-ADD parameters"},
	{"DIRECTOR-ADD\tname", false, {}, "invalid DIRECTOR-ADD parameters"},
	{"DIRECTOR-ADD\t10.0.0.1\t", false, {}, "invalid DIRECTOR-ADD parameters"},
	{"DIRECTOR-ADD\t10.0.0.1\t0", false, {}, "invalid DIRECTOR-ADD parameters"},
	{"DIRECTOR-REMOVE\t::1\t9090", true, AdminCommandKind::director_remove, ""},
	{"DIRECTOR-REMOVE\t::1\tx", false, {}, "invalid DIRECTOR-REMOVE parameters"},
	{"HOST-SET\t10.0.0.1", true, AdminCommandKind::host_set, ""},
	{"HOST-SET\t10.0.0.1@blue\t50", true, AdminCommandKind::host_set, ""},
	{"HOST-SET\t10.0.0.1\t5000", true, AdminCommandKind::host_set, ""},
	{"HOST-SET", false, {}, "doveadm sent invalid HOST-SET parameters"},
	{"HOST-SET\tmail.example.com", false, {}, "invalid HOST-SET parameters"},
	{"HOST-SET\t10.0.0.1\t", false, {}, "invalid HOST-SET parameters"},
	{"HOST-SET\t10.0.0.1\t-1", false, {}, "invalid HOST-SET parameters"},
	{"HOST-UPDATE\t10.0.0.1\t10", true, AdminCommandKind::host_update, ""},
	{"HOST-UPDATE\t10.0.0.1", false, {}, "doveadm sent invalid HOST-UPDATE parameters"},
	{"HOST-UP\t10.0.0.1", true, AdminCommandKind::host_up, ""},
	{"HOST-UP", false, {}, "doveadm sent invalid HOST-UP parameters: "},
	{"HOST-DOWN\tbad", false, {}, "doveadm sent invalid HOST-DOWN parameters: bad"},
	{"HOST-DOWN\t10.0.0.1\textra", true, AdminCommandKind::host_down, ""},
	{"HOST-REMOVE\t10.0.0.1", true, AdminCommandKind::host_remove, ""},
	{"HOST-REMOVE", false, {}, "doveadm sent invalid HOST-REMOVE parameters"},
	{"HOST-FLUSH", true, AdminCommandKind::host_flush, ""},
	{"HOST-FLUSH\t", true, AdminCommandKind::host_flush, ""},
	{"HOST-FLUSH\t10.0.0.1", true, AdminCommandKind::host_flush, ""},
	{"HOST-FLUSH\tx", false, {}, "doveadm sent invalid HOST-FLUSH parameters"},
	{"HOST-RESET-USERS", true, AdminCommandKind::host_reset_users, ""},
	{"HOST-RESET-USERS\t\t5", true, AdminCommandKind::host_reset_users, ""},
	{"HOST-RESET-USERS\t10.0.0.1\t5", true, AdminCommandKind::host_reset_users, ""},
	{"HOST-RESET-USERS\t10.0.0.1\t0", false, {},
	 "doveadm sent invalid HOST-RESET-USERS parameters"},
	{"HOST-RESET-USERS\t\t", false, {}, "invalid HOST-RESET-USERS parameters"},
	{"HOST-RESET-USERS\tx", false, {}, "doveadm sent invalid HOST-RESET-USERS ip: x"},
	{"USER-LOOKUP", true, AdminCommandKind::user_lookup, ""},
	{"USER-LOOKUP\tuser1@example.com", true, AdminCommandKind::user_lookup, ""},
	{"USER-LOOKUP\t12345\tblue", true, AdminCommandKind::user_lookup, ""},
	{"USER-LIST", true, AdminCommandKind::user_list, ""},
	{"USER-LIST\t10.0.0.2", true, AdminCommandKind::user_list, ""},
	{"USER-LIST\tx", false, {}, "doveadm sent invalid USER-LIST parameters"},
	{"USER-MOVE\talice\t10.0.0.2", true, AdminCommandKind::user_move, ""},
	{"USER-MOVE\talice", false, {}, "doveadm sent invalid USER-MOVE parameters"},
	{"USER-MOVE\talice\tx", false, {}, "doveadm sent invalid USER-MOVE parameters"},
	{"USER-KICK\tcarol", true, AdminCommandKind::user_kick, ""},
	{"USER-KICK\tcarol\tnowait", true, AdminCommandKind::user_kick, ""},
	{"USER-KICK", false, {}, "doveadm sent invalid USER-KICK parameters"},
	{"USER-KICK-ALT\tuser_x\tcarol2", true, AdminCommandKind::user_kick_alt, ""},
	{"USER-KICK-ALT\tuser_x", false, {}, "doveadm sent invalid USER-KICK-ALT parameters"},
	{"", false, {}, "doveadm sent empty command line"},
	{"HOST-SET-TAG\t10.0.0.1", false, {}, "doveadm sent unknown command: HOST-SET-TAG\t10"},
	{"host-list", false, {}, "doveadm sent unknown command: host-list"},
};

} // namespace

START_TEST(test_admin_table_row_parses_as_stock_does)
{
	const Row &row = rows[_i];
	auto r = parse_admin_command(row.line);
	if (row.ok) {
		ck_assert_msg(r.ok(), "row %d '%s' failed: %s", _i, row.line,
			      r.ok() ? "" : r.error().c_str());
		ck_assert(r->kind == row.kind);
	} else {
		ck_assert_msg(!r.ok(), "row %d '%s' parsed", _i, row.line);
		ck_assert_msg(r.error().find(row.error) != std::string::npos,
			      "row %d: '%s' lacks '%s'", _i, r.error().c_str(), row.error);
	}
}
END_TEST

START_TEST(test_admin_parses_fields)
{
	auto r = parse_admin_command("HOST-SET\t10.0.0.9@blue@x\t10");
	ck_assert(r.ok());
	CK_STR_EQ(r->ip->to_string().c_str(), "10.0.0.9");
	CK_STR_EQ(r->tag.c_str(), "blue@x");
	ck_assert(r->vhost_count == 10u);
	ck_assert(!vhost_count_too_large(*r));

	r = parse_admin_command("HOST-SET\t10.0.0.9\t1001");
	ck_assert(r.ok() && vhost_count_too_large(*r));
	r = parse_admin_command("HOST-UPDATE\t10.0.0.9\t1000");
	ck_assert(r.ok() && !vhost_count_too_large(*r));
	// stock's "not given" marker
	r = parse_admin_command("HOST-UPDATE\t10.0.0.9\t4294967295");
	ck_assert(r.ok() && !r->vhost_count && !vhost_count_too_large(*r));

	r = parse_admin_command("USER-LOOKUP\t12345\tblue");
	ck_assert(r.ok() && r->user_hash == 12345u && r->user == "12345" && r->tag == "blue");
	r = parse_admin_command("USER-LOOKUP\t4294967296");
	ck_assert(r.ok() && !r->user_hash);
	r = parse_admin_command("USER-LOOKUP\t+5");
	ck_assert(r.ok() && !r->user_hash);
	r = parse_admin_command("USER-LOOKUP\tUser1@Example.com");
	ck_assert(r.ok() && !r->user_hash && r->user == "User1@Example.com" && r->tag.empty());
	r = parse_admin_command("USER-MOVE\t42\t10.0.0.2");
	ck_assert(r.ok() && r->user_hash == 42u);

	r = parse_admin_command("USER-KICK\tca\001trol\tnowait");
	ck_assert(r.ok() && r->user == "ca\trol" && r->nowait);
	r = parse_admin_command("USER-KICK\tcarol\tNOWAIT");
	ck_assert(r.ok() && !r->nowait);
	r = parse_admin_command("USER-KICK-ALT\tf\tv\tnowait");
	ck_assert(r.ok() && r->field == "f" && r->value == "v" && r->nowait);

	r = parse_admin_command("HOST-RESET-USERS\t\t5");
	ck_assert(r.ok() && !r->ip && r->max_parallel == 5u);
	r = parse_admin_command("HOST-RESET-USERS\t10.0.0.1");
	ck_assert(r.ok() && r->ip && !r->max_parallel);
	r = parse_admin_command("DIRECTOR-ADD\t[::1]");
	ck_assert(r.ok() && r->ip->to_string() == "::1" && !r->port);

	ck_assert(admin_command_waits_for_sync(AdminCommandKind::host_set));
	ck_assert(!admin_command_waits_for_sync(AdminCommandKind::host_reset_users));
}
END_TEST

START_TEST(test_admin_handshake_is_checked)
{
	ck_assert(parse_admin_handshake("VERSION\tdirector-doveadm\t1\t0").ok());
	ck_assert(parse_admin_handshake("VERSION\tdirector-doveadm\t1\t7").ok());
	ck_assert(parse_admin_handshake(format_admin_handshake()).ok());
	const char *bad[] = {"VERSION\tdirector-doveadm\t2\t0", "VERSION\tdirector\t1\t0",
			     "VERSION\tdirector-doveadm\t1", "VERSION\tdirector-doveadm\t1\t0\tx",
			     "HOST-LIST", "", "VERSION\tdirector-doveadmx\t1\t0"};
	for (const char *line : bad) {
		Status st = parse_admin_handshake(line);
		ck_assert_msg(!st.ok(), "'%s' accepted", line);
		ck_assert(st.error().find("doveadm not compatible") == 0);
	}
}
END_TEST

START_TEST(test_admin_oversized_line_is_refused_by_the_reader)
{
	LineReader reader(admin_max_line_bytes);
	reader.feed("USER-KICK\t" + std::string(1014, 'a') + "\n");
	std::string line;
	ck_assert(reader.next_line(line) == LineReader::Status::too_long);
}
END_TEST

START_TEST(test_admin_reply_lines_match_stock)
{
	IpAddr ip1 = *IpAddr::parse("10.0.0.1");
	IpAddr ip9 = *IpAddr::parse("10.0.0.9");
	CK_STR_EQ(format_host_list_line(ip1, 100, 0, "", false, 0).c_str(),
			 "10.0.0.1\t100\t0\t\tU\t0");
	CK_STR_EQ(format_host_list_line(ip9, 10, 3, "bl\tue", true, 1795343944).c_str(),
			 "10.0.0.9\t10\t3\tbl\001tue\tD\t1795343944");
	CK_STR_EQ(format_user_lookup_line(std::nullopt, 0, *IpAddr::parse("10.0.0.2"),
						 *IpAddr::parse("10.0.0.2"))
				 .c_str(),
			 "\t0\t10.0.0.2\t10.0.0.2");
	CK_STR_EQ(format_user_lookup_line(std::nullopt, 0, ip9, std::nullopt).c_str(),
			 "\t0\t10.0.0.9\t");
	CK_STR_EQ(format_user_lookup_line(ip1, 1795344713, std::nullopt, std::nullopt).c_str(),
			 "10.0.0.1\t1795344713\t\t");
	CK_STR_EQ(format_user_list_line(287140048, 1795344713, *IpAddr::parse("10.0.0.2"))
				 .c_str(),
			 "287140048\t1795344713\t10.0.0.2");

	DirectorListHost self{*IpAddr::parse("127.0.0.1"), 0, "self", 0};
	CK_STR_EQ(format_director_list_entry_line(
				 self, director_ring_status_text(true, true, 0), 0)
				 .c_str(),
			 "127.0.0.1\t0\tself\t0\tring synced\t0");
	DirectorListHost other{*IpAddr::parse("127.0.78.3"), 9377, "", 1795343000};
	CK_STR_EQ(format_director_list_entry_line(other, std::nullopt, 0).c_str(),
			 "127.0.78.3\t9377\t\t1795343000\t");

	DirectorListConnection conn;
	conn.status = director_connection_status_text(true, false, true, 0);
	conn.last_ping_msecs = 43;
	conn.bytes_read = 182;
	conn.bytes_sent = 1239;
	conn.peak_bytes_buffered = 135;
	conn.last_input = conn.last_output = 1795343918;
	DirectorListHost right{*IpAddr::parse("127.0.78.2"), 9377, "right", 0};
	CK_STR_EQ(format_director_list_connection_line(right, conn).c_str(),
			 "127.0.78.2\t9377\tright\t0\tsynced\t43\t182\t1239\t0\t135\t1795343918\t"
			 "1795343918");
	conn.status = director_connection_status_text(false, true, false, 12);
	CK_STR_EQ(format_director_list_connection_line(std::nullopt, conn).c_str(),
			 "handshaking - 12 USERs received\t43\t182\t1239\t0\t135\t1795343918\t"
			 "1795343918");
	CK_STR_EQ(director_connection_status_text(false, false, false, 3).c_str(),
			 "handshaking - 3 USERs sent");
	CK_STR_EQ(director_ring_status_text(false, false, 0).c_str(), "ring handshaking");
	CK_STR_EQ(director_ring_status_text(true, false, 7).c_str(),
			 "ring syncing - last sync 7 secs ago");

	// A command's result, as doveadm reads it.
	CK_STR_EQ(std::string(admin_result_line(AdminResult::ok)).c_str(), "OK");
	CK_STR_EQ(std::string(admin_result_line(AdminResult::not_found)).c_str(), "NOTFOUND");
	CK_STR_EQ(std::string(admin_result_line(AdminResult::try_again)).c_str(), "TRYAGAIN");
	CK_STR_EQ(std::string(admin_result_line(AdminResult::vhost_count_too_large)).c_str(),
		  "vhost count too large");
	CK_STR_EQ(std::string(admin_result_line(AdminResult::tag_cant_change)).c_str(),
		  "host tag can't be changed");
	CK_STR_EQ(std::string(admin_result_line(AdminResult::host_being_updated)).c_str(),
		  "host is already being updated - try again later");
	CK_STR_EQ(std::string(admin_result_line(AdminResult::ring_sync_timeout)).c_str(),
		  "Ring sync timed out");
}
END_TEST

START_TEST(test_admin_format_then_parse_round_trips)
{
	const char *lines[] = {
		"HOST-LIST", "HOST-LIST-REMOVED", "DIRECTOR-LIST", "DIRECTOR-ADD\t10.0.0.1",
		"DIRECTOR-ADD\t10.0.0.1\t9090", "DIRECTOR-REMOVE\t2001:db8::1\t1",
		"HOST-SET\t10.0.0.1", "HOST-SET\t10.0.0.1@blue\t1001", "HOST-UPDATE\t10.0.0.1\t0",
		"HOST-UP\t10.0.0.1", "HOST-DOWN\t10.0.0.1", "HOST-REMOVE\t10.0.0.1", "HOST-FLUSH",
		"HOST-FLUSH\t10.0.0.1", "HOST-RESET-USERS", "HOST-RESET-USERS\t\t5",
		"HOST-RESET-USERS\t10.0.0.1", "HOST-RESET-USERS\t10.0.0.1\t7",
		"USER-LOOKUP\tuser1", "USER-LOOKUP\t42\tblue", "USER-LIST", "USER-LIST\t10.0.0.2",
		"USER-MOVE\talice\t10.0.0.2", "USER-MOVE\t42\t10.0.0.2", "USER-KICK\tca\001trol",
		"USER-KICK\tcarol\tnowait", "USER-KICK-ALT\tuser_x\tv", "USER-KICK-ALT\tf\tv\tnowait",
	};
	for (const char *line : lines) {
		auto r = parse_admin_command(line);
		ck_assert_msg(r.ok(), "'%s': %s", line, r.ok() ? "" : r.error().c_str());
		std::string again = format_admin_command(*r);
		ck_assert_msg(again == line, "'%s' formatted as '%s'", line, again.c_str());
		auto r2 = parse_admin_command(again);
		ck_assert(r2.ok() && *r2 == *r);
	}
}
END_TEST

START_TEST(test_admin_session_byte_at_a_time)
{
	// What stock doveadm sends for "director status", "director add -t blue
	// 10.0.0.9 10" and "director flush --max-parallel 5 all".
	const std::string input = "VERSION\tdirector-doveadm\t1\t0\n"
				  "HOST-LIST\n"
				  "HOST-SET\t10.0.0.9@blue\t10\n"
				  "HOST-RESET-USERS\t\t5\n";
	LineReader reader(admin_max_line_bytes);
	std::vector<std::string> lines;
	std::string line;
	for (char byte : input) {
		reader.feed(std::string_view(&byte, 1));
		while (reader.next_line(line) == LineReader::Status::line)
			lines.push_back(line);
	}
	ck_assert_uint_eq(lines.size(), 4);
	ck_assert(parse_admin_handshake(lines[0]).ok());
	ck_assert(parse_admin_command(lines[1])->kind == AdminCommandKind::host_list);
	auto set = parse_admin_command(lines[2]);
	ck_assert(set.ok() && set->tag == "blue" && set->vhost_count == 10u);
	auto reset = parse_admin_command(lines[3]);
	ck_assert(reset.ok() && !reset->ip && reset->max_parallel == 5u);
}
END_TEST

// tests/data/admin-stock-probe.tsv: what a stock director did with each request.
// Every "closed" line must be a parse error, every "reply" line must parse.
START_TEST(test_admin_agrees_with_recorded_stock_director)
{
	std::ifstream in(TEST_DATA_DIR "/admin-stock-probe.tsv");
	ck_assert(in.good());
	auto unescape = [](std::string s) {
		std::string out;
		for (size_t i = 0; i < s.size(); i++) {
			if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 't') {
				out += '\t';
				i++;
			} else {
				out += s[i];
			}
		}
		return out;
	};
	std::string row;
	int rows_checked = 0;
	while (std::getline(in, row)) {
		if (row.empty() || row[0] == '#')
			continue;
		size_t t1 = row.find('\t');
		size_t t2 = row.find('\t', t1 + 1);
		std::string outcome = row.substr(0, t1);
		std::string request = unescape(row.substr(t1 + 1, t2 - t1 - 1));
		if (request == "<empty>")
			request.clear();
		auto r = parse_admin_command(request);
		ck_assert_msg(r.ok() == (outcome == "reply"), "stock %s '%s' but we %s (%s)",
			      outcome.c_str(), request.c_str(), r.ok() ? "parse it" : "refuse it",
			      r.ok() ? "" : r.error().c_str());
		rows_checked++;
	}
	ck_assert_int_ge(rows_checked, 30);
}
END_TEST

int main()
{
	Suite *s = suite_create("admin-protocol");
	TCase *tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_admin_table_row_parses_as_stock_does, 0,
			    sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_admin_parses_fields);
	tcase_add_test(tc, test_admin_handshake_is_checked);
	tcase_add_test(tc, test_admin_oversized_line_is_refused_by_the_reader);
	tcase_add_test(tc, test_admin_agrees_with_recorded_stock_director);
	suite_add_tcase(s, tc);
	tc = tcase_create("format");
	tcase_add_test(tc, test_admin_reply_lines_match_stock);
	tcase_add_test(tc, test_admin_format_then_parse_round_trips);
	suite_add_tcase(s, tc);
	tc = tcase_create("stream");
	tcase_add_test(tc, test_admin_session_byte_at_a_time);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
