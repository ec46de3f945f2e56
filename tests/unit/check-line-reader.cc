// Check suite for LineReader: LF splitting, CR stripping, the stock line limit.
#include <check.h>

#include "check-main.h"

#include <string>
#include <vector>

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

// Feeds `input` in chunks of `chunk` bytes and collects lines until too_long.
std::vector<std::string> read_all(const std::string &input, size_t chunk, size_t max,
				  bool *too_long_r = nullptr)
{
	LineReader r(max);
	std::vector<std::string> lines;
	std::string line;
	bool too_long = false;
	for (size_t pos = 0; pos < input.size() && !too_long; pos += chunk) {
		r.feed(std::string_view(input).substr(pos, chunk));
		for (;;) {
			LineReader::Status st = r.next_line(line);
			if (st == LineReader::Status::line) {
				lines.push_back(line);
				continue;
			}
			too_long = st == LineReader::Status::too_long;
			break;
		}
	}
	if (too_long_r != nullptr)
		*too_long_r = too_long;
	return lines;
}

} // namespace

START_TEST(test_line_reader_splits_lines_in_any_chunking)
{
	const std::string input = "VERSION\tdirector\t1\t9\nME\t127.0.0.1\t9090\n\nDONE\npartial";
	const std::vector<std::string> want = {"VERSION\tdirector\t1\t9", "ME\t127.0.0.1\t9090",
					       "", "DONE"};
	for (size_t chunk = 1; chunk <= input.size(); chunk++) {
		bool too_long;
		ck_assert(read_all(input, chunk, 1024, &too_long) == want);
		ck_assert(!too_long);
	}
}
END_TEST

START_TEST(test_line_reader_strips_one_cr_before_lf)
{
	auto lines = read_all("a\r\nb\r\r\n\r\n", 1, 1024);
	ck_assert_uint_eq(lines.size(), 3);
	CK_STR_EQ(lines[0].c_str(), "a");
	ck_assert(lines[1] == "b\r");
	ck_assert(lines[2].empty());
}
END_TEST

START_TEST(test_line_reader_keeps_partial_line_buffered)
{
	LineReader r(1024);
	std::string line;
	r.feed("abc");
	ck_assert(r.next_line(line) == LineReader::Status::need_more);
	ck_assert_uint_eq(r.buffered_bytes(), 3);
	r.feed("\n");
	ck_assert(r.next_line(line) == LineReader::Status::line);
	CK_STR_EQ(line.c_str(), "abc");
	ck_assert_uint_eq(r.buffered_bytes(), 0);
}
END_TEST

START_TEST(test_line_reader_accepts_line_of_exactly_the_limit)
{
	// 1023 bytes + LF = 1024: fits stock's 1024-byte buffer.
	std::string input(1023, 'x');
	input += '\n';
	for (size_t chunk : {size_t(1), size_t(7), size_t(1024)}) {
		bool too_long;
		auto lines = read_all(input, chunk, 1024, &too_long);
		ck_assert(!too_long);
		ck_assert_uint_eq(lines.size(), 1);
		ck_assert_uint_eq(lines[0].size(), 1023);
	}
}
END_TEST

START_TEST(test_line_reader_reports_line_over_the_limit)
{
	std::string input(1024, 'x');
	input += "\nnext\n";
	for (size_t chunk : {size_t(1), size_t(100), input.size()}) {
		bool too_long;
		auto lines = read_all("ok\n" + input, chunk, 1024, &too_long);
		ck_assert(too_long);
		ck_assert_uint_eq(lines.size(), 1);
		CK_STR_EQ(lines[0].c_str(), "ok");
	}
}
END_TEST

START_TEST(test_line_reader_reports_too_long_before_lf_arrives)
{
	LineReader r(16);
	std::string line;
	r.feed(std::string(15, 'y'));
	ck_assert(r.next_line(line) == LineReader::Status::need_more);
	r.feed("y");
	ck_assert(r.next_line(line) == LineReader::Status::too_long);
	r.feed("\n");
	ck_assert(r.next_line(line) == LineReader::Status::too_long);
	ck_assert(r.failed());
}
END_TEST

START_TEST(test_line_reader_long_stream_of_short_lines_never_fails)
{
	std::string input;
	for (int i = 0; i < 5000; i++)
		input += "PING\t" + std::to_string(i) + "\t0\n";
	bool too_long;
	auto lines = read_all(input, 3, 32, &too_long);
	ck_assert(!too_long);
	ck_assert_uint_eq(lines.size(), 5000);
	CK_STR_EQ(lines[4999].c_str(), "PING\t4999\t0");
}
END_TEST

// Collects lines, with "<too long>" where skip_line mode dropped one.
std::vector<std::string> read_skipping(const std::string &input, size_t chunk,
				       LineReader *reader)
{
	std::vector<std::string> out;
	std::string line;
	for (size_t pos = 0; pos < input.size(); pos += chunk) {
		reader->feed(std::string_view(input).substr(pos, chunk));
		for (;;) {
			LineReader::Status st = reader->next_line(line);
			if (st == LineReader::Status::need_more)
				break;
			out.push_back(st == LineReader::Status::line ? line : "<too long>");
		}
	}
	return out;
}

START_TEST(test_line_reader_skip_mode_drops_only_the_overlong_line)
{
	// Any chunking: the overlong line is reported once, before or after its LF
	// arrived, and the lines around it come through unchanged.
	std::string input = "a\n" + std::string(3000, 'Y') + "\nb\r\nc\n" + std::string(16, 'Z') +
			    "\nd\n";
	for (size_t chunk : {size_t(1), size_t(7), size_t(1000), input.size()}) {
		LineReader r(16, LineReader::OnTooLong::skip_line);
		std::vector<std::string> got = read_skipping(input, chunk, &r);
		ck_assert_uint_eq(got.size(), 6);
		CK_STR_EQ(got[0], "a");
		CK_STR_EQ(got[1], "<too long>");
		CK_STR_EQ(got[2], "b");
		CK_STR_EQ(got[3], "c");
		CK_STR_EQ(got[4], "<too long>"); // 16 bytes + LF is over 16
		CK_STR_EQ(got[5], "d");
		ck_assert(!r.failed());
		ck_assert_uint_eq(r.buffered_bytes(), 0);
	}
}
END_TEST

START_TEST(test_line_reader_skip_mode_keeps_memory_bounded)
{
	// 1 MB without a LF is dropped as it arrives.
	LineReader r(1024, LineReader::OnTooLong::skip_line);
	std::string line;
	unsigned reported = 0;
	for (int i = 0; i < 1024; i++) {
		r.feed(std::string(1024, 'x'));
		while (r.next_line(line) == LineReader::Status::too_long)
			reported++;
		ck_assert_uint_le(r.buffered_bytes(), 1024);
	}
	ck_assert_uint_eq(reported, 1);
	r.feed("\nnext\n");
	ck_assert(r.next_line(line) == LineReader::Status::line);
	CK_STR_EQ(line, "next");
}
END_TEST

START_TEST(test_line_reader_fail_mode_stays_failed)
{
	LineReader r(8);
	std::string line;
	r.feed("0123456789\nok\n");
	ck_assert(r.next_line(line) == LineReader::Status::too_long);
	r.feed("more\n");
	ck_assert(r.next_line(line) == LineReader::Status::too_long);
	ck_assert(r.failed());
}
END_TEST

int main()
{
	Suite *s = suite_create("line-reader");
	TCase *tc = tcase_create("splitting");
	tcase_add_test(tc, test_line_reader_splits_lines_in_any_chunking);
	tcase_add_test(tc, test_line_reader_strips_one_cr_before_lf);
	tcase_add_test(tc, test_line_reader_keeps_partial_line_buffered);
	tcase_add_test(tc, test_line_reader_long_stream_of_short_lines_never_fails);
	suite_add_tcase(s, tc);
	tc = tcase_create("limit");
	tcase_add_test(tc, test_line_reader_accepts_line_of_exactly_the_limit);
	tcase_add_test(tc, test_line_reader_reports_line_over_the_limit);
	tcase_add_test(tc, test_line_reader_reports_too_long_before_lf_arrives);
	tcase_add_test(tc, test_line_reader_fail_mode_stays_failed);
	suite_add_tcase(s, tc);
	tc = tcase_create("skip_line");
	tcase_add_test(tc, test_line_reader_skip_mode_drops_only_the_overlong_line);
	tcase_add_test(tc, test_line_reader_skip_mode_keeps_memory_bounded);
	suite_add_tcase(s, tc);

	return run_suite(s);
}
