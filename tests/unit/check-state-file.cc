// Check suite for core/state-file: round trips, chunked encoding, the identity
// fingerprint, and every way a file is refused (truncated, corrupt, version, foreign).
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <check.h>

#include "check-main.h"

#include "state-file.h"

using namespace director::core;

namespace {

IpAddr ip(const char *text)
{
	return *IpAddr::parse(text);
}

StateIdentity sample_identity()
{
	StateIdentity id;
	id.mail_servers = {{ip("10.0.0.1"), ""}, {ip("10.0.0.2"), ""}, {ip("2001:db8::5"), "blue"}};
	id.director_servers = {{ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}};
	id.self = {ip("127.0.0.2"), 9090};
	id.username_hash = "%Lu";
	return id;
}

StateHeader sample_header()
{
	StateHeader h;
	h.identity = sample_identity().fingerprint();
	h.written_at = 1795343916;
	h.sync_seq = 17;
	h.last_seq = 4242;
	h.tags = {"", "blue"};
	StateHost a;
	a.ip = ip("10.0.0.1");
	a.vhost_count = 100;
	StateHost b;
	b.ip = ip("10.0.0.4");
	b.hostname = "mail4.example.net";
	b.vhost_count = 7;
	b.down = true;
	b.last_updown_change = 1795340000;
	StateHost c;
	c.ip = ip("2001:db8::5");
	c.tag = 1;
	c.vhost_count = 1000;
	h.hosts = {a, b, c};
	h.directors = {{ip("127.0.0.2"), 9090}, {ip("127.0.0.3"), 9090}, {ip("127.0.0.9"), 9191}};
	return h;
}

std::vector<StateUser> sample_users(size_t n)
{
	std::vector<StateUser> users;
	for (size_t i = 0; i < n; i++) {
		StateUser u;
		u.user_hash = uint32_t(i * 2654435761u) | 1;
		u.timestamp = uint32_t(1795343000 + i);
		u.host = uint16_t(i % 3);
		u.tag = u.host == 2 ? 1 : 0;
		u.weak = i % 7 == 0;
		users.push_back(u);
	}
	return users;
}

std::string parse_error(std::string_view data)
{
	auto r = StateFile::parse(data, sample_identity().fingerprint());
	ck_assert_msg(!r.ok(), "a bad file was accepted");
	return r.error();
}

void assert_contains(const std::string &s, const char *needle)
{
	ck_assert_msg(s.find(needle) != std::string::npos, "'%s' does not mention '%s'",
		      s.c_str(), needle);
}

} // namespace

START_TEST(test_state_file_round_trip_keeps_every_field)
{
	StateHeader h = sample_header();
	std::vector<StateUser> users = sample_users(1000);
	std::string data = encode_state_file(h, users);
	auto r = StateFile::parse(data, sample_identity().fingerprint());
	ck_assert_msg(r.ok(), "%s", r.ok() ? "" : r.error().c_str());
	const StateHeader &g = r->header();
	ck_assert(g.identity == h.identity);
	ck_assert_int_eq(g.written_at, h.written_at);
	ck_assert_uint_eq(g.sync_seq, 17);
	ck_assert_uint_eq(g.last_seq, 4242);
	ck_assert(g.tags == h.tags);
	ck_assert_uint_eq(g.hosts.size(), 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(g.hosts[i].ip == h.hosts[i].ip);
		ck_assert_str_eq(g.hosts[i].hostname.c_str(), h.hosts[i].hostname.c_str());
		ck_assert_uint_eq(g.hosts[i].tag, h.hosts[i].tag);
		ck_assert_uint_eq(g.hosts[i].vhost_count, h.hosts[i].vhost_count);
		ck_assert(g.hosts[i].down == h.hosts[i].down);
		ck_assert_int_eq(g.hosts[i].last_updown_change, h.hosts[i].last_updown_change);
	}
	ck_assert_uint_eq(g.directors.size(), 3);
	ck_assert(g.directors[2].ip == ip("127.0.0.9"));
	ck_assert_uint_eq(g.directors[2].port, 9191);
	ck_assert_uint_eq(r->user_count(), 1000);
	for (size_t i = 0; i < users.size(); i++) {
		StateUser u = r->user(i);
		ck_assert_uint_eq(u.user_hash, users[i].user_hash);
		ck_assert_uint_eq(u.timestamp, users[i].timestamp);
		ck_assert_uint_eq(u.host, users[i].host);
		ck_assert_uint_eq(u.tag, users[i].tag);
		ck_assert(u.weak == users[i].weak);
	}
}
END_TEST

START_TEST(test_state_file_empty_table_round_trips)
{
	StateHeader h;
	h.identity = sample_identity().fingerprint();
	std::string data = encode_state_file(h, {});
	auto r = StateFile::parse(data, sample_identity().fingerprint());
	ck_assert(r.ok());
	ck_assert_uint_eq(r->user_count(), 0);
	ck_assert_uint_eq(r->header().hosts.size(), 0);
}
END_TEST

START_TEST(test_state_file_chunked_encoding_equals_one_shot)
{
	StateHeader h = sample_header();
	std::vector<StateUser> users = sample_users(5000);
	StateEncoder enc(h);
	std::string chunked;
	for (size_t i = 0; i < users.size(); i++) {
		enc.add_user(users[i]);
		if (i % 333 == 0)
			chunked += enc.take();
	}
	chunked += enc.take();
	chunked += enc.take(); // nothing buffered: an empty chunk changes nothing
	chunked += enc.finish();
	ck_assert(chunked == encode_state_file(h, users));
}
END_TEST

START_TEST(test_state_file_crc32c_known_values)
{
	// The CRC-32C check value and an RFC 3720 vector (32 zero bytes).
	ck_assert_uint_eq(crc32c_update(0, "123456789", 9), 0xe3069283u);
	char zeros[32] = {};
	ck_assert_uint_eq(crc32c_update(0, zeros, sizeof(zeros)), 0x8a9136aau);
	// Continuing equals one pass, at every split point.
	const char *text = "The quick brown fox jumps over the lazy dog";
	size_t len = std::strlen(text);
	for (size_t cut = 0; cut <= len; cut++)
		ck_assert_uint_eq(crc32c_update(crc32c_update(0, text, cut), text + cut, len - cut),
				  crc32c_update(0, text, len));
}
END_TEST

START_TEST(test_state_file_identity_ignores_list_order_but_not_content)
{
	StateIdentity a = sample_identity();
	StateIdentity b = a;
	std::swap(b.mail_servers[0], b.mail_servers[2]);
	std::swap(b.director_servers[0], b.director_servers[1]);
	ck_assert(a.fingerprint() == b.fingerprint());

	StateIdentity c = a;
	c.mail_servers.push_back({ip("10.0.0.9"), ""});
	ck_assert(a.fingerprint() != c.fingerprint());
	StateIdentity d = a;
	d.mail_servers[2].tag = "green";
	ck_assert(a.fingerprint() != d.fingerprint());
	StateIdentity e = a;
	e.director_servers[1].port = 9091;
	ck_assert(a.fingerprint() != e.fingerprint());
	StateIdentity f = a;
	f.self = {ip("127.0.0.3"), 9090};
	ck_assert(a.fingerprint() != f.fingerprint());
	StateIdentity g = a;
	g.username_hash = "%u";
	ck_assert(a.fingerprint() != g.fingerprint());
}
END_TEST

START_TEST(test_state_file_refuses_foreign_identity)
{
	std::string data = encode_state_file(sample_header(), sample_users(10));
	StateIdentity other = sample_identity();
	other.mail_servers.pop_back();
	auto r = StateFile::parse(data, other.fingerprint());
	ck_assert(!r.ok());
	assert_contains(r.error(), "another configuration");
}
END_TEST

START_TEST(test_state_file_refuses_every_truncation)
{
	std::string data = encode_state_file(sample_header(), sample_users(50));
	for (size_t len = 0; len < data.size(); len++) {
		std::string err = parse_error(std::string_view(data).substr(0, len));
		ck_assert_msg(!err.empty(), "no reason at length %zu", len);
	}
	assert_contains(parse_error(""), "empty");
	assert_contains(parse_error(std::string_view(data).substr(0, 20)), "truncated");
	assert_contains(parse_error(std::string_view(data).substr(0, data.size() - 1)),
			"truncated");
	// A whole user record missing, with the trailer intact: the count disagrees.
	std::string cut = data;
	size_t trailer = cut.size() - 20;
	cut.erase(trailer - state_user_record_size, state_user_record_size);
	assert_contains(parse_error(cut), "truncated or corrupt");
}
END_TEST

START_TEST(test_state_file_refuses_every_flipped_byte)
{
	std::string data = encode_state_file(sample_header(), sample_users(20));
	for (size_t i = 0; i < data.size(); i++) {
		std::string bad = data;
		bad[i] = char(bad[i] ^ 0x5a);
		std::string err = parse_error(bad);
		ck_assert_msg(!err.empty(), "byte %zu", i);
	}
	std::string bad = data;
	bad[data.size() / 2] ^= 1;
	assert_contains(parse_error(bad), "checksum mismatch");
}
END_TEST

START_TEST(test_state_file_refuses_bad_magic_and_version)
{
	std::string data = encode_state_file(sample_header(), sample_users(3));
	std::string bad = data;
	bad[0] = 'X';
	assert_contains(parse_error(bad), "not a director state file");
	assert_contains(parse_error("hello, this is some text file that is long enough"),
			"not a director state file");
	bad = data;
	bad[8] = 2; // version 2
	assert_contains(parse_error(bad), "unsupported version 2");
}
END_TEST

// A record whose checksum is right but whose host index is outside the host list: the
// parser refuses the whole file rather than loading the records before it.
START_TEST(test_state_file_refuses_out_of_range_record_with_valid_checksum)
{
	StateHeader h = sample_header();
	std::vector<StateUser> users = sample_users(10);
	std::string data = encode_state_file(h, users);
	size_t header_len = data.size() - 20 - 10 * state_user_record_size;
	struct Patch {
		size_t offset;
		uint8_t value;
		const char *reason;
	} patches[] = {
		{8, 3, "out of range"},    // host 3 of 3 hosts
		{10, 2, "out of range"},   // tag 2 of 2 tags
		{11, 0x20, "out of range"}, // an unknown flag
	};
	for (const Patch &p : patches) {
		std::string bad = data;
		bad[header_len + 5 * state_user_record_size + p.offset] = char(p.value);
		uint32_t crc = crc32c_update(0, bad.data(), bad.size() - 4);
		for (int i = 0; i < 4; i++)
			bad[bad.size() - 4 + i] = char((crc >> (8 * i)) & 0xff);
		std::string err = parse_error(bad);
		assert_contains(err, p.reason);
		assert_contains(err, "record 5");
	}
}
END_TEST

int main()
{
	Suite *s = suite_create("state-file");
	TCase *tc = tcase_create("format");
	tcase_add_test(tc, test_state_file_round_trip_keeps_every_field);
	tcase_add_test(tc, test_state_file_empty_table_round_trips);
	tcase_add_test(tc, test_state_file_chunked_encoding_equals_one_shot);
	tcase_add_test(tc, test_state_file_crc32c_known_values);
	suite_add_tcase(s, tc);
	tc = tcase_create("identity");
	tcase_add_test(tc, test_state_file_identity_ignores_list_order_but_not_content);
	tcase_add_test(tc, test_state_file_refuses_foreign_identity);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad files");
	tcase_add_test(tc, test_state_file_refuses_every_truncation);
	tcase_add_test(tc, test_state_file_refuses_every_flipped_byte);
	tcase_add_test(tc, test_state_file_refuses_bad_magic_and_version);
	tcase_add_test(tc, test_state_file_refuses_out_of_range_record_with_valid_checksum);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
