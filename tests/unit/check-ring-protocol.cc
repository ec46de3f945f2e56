// Check suite for the ring protocol codec: a table of valid and invalid lines per
// command, version-dependent formats, round trips, and byte-at-a-time input.
#include <check.h>

#include "check-main.h"

#include <string>
#include <vector>

#include "line-reader.h"
#include "ring-protocol.h"

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

enum class Ctx { established, fresh, after_version, handshake_in, handshake_out, host_list,
		 handshake_in_old };

RingParseContext make_ctx(Ctx c)
{
	RingParseContext ctx = RingParseContext::established(false, 9);
	switch (c) {
	case Ctx::established:
		break;
	case Ctx::fresh:
		ctx = RingParseContext::fresh(true);
		break;
	case Ctx::after_version:
		ctx = RingParseContext::fresh(true);
		ctx.version_received = true;
		ctx.peer_minor = 9;
		break;
	case Ctx::handshake_in:
	case Ctx::handshake_out:
	case Ctx::host_list:
	case Ctx::handshake_in_old:
		ctx.handshake_done = false;
		ctx.incoming = c != Ctx::handshake_out;
		ctx.in_host_list = c == Ctx::host_list;
		ctx.peer_minor = c == Ctx::handshake_in_old ? 8 : 9;
		break;
	}
	return ctx;
}

struct Row {
	const char *line;
	Ctx ctx;
	bool ok;
	RingCommandKind kind; // when ok
	const char *error;    // substring, when !ok
};

const Row rows[] = {
	// VERSION
	{"VERSION\tdirector\t1\t9", Ctx::fresh, true, RingCommandKind::version, ""},
	{"VERSION\tdirector\t1\t9\textra", Ctx::fresh, true, RingCommandKind::version, ""},
	{"VERSION\tdirector\t1", Ctx::fresh, false, {}, "Incompatible protocol"},
	{"VERSION\tdoveadm\t1\t9", Ctx::fresh, false, {}, "Wrong protocol in socket"},
	{"VERSION\tdirector\t2\t0", Ctx::fresh, false, {}, "Incompatible protocol version: 2 vs 1"},
	{"VERSION\tdirector\t1\tx", Ctx::fresh, false, {}, "Invalid protocol version"},
	{"VERSION\tdirector\t1\t9", Ctx::established, false, {}, "Unknown command VERSION"},
	{"ME\t127.0.0.1\t9090", Ctx::fresh, false, {}, "Incompatible protocol"},
	// ME
	{"ME\t127.0.78.2\t9377\t1795343916", Ctx::after_version, true, RingCommandKind::me, ""},
	{"ME\t127.0.78.2\t9377", Ctx::after_version, true, RingCommandKind::me, ""},
	{"ME\t127.0.78.2", Ctx::after_version, false, {}, "Missing IP+port"},
	{"ME\tnot-an-ip\t9377", Ctx::after_version, false, {}, "Invalid IP address"},
	{"ME\t127.0.0.1\t0", Ctx::after_version, false, {}, "Invalid port"},
	{"ME\t127.0.0.1\t65536", Ctx::after_version, false, {}, "Invalid port"},
	{"ME\t127.0.0.1\t9\tsoon", Ctx::after_version, false, {}, "Invalid ME timestamp"},
	{"ME\t127.0.0.1\t9\t1", Ctx::handshake_in, false, {}, "Duplicate ME"},
	{"DIRECTOR\t127.0.0.1\t9090", Ctx::after_version, false, {}, "Expecting ME command first"},
	{"ME\t127.0.0.1\t9", Ctx::established, false, {}, "Unknown command ME"},
	// DIRECTOR / DIRECTOR-REMOVE / CONNECT
	{"DIRECTOR\t127.0.78.1\t9377", Ctx::handshake_out, true, RingCommandKind::director, ""},
	{"DIRECTOR\t127.0.78.1\t9377\textra", Ctx::established, true, RingCommandKind::director, ""},
	{"DIRECTOR\t127.0.78.1", Ctx::established, false, {}, "Missing IP+port"},
	{"DIRECTOR\t127.0.78.1\tx", Ctx::established, false, {}, "Invalid port"},
	{"DIRECTOR-REMOVE\t::1\t9377", Ctx::established, true, RingCommandKind::director_remove, ""},
	{"DIRECTOR-REMOVE\t::1", Ctx::established, false, {}, "Missing IP+port"},
	{"CONNECT\t10.0.0.1\t9090", Ctx::established, true, RingCommandKind::connect, ""},
	{"CONNECT\t10.0.0.1\t9090\tx", Ctx::established, false, {}, "Invalid parameters"},
	{"CONNECT\t10.0.0.1", Ctx::established, false, {}, "Invalid parameters"},
	// host list
	{"HOST-HAND-START\t0", Ctx::handshake_in, true, RingCommandKind::host_hand_start, ""},
	{"HOST-HAND-START", Ctx::handshake_in, false, {}, "Invalid parameters"},
	{"HOST-HAND-START\tx", Ctx::handshake_in, false, {}, "Invalid parameters"},
	{"HOST-HAND-START\t1", Ctx::handshake_out, false, {}, "only for incoming"},
	{"HOST-HAND-START\t1", Ctx::established, false, {}, "Unknown command"},
	{"HOST\t10.0.0.1\t100\t\tU0\t", Ctx::host_list, true, RingCommandKind::handshake_host, ""},
	{"HOST\t10.0.0.9\t3\tblue\tD1795343944\tmail9", Ctx::host_list, true,
	 RingCommandKind::handshake_host, ""},
	{"HOST\t10.0.0.1\t100", Ctx::host_list, true, RingCommandKind::handshake_host, ""},
	{"HOST\t10.0.0.1", Ctx::host_list, false, {}, "Invalid parameters"},
	{"HOST\tx\t100", Ctx::host_list, false, {}, "Invalid parameters"},
	{"HOST\t10.0.0.1\t-1", Ctx::host_list, false, {}, "Invalid parameters"},
	{"HOST\t10.0.0.1\t100\t\tX0\t", Ctx::host_list, false, {}, "Invalid updown"},
	{"HOST\t10.0.0.1\t100\t\t\t", Ctx::host_list, false, {}, "Invalid updown"},
	{"HOST\t10.0.0.1\t100\t\tUx\t", Ctx::host_list, false, {}, "Invalid updown"},
	{"HOST-HAND-END\t0", Ctx::host_list, true, RingCommandKind::host_hand_end, ""},
	{"HOST-HAND-END", Ctx::host_list, true, RingCommandKind::host_hand_end, ""},
	{"DONE", Ctx::host_list, false, {}, "Unexpected command during host list"},
	{"HOST-HAND-END\t0", Ctx::handshake_in, false, {}, "Unknown command"},
	// handshake users
	{"U\t1\t10.0.0.1\t1795343917", Ctx::handshake_in, true, RingCommandKind::handshake_user, ""},
	{"U\t1\t10.0.0.1\t1795343917\tw", Ctx::handshake_in, true, RingCommandKind::handshake_user,
	 ""},
	{"U\t1\t10.0.0.1", Ctx::handshake_in, false, {}, "Invalid parameters"},
	{"U\t1\t10.0.0.1\t-5", Ctx::handshake_in, false, {}, "Invalid parameters"},
	{"U\t4294967296\t10.0.0.1\t5", Ctx::handshake_in, false, {}, "Invalid parameters"},
	{"U\t1\t10.0.0.1\t5", Ctx::handshake_out, false, {}, "Unknown command U"},
	{"U\t1\t10.0.0.1\t5", Ctx::established, false, {}, "Unknown command U"},
	{"USER\t1\t10.0.0.1\t5", Ctx::handshake_in_old, true, RingCommandKind::handshake_user, ""},
	{"USER\t1\t10.0.0.1\t5", Ctx::handshake_in, true, RingCommandKind::user, ""},
	{"USER\t1\t10.0.0.1", Ctx::handshake_in_old, true, RingCommandKind::user, ""},
	// OPTIONS / DONE
	{"OPTIONS\tconsistent-hashing", Ctx::handshake_in, true, RingCommandKind::options, ""},
	{"OPTIONS\tfoo\tconsistent-hashing", Ctx::handshake_out, true, RingCommandKind::options, ""},
	{"OPTIONS", Ctx::handshake_in, false, {}, "director_consistent_hashing"},
	{"OPTIONS\tfoo", Ctx::handshake_in, false, {}, "director_consistent_hashing"},
	{"OPTIONS\tconsistent-hashing", Ctx::established, false, {}, "Unknown command OPTIONS"},
	{"DONE", Ctx::handshake_in, true, RingCommandKind::done, ""},
	{"DONE\textra", Ctx::handshake_out, true, RingCommandKind::done, ""},
	{"DONE", Ctx::established, false, {}, "Unknown command DONE"},
	// USER
	{"USER\t3244357836\t10.0.0.1\t1795343917", Ctx::established, true, RingCommandKind::user, ""},
	{"USER\t3244357836\t10.0.0.1", Ctx::established, true, RingCommandKind::user, ""},
	{"USER\t3244357836\t10.0.0.1\t5\textra", Ctx::established, true, RingCommandKind::user, ""},
	{"USER\t3244357836", Ctx::established, false, {}, "Invalid parameters"},
	{"USER\tx\t10.0.0.1", Ctx::established, false, {}, "Invalid parameters"},
	{"USER\t1\t10.0.0.1\tx", Ctx::established, false, {}, "Invalid parameters"},
	{"USER\t1\t10.0.0.256", Ctx::established, false, {}, "Invalid parameters"},
	// HOST with origin
	{"HOST\t127.0.78.1\t9377\t1\t10.0.0.4\t77\t\tU0\t", Ctx::established, true,
	 RingCommandKind::host, ""},
	{"HOST\t127.0.78.1\t9377\t2\t10.0.0.9\t3\tblue\tU0\t", Ctx::established, true,
	 RingCommandKind::host, ""},
	{"HOST\t127.0.78.1\t9377\t2\t10.0.0.9\t3", Ctx::established, true, RingCommandKind::host,
	 ""},
	{"HOST\t127.0.78.1\t9377\t2\t10.0.0.9", Ctx::established, false, {}, "Invalid parameters"},
	{"HOST\t127.0.78.1\t9377", Ctx::established, false, {}, "Invalid parameters"},
	{"HOST\t127.0.78.1\t0\t2\t10.0.0.9\t3", Ctx::established, false, {}, "Invalid parameters"},
	{"HOST\t127.0.78.1\t9377\tx\t10.0.0.9\t3", Ctx::established, false, {},
	 "Invalid parameters"},
	{"HOST\t127.0.78.1\t9377\t2\t10.0.0.9\t3\t\tZ1\t", Ctx::established, false, {},
	 "Invalid updown"},
	// HOST-REMOVE / HOST-FLUSH
	{"HOST-REMOVE\t127.0.78.1\t9377\t9\t10.0.0.3", Ctx::established, true,
	 RingCommandKind::host_remove, ""},
	{"HOST-REMOVE\t127.0.78.1\t9377\t9", Ctx::established, false, {}, "Invalid parameters"},
	{"HOST-REMOVE\t127.0.78.1\t9377\t9\t10.0.0.3\tx", Ctx::established, false, {},
	 "Invalid parameters"},
	{"HOST-FLUSH\t127.0.78.1\t9377\t9\t10.0.0.3", Ctx::established, true,
	 RingCommandKind::host_flush, ""},
	{"HOST-FLUSH\t127.0.78.1\t9377\t9\tbad", Ctx::established, false, {}, "Invalid parameters"},
	// USER-MOVE / USER-WEAK / USER-KICK-HASH
	{"USER-MOVE\t127.0.78.1\t9377\t3\t42\t10.0.0.2", Ctx::established, true,
	 RingCommandKind::user_move, ""},
	{"USER-MOVE\t127.0.78.1\t9377\t3\t42", Ctx::established, false, {}, "Invalid parameters"},
	{"USER-MOVE\t127.0.78.1\t9377\t3\t42\t10.0.0.2\tx", Ctx::established, false, {},
	 "Invalid parameters"},
	{"USER-WEAK\t127.0.78.1\t9377\t3\t42\t10.0.0.2", Ctx::established, true,
	 RingCommandKind::user_weak, ""},
	{"USER-WEAK\t127.0.78.1\t9377\t3\tx\t10.0.0.2", Ctx::established, false, {},
	 "Invalid parameters"},
	{"USER-KICK-HASH\t127.0.78.1\t9377\t3\t42\t10.0.0.2", Ctx::established, true,
	 RingCommandKind::user_kick_hash, ""},
	{"USER-KICK-HASH\t127.0.78.1\t9377\t3\t42", Ctx::established, false, {},
	 "Invalid parameters"},
	// USER-KILLED / USER-KILLED-EVERYWHERE
	{"USER-KILLED\t42", Ctx::established, true, RingCommandKind::user_killed, ""},
	{"USER-KILLED", Ctx::established, false, {}, "Invalid parameters"},
	{"USER-KILLED\t42\t1", Ctx::established, false, {}, "Invalid parameters"},
	{"USER-KILLED-EVERYWHERE\t127.0.78.1\t9377\t4\t42", Ctx::established, true,
	 RingCommandKind::user_killed_everywhere, ""},
	{"USER-KILLED-EVERYWHERE\t127.0.78.1\t9377\t4", Ctx::established, false, {},
	 "Invalid parameters"},
	// USER-KICK / USER-KICK-ALT
	{"USER-KICK\t127.0.78.1\t9377\t7\tcarol", Ctx::established, true, RingCommandKind::user_kick,
	 ""},
	{"USER-KICK\t127.0.78.1\t9377\t7", Ctx::established, false, {}, "Invalid parameters"},
	{"USER-KICK\t127.0.78.1\t9377\t7\ta\tb", Ctx::established, false, {}, "Invalid parameters"},
	{"USER-KICK-ALT\t127.0.78.1\t9377\t8\tuser_x\tcarol2", Ctx::established, true,
	 RingCommandKind::user_kick_alt, ""},
	{"USER-KICK-ALT\t127.0.78.1\t9377\t8\tuser_x", Ctx::established, false, {},
	 "Invalid parameters"},
	// PING / PONG are tolerant
	{"PING\t1795343918\t0", Ctx::established, true, RingCommandKind::ping, ""},
	{"PING", Ctx::established, true, RingCommandKind::ping, ""},
	{"PING\tx\ty\tz", Ctx::handshake_in, true, RingCommandKind::ping, ""},
	{"PONG\t1795343918\t0", Ctx::established, true, RingCommandKind::pong, ""},
	{"PONG", Ctx::established, true, RingCommandKind::pong, ""},
	{"PING", Ctx::after_version, false, {}, "Expecting ME command first"},
	// SYNC
	{"SYNC\t127.0.78.1\t9377\t2\t9\t1795343918\t1522526113", Ctx::established, true,
	 RingCommandKind::sync, ""},
	{"SYNC\t127.0.78.1\t9377\t2", Ctx::established, true, RingCommandKind::sync, ""},
	{"SYNC\t127.0.78.1\t9377\t2\t9", Ctx::established, true, RingCommandKind::sync, ""},
	{"SYNC\t127.0.78.1\t9377", Ctx::established, false, {}, "Invalid parameters"},
	{"SYNC\t127.0.78.1\tx\t2", Ctx::established, false, {}, "Invalid port"},
	{"SYNC\t127.0.78.1\t9377\t2\t9\tx", Ctx::established, false, {}, "Invalid parameters"},
	{"SYNC\t127.0.78.1\t9377\t2\t9\t1\t-1", Ctx::established, false, {}, "Invalid parameters"},
	// QUIT
	{"QUIT\tgoing away", Ctx::established, true, RingCommandKind::quit, ""},
	{"QUIT", Ctx::handshake_in, true, RingCommandKind::quit, ""},
	// empty / unknown
	{"", Ctx::established, false, {}, "Received empty line"},
	{"FOO\t1", Ctx::established, false, {}, "Unknown command FOO"},
	{"user\t1\t10.0.0.1", Ctx::established, false, {}, "Unknown command user"},
	{"FOO", Ctx::handshake_in, false, {}, "Unknown command FOO"},
};

} // namespace

START_TEST(test_ring_table_row_parses_as_stock_does)
{
	const Row &row = rows[_i];
	auto r = parse_ring_line(row.line, make_ctx(row.ctx));
	if (row.ok) {
		ck_assert_msg(r.ok(), "row %d '%s' failed: %s", _i, row.line,
			      r.ok() ? "" : r.error().c_str());
		ck_assert_msg(r->kind == row.kind, "row %d '%s' wrong kind", _i, row.line);
	} else {
		ck_assert_msg(!r.ok(), "row %d '%s' parsed", _i, row.line);
		ck_assert_msg(r.error().find(row.error) != std::string::npos,
			      "row %d '%s': error '%s' lacks '%s'", _i, row.line, r.error().c_str(),
			      row.error);
	}
}
END_TEST

START_TEST(test_ring_oversized_line_is_refused_by_the_reader)
{
	std::string line = "USER-KICK\t127.0.0.1\t9090\t1\t" + std::string(1000, 'u') + "\n";
	LineReader reader(ring_max_line_bytes);
	reader.feed(line);
	std::string out;
	ck_assert(reader.next_line(out) == LineReader::Status::too_long);
}
END_TEST

START_TEST(test_ring_parses_fields)
{
	auto r = parse_ring_line("HOST\t127.0.78.1\t9377\t2\t10.0.0.9\t3\tblue\tD1795343944\tm9",
				 make_ctx(Ctx::established));
	ck_assert(r.ok());
	CK_STR_EQ(r->origin.ip.to_string().c_str(), "127.0.78.1");
	ck_assert_uint_eq(r->origin.port, 9377);
	ck_assert_uint_eq(r->origin.seq, 2);
	CK_STR_EQ(r->ip.to_string().c_str(), "10.0.0.9");
	ck_assert_uint_eq(r->vhost_count, 3);
	CK_STR_EQ(r->tag.c_str(), "blue");
	ck_assert(r->updown.has_value() && r->updown->down);
	ck_assert_int_eq(r->updown->last_updown_change, 1795343944);
	CK_STR_EQ(r->hostname.c_str(), "m9");

	r = parse_ring_line("USER-KICK\t127.0.0.1\t9\t1\ta\001tb", make_ctx(Ctx::established));
	ck_assert(r.ok());
	ck_assert(r->username == "a\tb");

	r = parse_ring_line("U\t7\t10.0.0.1\t100\tw", make_ctx(Ctx::handshake_in));
	ck_assert(r.ok() && r->weak && r->user_hash == 7 && r->timestamp == 100);

	r = parse_ring_line("PING\t5\tx", make_ctx(Ctx::established));
	ck_assert(r.ok() && !r->timestamp && !r->buffer_bytes);

	r = parse_ring_line("QUIT\tsome\treason", make_ctx(Ctx::established));
	ck_assert(r.ok());
	CK_STR_EQ(r->reason.c_str(), "some reason");

	r = parse_ring_line("SYNC\t127.0.78.1\t9377\t2\t9", make_ctx(Ctx::established));
	ck_assert(r.ok() && r->sync_minor == 9u && !r->sync_timestamp && !r->hosts_hash);

	// stock reads IPs with net_addr2ip(): single number and [ipv6] forms
	r = parse_ring_line("USER\t1\t167772161", make_ctx(Ctx::established));
	ck_assert(r.ok());
	CK_STR_EQ(r->ip.to_string().c_str(), "10.0.0.1");
	r = parse_ring_line("DIRECTOR\t[::1]\t9090", make_ctx(Ctx::established));
	ck_assert(r.ok());
	CK_STR_EQ(r->ip.to_string().c_str(), "::1");

	// an embedded NUL ends the field, as in stock's C strings
	r = parse_ring_line(std::string_view("USER-KILLED\t42\0junk", 20), make_ctx(Ctx::established));
	ck_assert(r.ok() && r->user_hash == 42);
}
END_TEST

START_TEST(test_ring_seen_triple_is_available_for_malformed_body)
{
	RingParseContext ctx = make_ctx(Ctx::established);
	const char *line = "USER-MOVE\t127.0.78.1\t9377\t3\tbad\t10.0.0.2";
	ck_assert(!parse_ring_line(line, ctx).ok());
	auto o = ring_origin_checked_before_body(line, ctx);
	ck_assert(o.has_value() && o->seq == 3 && o->port == 9377);
	// USER-WEAK and USER-KILLED-EVERYWHERE validate their body first
	ck_assert(!ring_origin_checked_before_body("USER-WEAK\t127.0.78.1\t9377\t3\tbad", ctx));
	ck_assert(!ring_origin_checked_before_body("HOST\t127.0.78.1\tx\t3\t1", ctx));
}
END_TEST

START_TEST(test_ring_formats_observed_stock_lines)
{
	RingFormatContext f;
	RingCommand c;
	c.kind = RingCommandKind::version;
	c.minor_version = 9;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "VERSION\tdirector\t1\t9");

	c = RingCommand();
	c.kind = RingCommandKind::handshake_host;
	c.ip = *IpAddr::parse("10.0.0.1");
	c.vhost_count = 100;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "HOST\t10.0.0.1\t100\t\tU0\t");
	f.peer_minor = 5;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "HOST\t10.0.0.1\t100");
	c.tag = "blue";
	CK_STR_EQ(format_ring_command(c, f).c_str(), "HOST\t10.0.0.1\t100\tblue");
	f.peer_minor = 9;

	c = RingCommand();
	c.kind = RingCommandKind::host;
	c.origin = RingOrigin{*IpAddr::parse("127.0.78.1"), 9377, 2};
	c.ip = *IpAddr::parse("10.0.0.4");
	c.vhost_count = 77;
	c.updown = RingUpDown{true, 1795343918};
	CK_STR_EQ(format_ring_command(c, f).c_str(),
			 "HOST\t127.0.78.1\t9377\t2\t10.0.0.4\t77\t\tD1795343918\t");
	f.ring_min_version = 6; // stock drops the empty tag but keeps up/down
	CK_STR_EQ(format_ring_command(c, f).c_str(),
			 "HOST\t127.0.78.1\t9377\t2\t10.0.0.4\t77\tD1795343918\t");
	f.ring_min_version = 5;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "HOST\t127.0.78.1\t9377\t2\t10.0.0.4\t77");
	f.ring_min_version = 9;

	c = RingCommand();
	c.kind = RingCommandKind::user;
	c.user_hash = 3244357836u;
	c.ip = *IpAddr::parse("10.0.0.1");
	c.timestamp = 1795343917;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "USER\t3244357836\t10.0.0.1\t1795343917");
	f.peer_minor = 8;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "USER\t3244357836\t10.0.0.1");
	c.kind = RingCommandKind::handshake_user;
	c.weak = true;
	CK_STR_EQ(format_ring_command(c, f).c_str(),
			 "USER\t3244357836\t10.0.0.1\t1795343917\tw");
	f.peer_minor = 9;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "U\t3244357836\t10.0.0.1\t1795343917\tw");

	c = RingCommand();
	c.kind = RingCommandKind::sync;
	c.origin = RingOrigin{*IpAddr::parse("127.0.78.1"), 9377, 2};
	c.sync_minor = 9;
	c.sync_timestamp = 1795343918;
	c.hosts_hash = 1522526113;
	CK_STR_EQ(format_ring_command(c, f).c_str(),
			 "SYNC\t127.0.78.1\t9377\t2\t9\t1795343918\t1522526113");
	f.peer_minor = 0;
	CK_STR_EQ(format_ring_command(c, f).c_str(), "SYNC\t127.0.78.1\t9377\t2");
	f.peer_minor = 9;

	c = RingCommand();
	c.kind = RingCommandKind::user_kick_alt;
	c.origin = RingOrigin{*IpAddr::parse("127.0.78.1"), 9377, 8};
	c.field = "user_x";
	c.value = "carol2";
	CK_STR_EQ(format_ring_command(c, f).c_str(),
			 "USER-KICK-ALT\t127.0.78.1\t9377\t8\tuser_x\tcarol2");

	c = RingCommand();
	c.kind = RingCommandKind::options;
	c.options = {"consistent-hashing"};
	CK_STR_EQ(format_ring_command(c, f).c_str(), "OPTIONS\tconsistent-hashing");
}
END_TEST

START_TEST(test_ring_gates_match_the_doc)
{
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::user_weak), 1);
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::director_remove), 2);
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::quit), 3);
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::user_kick), 4);
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::user_kick_hash), 4);
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::user_kick_alt), 8);
	ck_assert_uint_eq(ring_command_min_minor(RingCommandKind::user), 0);
	ck_assert(ring_command_has_origin(RingCommandKind::sync));
	ck_assert(!ring_command_has_origin(RingCommandKind::user_killed));
}
END_TEST

namespace {

struct Trip {
	RingCommand cmd;
	Ctx ctx;
	unsigned peer_minor;
};

std::vector<Trip> round_trips()
{
	IpAddr o_ip = *IpAddr::parse("127.0.78.1");
	IpAddr h4 = *IpAddr::parse("10.0.0.9");
	IpAddr h6 = *IpAddr::parse("2001:db8::5");
	RingOrigin origin{o_ip, 9377, 41};
	std::vector<Trip> t;
	auto add = [&](RingCommandKind kind, Ctx ctx, unsigned minor, auto fill) {
		RingCommand c;
		c.kind = kind;
		if (ring_command_has_origin(kind))
			c.origin = origin;
		fill(c);
		t.push_back({c, ctx, minor});
	};
	add(RingCommandKind::version, Ctx::fresh, 9, [](RingCommand &c) { c.minor_version = 9; });
	add(RingCommandKind::me, Ctx::after_version, 9, [&](RingCommand &c) {
		c.ip = o_ip;
		c.port = 9377;
		c.timestamp = 1795343916;
	});
	add(RingCommandKind::director, Ctx::established, 9, [&](RingCommand &c) {
		c.ip = h6;
		c.port = 1;
	});
	add(RingCommandKind::director_remove, Ctx::established, 9, [&](RingCommand &c) {
		c.ip = o_ip;
		c.port = 65535;
	});
	add(RingCommandKind::connect, Ctx::established, 9, [&](RingCommand &c) {
		c.ip = o_ip;
		c.port = 9090;
	});
	add(RingCommandKind::host_hand_start, Ctx::handshake_in, 9,
	    [](RingCommand &c) { c.ring_handshaked = true; });
	add(RingCommandKind::host_hand_end, Ctx::host_list, 9,
	    [](RingCommand &c) { c.ring_handshaked = true; });
	add(RingCommandKind::handshake_host, Ctx::host_list, 9, [&](RingCommand &c) {
		c.ip = h4;
		c.vhost_count = 3;
		c.tag = "bl\tue";
		c.updown = RingUpDown{true, 1795343944};
		c.hostname = "mail9.example.net";
	});
	add(RingCommandKind::handshake_host, Ctx::host_list, 5, [&](RingCommand &c) {
		c.ip = h6;
		c.vhost_count = 100;
	});
	add(RingCommandKind::handshake_user, Ctx::handshake_in, 9, [&](RingCommand &c) {
		c.user_hash = 4294967295u;
		c.ip = h4;
		c.timestamp = 1795343917;
		c.weak = true;
	});
	add(RingCommandKind::handshake_user, Ctx::handshake_in_old, 8, [&](RingCommand &c) {
		c.user_hash = 1;
		c.ip = h6;
		c.timestamp = 0;
	});
	add(RingCommandKind::options, Ctx::handshake_in, 9,
	    [](RingCommand &c) { c.options = {"consistent-hashing", "x y"}; });
	add(RingCommandKind::done, Ctx::handshake_in, 9, [](RingCommand &) {});
	add(RingCommandKind::user, Ctx::established, 9, [&](RingCommand &c) {
		c.user_hash = 3244357836u;
		c.ip = h4;
		c.timestamp = 1795343917;
	});
	add(RingCommandKind::user, Ctx::established, 8, [&](RingCommand &c) {
		c.user_hash = 3;
		c.ip = h6;
	});
	add(RingCommandKind::host, Ctx::established, 9, [&](RingCommand &c) {
		c.ip = h4;
		c.vhost_count = 0;
		c.updown = RingUpDown{false, 0};
	});
	add(RingCommandKind::host_remove, Ctx::established, 9, [&](RingCommand &c) { c.ip = h4; });
	add(RingCommandKind::host_flush, Ctx::established, 9, [&](RingCommand &c) { c.ip = h6; });
	add(RingCommandKind::user_move, Ctx::established, 9, [&](RingCommand &c) {
		c.user_hash = 42;
		c.ip = h4;
	});
	add(RingCommandKind::user_weak, Ctx::established, 9, [&](RingCommand &c) {
		c.user_hash = 43;
		c.ip = h4;
	});
	add(RingCommandKind::user_killed, Ctx::established, 9,
	    [](RingCommand &c) { c.user_hash = 44; });
	add(RingCommandKind::user_killed_everywhere, Ctx::established, 9,
	    [](RingCommand &c) { c.user_hash = 45; });
	add(RingCommandKind::user_kick, Ctx::established, 9,
	    [](RingCommand &c) { c.username = "carol\001x\ny"; });
	add(RingCommandKind::user_kick_alt, Ctx::established, 9, [](RingCommand &c) {
		c.field = "user_x";
		c.value = "a\tb";
	});
	add(RingCommandKind::user_kick_hash, Ctx::established, 9, [&](RingCommand &c) {
		c.user_hash = 46;
		c.ip = h6;
	});
	add(RingCommandKind::ping, Ctx::established, 9, [](RingCommand &c) {
		c.timestamp = 1795343918;
		c.buffer_bytes = 123;
	});
	add(RingCommandKind::pong, Ctx::established, 9, [](RingCommand &c) {
		c.timestamp = 1795343918;
		c.buffer_bytes = 0;
	});
	add(RingCommandKind::sync, Ctx::established, 9, [](RingCommand &c) {
		c.sync_minor = 9;
		c.sync_timestamp = 1795343918;
		c.hosts_hash = 1522526113;
	});
	add(RingCommandKind::sync, Ctx::established, 9, [](RingCommand &) {});
	add(RingCommandKind::quit, Ctx::established, 9,
	    [](RingCommand &c) { c.reason = "Ping timed out"; });
	return t;
}

} // namespace

START_TEST(test_ring_format_then_parse_round_trips)
{
	for (const Trip &t : round_trips()) {
		RingFormatContext f;
		f.peer_minor = t.peer_minor;
		RingParseContext pc = make_ctx(t.ctx);
		if (t.ctx != Ctx::fresh)
			pc.peer_minor = t.peer_minor;
		std::string line = format_ring_command(t.cmd, f);
		auto r = parse_ring_line(line, pc);
		ck_assert_msg(r.ok(), "'%s' failed: %s", line.c_str(),
			      r.ok() ? "" : r.error().c_str());
		ck_assert_msg(*r == t.cmd, "'%s' did not round trip", line.c_str());
		ck_assert(line.find('\n') == std::string::npos);
	}
}
END_TEST

START_TEST(test_ring_handshake_byte_at_a_time)
{
	// The observed stock handshake (ring-protocol.md §3), as the acceptor sees it.
	const std::string input = "VERSION\tdirector\t1\t9\n"
				  "ME\t127.0.78.1\t9377\t1795343916\n"
				  "DIRECTOR\t127.0.78.1\t9377\n"
				  "DIRECTOR\t127.0.78.2\t9377\n"
				  "HOST-HAND-START\t0\n"
				  "HOST\t10.0.0.1\t100\t\tU0\t\n"
				  "HOST\t10.0.0.2\t100\t\tU0\t\n"
				  "HOST-HAND-END\t0\n"
				  "U\t3244357836\t10.0.0.1\t1795343917\n"
				  "OPTIONS\tconsistent-hashing\n"
				  "DONE\n"
				  "SYNC\t127.0.78.1\t9377\t2\t9\t1795343918\t1522526113\n"
				  "USER\t3244357836\t10.0.0.1\t1795343917\n"
				  "PING\t1795343918\t0\n";
	const RingCommandKind want[] = {
		RingCommandKind::version, RingCommandKind::me, RingCommandKind::director,
		RingCommandKind::director, RingCommandKind::host_hand_start,
		RingCommandKind::handshake_host, RingCommandKind::handshake_host,
		RingCommandKind::host_hand_end, RingCommandKind::handshake_user,
		RingCommandKind::options, RingCommandKind::done, RingCommandKind::sync,
		RingCommandKind::user, RingCommandKind::ping};
	RingParseContext ctx = RingParseContext::fresh(true);
	LineReader reader(ring_max_line_bytes);
	std::string line;
	size_t n = 0;
	for (char byte : input) {
		reader.feed(std::string_view(&byte, 1));
		while (reader.next_line(line) == LineReader::Status::line) {
			auto r = parse_ring_line(line, ctx);
			ck_assert_msg(r.ok(), "'%s': %s", line.c_str(), r.ok() ? "" : r.error().c_str());
			ck_assert(n < sizeof(want) / sizeof(want[0]));
			ck_assert(r->kind == want[n++]);
			// the state machine's part, reduced to what the parser needs
			switch (r->kind) {
			case RingCommandKind::version:
				ctx.version_received = true;
				ctx.peer_minor = r->minor_version;
				break;
			case RingCommandKind::me:
				ctx.me_received = true;
				break;
			case RingCommandKind::host_hand_start:
				ctx.in_host_list = true;
				break;
			case RingCommandKind::host_hand_end:
				ctx.in_host_list = false;
				break;
			case RingCommandKind::done:
				ctx.handshake_done = true;
				break;
			default:
				break;
			}
		}
	}
	ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
}
END_TEST

int main()
{
	Suite *s = suite_create("ring-protocol");
	TCase *tc = tcase_create("parse table");
	tcase_add_loop_test(tc, test_ring_table_row_parses_as_stock_does, 0,
			    sizeof(rows) / sizeof(rows[0]));
	tcase_add_test(tc, test_ring_oversized_line_is_refused_by_the_reader);
	tcase_add_test(tc, test_ring_parses_fields);
	tcase_add_test(tc, test_ring_seen_triple_is_available_for_malformed_body);
	suite_add_tcase(s, tc);
	tc = tcase_create("format");
	tcase_add_test(tc, test_ring_formats_observed_stock_lines);
	tcase_add_test(tc, test_ring_gates_match_the_doc);
	tcase_add_test(tc, test_ring_format_then_parse_round_trips);
	suite_add_tcase(s, tc);
	tc = tcase_create("stream");
	tcase_add_test(tc, test_ring_handshake_byte_at_a_time);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
