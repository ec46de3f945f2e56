// libFuzzer target: LineReader fed in arbitrary chunkings. The first byte picks the
// line limit (bits 0-2) and the mode for an overlong line (bit 3: fail as the ring,
// admin and auth connections use it, or skip_line as proxy-notify does), the next
// bytes (up to the first 0xff) the chunk sizes, the rest is the stream. The lines
// popped, the overlong lines reported, and whether the reader fails, must match a
// reference split of the whole stream, whatever the chunking.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "line-reader.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, size_t index)
{
	fprintf(stderr, "fuzz-line-reader: %s (line %zu)\n", what, index);
	abort();
}

// What a skip_line reader reports in place of a dropped line.
const std::string skipped_marker("\xff<skipped>", 10);

struct Expected {
	std::vector<std::string> lines; // skip_line: skipped_marker for each dropped line
	bool too_long = false;		// fail mode: the reader failed
	size_t tail = 0; // bytes after the last LF, when not too long (fail) or not dropped
};

Expected reference_split(std::string_view stream, size_t max, bool skip)
{
	Expected e;
	size_t pos = 0;
	for (;;) {
		size_t lf = stream.find('\n', pos);
		if (lf == std::string_view::npos) {
			e.tail = stream.size() - pos;
			if (e.tail >= max) {
				if (skip) {
					e.lines.push_back(skipped_marker);
					e.tail = 0;
				} else {
					e.too_long = true;
				}
			}
			return e;
		}
		if (lf - pos + 1 > max) {
			if (!skip) {
				e.too_long = true;
				return e;
			}
			e.lines.push_back(skipped_marker);
			pos = lf + 1;
			continue;
		}
		size_t end = lf;
		if (end > pos && stream[end - 1] == '\r')
			end--;
		e.lines.emplace_back(stream.substr(pos, end - pos));
		pos = lf + 1;
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const size_t limits[] = {1, 2, 3, 5, 8, 16, 64, 1024};
	size_t max = limits[data[0] & 7];
	bool skip = (data[0] & 8) != 0;
	size_t i = 1;
	std::vector<size_t> chunks;
	while (i < size && data[i] != 0xff && chunks.size() < 32)
		chunks.push_back(data[i++] % 64);
	if (i < size && data[i] == 0xff)
		i++;
	bool all_zero = true;
	for (size_t c : chunks)
		all_zero &= c == 0;
	if (!chunks.empty() && all_zero)
		chunks.push_back(1); // keep making progress
	std::string_view stream(reinterpret_cast<const char *>(data) + i, size - i);
	Expected want = reference_split(stream, max, skip);

	LineReader reader(max, skip ? LineReader::OnTooLong::skip_line : LineReader::OnTooLong::fail);
	std::vector<std::string> got;
	bool too_long = false;
	size_t pos = 0, chunk = 0;
	auto drain = [&]() {
		std::string line;
		for (;;) {
			LineReader::Status st = reader.next_line(line);
			if (st == LineReader::Status::line) {
				if (too_long)
					fail("line after too_long", got.size());
				got.push_back(line);
				continue;
			}
			if (st == LineReader::Status::too_long && skip) {
				if (reader.failed())
					fail("skip_line reader failed", got.size());
				got.push_back(skipped_marker);
				continue;
			}
			if (st == LineReader::Status::too_long) {
				too_long = true;
				if (!reader.failed())
					fail("too_long but not failed()", got.size());
			} else if (too_long) {
				fail("need_more after too_long", got.size());
			}
			return;
		}
	};
	while (pos < stream.size()) {
		// A zero-sized chunk feeds nothing, which must be harmless too.
		size_t n = chunks.empty() ? stream.size() : chunks[chunk++ % chunks.size()];
		if (n > stream.size() - pos)
			n = stream.size() - pos;
		reader.feed(stream.substr(pos, n));
		pos += n;
		drain();
		if (chunks.empty())
			break;
	}
	drain();

	if (too_long != want.too_long)
		fail(too_long ? "too_long unexpectedly" : "too_long expected", got.size());
	// Every line before an overlong one is complete before the overlong one is
	// certain, so the reader returns exactly the reference lines in both cases.
	if (got.size() != want.lines.size())
		fail("line count differs", got.size());
	for (size_t k = 0; k < got.size(); k++) {
		if (got[k] != want.lines[k])
			fail("line differs", k);
	}
	if (!want.too_long && reader.buffered_bytes() != want.tail)
		fail("buffered_bytes differs from the unterminated tail", got.size());
	return 0;
}
