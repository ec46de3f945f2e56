// LineReader: splits a byte stream into LF-terminated lines with a maximum line
// length, the way stock Dovecot's istream line reading does. No I/O here.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace director::core {

// The stock ring and admin connections read with a 1024-byte input buffer: a line
// including its LF must fit in it.
constexpr size_t ring_max_line_bytes = 1024;
constexpr size_t admin_max_line_bytes = 1024;
constexpr size_t notify_max_line_bytes = 1024;

// Incremental line splitter. Feed it bytes as they arrive (any chunking, down to one
// byte at a time) and pop complete lines. A line is returned without its LF and
// without one CR directly before the LF (stock strips it too). A line whose length
// including the LF exceeds the limit yields LineStatus::too_long as soon as that is
// certain; the reader then stays in that state (the connection must be dropped).
// Bytes after the last LF are kept until more input completes them; they are never
// returned as a line (stock does not return a partial last line at EOF either).
//
// With OnTooLong::skip_line an overlong line is reported (Status::too_long, once per
// line) and then dropped through its LF, and reading goes on with the next line;
// failed() stays false. Its bytes are discarded as they arrive, so memory stays
// bounded by the limit either way.
class LineReader {
public:
	enum class Status { line, need_more, too_long };
	enum class OnTooLong { fail, skip_line };

	// `max_line_bytes` counts the LF; must be at least 1.
	explicit LineReader(size_t max_line_bytes, OnTooLong on_too_long = OnTooLong::fail);

	// Appends received bytes.
	void feed(std::string_view bytes);

	// Pops the next complete line into `line_r` (Status::line), or reports that more
	// input is needed or that the current line is too long. `line_r` is only written
	// for Status::line.
	Status next_line(std::string &line_r);

	// Bytes received but not yet returned as lines.
	size_t buffered_bytes() const { return buf_.size() - pos_; }
	size_t max_line_bytes() const { return max_; }
	bool failed() const { return too_long_; }

private:
	std::string buf_;
	size_t pos_ = 0;  // start of the first unreturned byte
	size_t scan_ = 0; // no LF in [pos_, scan_)
	size_t max_;
	bool skip_;
	bool too_long_ = false;
	bool discarding_ = false; // skip_line: dropping input up to the next LF
};

} // namespace director::core
