// Check suite for adapter::Stream: line framing through core::LineReader,
// resuming with buffered input, output draining and corking. Both ends of a
// socketpair in one ioloop.
#include "adapter-test.h"

#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "adapter/stream.h"

using director::adapter::Stream;
using director::adapter::StreamCork;
using adapter_test::run_until;

namespace {

struct Pair {
	int ours = -1, peer = -1;
	Pair()
	{
		int fds[2];
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
		ours = fds[0];
		peer = fds[1];
	}
	~Pair()
	{
		if (peer != -1)
			close(peer);
	}
	void write_peer(const std::string &data)
	{
		ck_assert_int_eq(write(peer, data.data(), data.size()), ssize_t(data.size()));
	}
	void close_peer()
	{
		close(peer);
		peer = -1;
	}
};

// Reads lines until EOF, an overlong line or the deadline.
struct Collector {
	Stream stream;
	std::vector<std::string> lines;
	bool eof = false, too_long = false;
	Collector(int fd, size_t max, Stream::Framing framing = Stream::Framing::lines)
		: stream(fd, max, framing)
	{
		stream.watch([this]() { input(); });
	}
	void input()
	{
		Stream::ReadResult r = stream.read();
		if (r == Stream::ReadResult::read_full) {
			too_long = true;
			stream.pause();
			return;
		}
		std::string_view line;
		while (stream.next_line(line))
			lines.emplace_back(line);
		if (r == Stream::ReadResult::eof || r == Stream::ReadResult::error) {
			eof = true;
			stream.pause();
		}
	}
};

} // namespace

START_TEST(test_stream_splits_lines_strips_cr_and_drops_partial_last_line)
{
	Pair p;
	Collector c(p.ours, 1024);
	p.write_peer("a\nb\r\n\r\nc\rd\nlast");
	p.close_peer();
	ck_assert(run_until([&]() { return c.eof; }, 5000));
	ck_assert_uint_eq(c.lines.size(), 4);
	ck_assert_str_eq(c.lines[0].c_str(), "a");
	ck_assert_str_eq(c.lines[1].c_str(), "b");
	ck_assert_str_eq(c.lines[2].c_str(), "");
	ck_assert_str_eq(c.lines[3].c_str(), "c\rd");
}
END_TEST

START_TEST(test_stream_byte_at_a_time_gives_the_same_lines)
{
	Pair p;
	Collector c(p.ours, 16);
	std::string input = "PING\r\nUSER\t1\t2\n\nok\n";
	for (char ch : input) {
		p.write_peer(std::string(1, ch));
		size_t before = c.lines.size();
		(void)run_until([&]() { return c.lines.size() > before; }, 20);
	}
	p.close_peer();
	ck_assert(run_until([&]() { return c.eof; }, 5000));
	ck_assert_uint_eq(c.lines.size(), 4);
	ck_assert_str_eq(c.lines[0].c_str(), "PING");
	ck_assert_str_eq(c.lines[1].c_str(), "USER\t1\t2");
	ck_assert_str_eq(c.lines[3].c_str(), "ok");
	ck_assert(!c.too_long);
}
END_TEST

START_TEST(test_stream_overlong_line_fails_after_the_lines_before_it)
{
	// As stock: a line that does not fit (16 bytes with its LF) ends the
	// reading; the complete lines before it in the same read still count,
	// the ones after it do not.
	Pair p;
	Collector c(p.ours, 16);
	p.write_peer("ok\n" + std::string(40, 'x') + "\nlate\n");
	ck_assert(run_until([&]() { return c.too_long; }, 5000));
	ck_assert_uint_eq(c.lines.size(), 1);
	ck_assert_str_eq(c.lines[0].c_str(), "ok");
	// and it stays failed
	ck_assert(c.stream.read() == Stream::ReadResult::read_full);
	std::string_view line;
	ck_assert(!c.stream.next_line(line));
}
END_TEST

START_TEST(test_stream_line_of_exactly_the_limit_is_accepted)
{
	Pair p;
	Collector c(p.ours, 16);
	p.write_peer(std::string(15, 'y') + "\n");
	p.close_peer();
	ck_assert(run_until([&]() { return c.eof || c.too_long; }, 5000));
	ck_assert(!c.too_long);
	ck_assert_uint_eq(c.lines.size(), 1);
}
END_TEST

START_TEST(test_stream_skip_overlong_drops_only_that_line)
{
	Pair p;
	Collector c(p.ours, 16, Stream::Framing::lines_skip_overlong);
	p.write_peer("a\n" + std::string(3000, 'Y') + "\nb\n");
	p.close_peer();
	ck_assert(run_until([&]() { return c.eof; }, 5000));
	ck_assert(!c.too_long);
	ck_assert_uint_eq(c.lines.size(), 2);
	ck_assert_str_eq(c.lines[0].c_str(), "a");
	ck_assert_str_eq(c.lines[1].c_str(), "b");
	ck_assert_uint_eq(c.stream.take_skipped_lines(), 1);
	ck_assert_uint_eq(c.stream.take_skipped_lines(), 0);
}
END_TEST

START_TEST(test_stream_resume_handles_lines_already_buffered)
{
	// A reader that pauses after each line (as the admin connection does
	// while a command waits) must get the next buffered line on resume(),
	// without the peer sending anything more.
	Pair p;
	Stream s(p.ours, 1024);
	std::vector<std::string> lines;
	s.watch([&]() {
		(void)s.read();
		std::string_view line;
		if (s.next_line(line)) {
			lines.emplace_back(line);
			s.pause();
		}
	});
	p.write_peer("one\ntwo\nthree\n");
	ck_assert(run_until([&]() { return lines.size() == 1; }, 5000));
	for (size_t want = 2; want <= 3; want++) {
		s.resume();
		ck_assert_msg(run_until([&]() { return lines.size() == want; }, 2000),
			      "line %zu not handled after resume()", want);
	}
	ck_assert_str_eq(lines[2].c_str(), "three");
}
END_TEST

START_TEST(test_stream_raw_framing_hands_out_bytes)
{
	Pair p;
	Stream s(p.ours, 8, Stream::Framing::raw);
	std::string got;
	s.watch([&]() {
		(void)s.read();
		std::string_view data = s.buffered();
		got += data;
		s.skip(data.size());
	});
	p.write_peer("no\nline\rsplitting here");
	ck_assert(run_until([&]() { return got.size() == 22; }, 5000));
	ck_assert_str_eq(got.c_str(), "no\nline\rsplitting here");
}
END_TEST

START_TEST(test_stream_on_drained_fires_once_the_peer_reads)
{
	Pair p;
	Stream s(p.ours, 1024);
	std::string big(4 << 20, 'z');
	s.send(big);
	ck_assert_uint_gt(s.output_buffered(), 64 * 1024);
	bool drained = false;
	s.on_drained(64 * 1024, [&]() { drained = true; });
	ck_assert(!run_until([&]() { return drained; }, 200));
	// The peer reads everything.
	size_t total = 0;
	char buf[65536];
	net_set_nonblock(p.peer, TRUE);
	ck_assert(run_until(
		[&]() {
			ssize_t n;
			while ((n = ::read(p.peer, buf, sizeof(buf))) > 0)
				total += size_t(n);
			return drained && total == big.size();
		},
		10000));
	ck_assert(!s.output_failed());
}
END_TEST

START_TEST(test_stream_cork_guard_uncorks_when_the_callback_throws)
{
	// Output corked by a callback that then fails must still go out.
	Pair p;
	Stream s(p.ours, 1024);
	bool thrown = false;
	s.watch([&]() {
		(void)s.read();
		StreamCork cork(s);
		s.send("reply\n");
		thrown = true;
		throw std::runtime_error("handler failed");
	});
	p.write_peer("x\n");
	ck_assert(run_until([&]() { return thrown; }, 5000));
	s.pause();
	char buf[16];
	net_set_nonblock(p.peer, TRUE);
	ssize_t n = -1;
	ck_assert(run_until([&]() { return (n = ::read(p.peer, buf, sizeof(buf))) > 0; }, 2000));
	ck_assert_int_eq(n, 6);
}
END_TEST

START_TEST(test_stream_bytes_read_counts_what_the_lines_consumed)
{
	Pair p;
	Collector c(p.ours, 1024);
	p.write_peer("abc\ndef\ngh");
	ck_assert(run_until([&]() { return c.lines.size() == 2; }, 5000));
	ck_assert_uint_eq(c.stream.bytes_read(), 10);
}
END_TEST

int main()
{
	Suite *s = suite_create("stream");
	TCase *tc = adapter_test::tcase("lines");
	tcase_add_test(tc, test_stream_splits_lines_strips_cr_and_drops_partial_last_line);
	tcase_add_test(tc, test_stream_byte_at_a_time_gives_the_same_lines);
	tcase_add_test(tc, test_stream_overlong_line_fails_after_the_lines_before_it);
	tcase_add_test(tc, test_stream_line_of_exactly_the_limit_is_accepted);
	tcase_add_test(tc, test_stream_skip_overlong_drops_only_that_line);
	tcase_add_test(tc, test_stream_resume_handles_lines_already_buffered);
	tcase_add_test(tc, test_stream_bytes_read_counts_what_the_lines_consumed);
	suite_add_tcase(s, tc);
	tc = adapter_test::tcase("raw");
	tcase_add_test(tc, test_stream_raw_framing_hands_out_bytes);
	suite_add_tcase(s, tc);
	tc = adapter_test::tcase("output");
	tcase_add_test(tc, test_stream_on_drained_fires_once_the_peer_reads);
	tcase_add_test(tc, test_stream_cork_guard_uncorks_when_the_callback_throws);
	suite_add_tcase(s, tc);
	return adapter_test::run_suite(s);
}
