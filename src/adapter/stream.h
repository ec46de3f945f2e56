// A socket (or FIFO) with Dovecot's istream/ostream and a read watch: the
// transport every director connection uses. Owns the fd. Not copyable.
// Lines are split by core::LineReader (the tested and fuzzed splitter), not
// by the istream.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "adapter/handles.h"
#include "core/line-reader.h"

struct istream;
struct ostream;
struct ssl_iostream;

namespace director::adapter {

class Stream {
public:
	// How input is framed. lines: LF-terminated lines of at most
	// max_input_bytes including the LF (one CR before the LF is dropped, a
	// partial last line at EOF is never returned, as stock); a longer line
	// makes read() return read_full, after the lines before it were
	// returned. lines_skip_overlong: a longer line is dropped and counted
	// (take_skipped_lines()), reading goes on. raw: buffered()/skip() only,
	// with at most max_input_bytes buffered.
	enum class Framing { lines, lines_skip_overlong, raw };

	// Takes ownership of `fd`. `read_bytes` (framed streams only): the most
	// one read() takes, when more than max_input_bytes; a ring connection
	// that receives a million users reads them 64 KiB at a time instead of
	// one line limit (1 KiB) at a time.
	Stream(int fd, size_t max_input_bytes, Framing framing = Framing::lines,
	       size_t read_bytes = 0);
	~Stream();
	Stream(const Stream &) = delete;
	Stream &operator=(const Stream &) = delete;

	// Calls `callback` whenever input is readable, until pause().
	void watch(std::function<void()> callback);
	void pause();
	void resume();
	bool paused() const { return !io_.active(); }

	enum class ReadResult { data, nothing, eof, read_full, error };
	// Reads what the socket has into the buffer. read_full: a line was too
	// long (Framing::lines; every later call says so too) or the raw
	// buffer is full.
	ReadResult read();
	// The next complete line (without CR LF), or false when none is
	// buffered or the line after the last one returned is too long. The
	// view lives until the next call on this Stream.
	bool next_line(std::string_view &line_r);
	// lines_skip_overlong: how many lines were dropped since the last call.
	unsigned take_skipped_lines();
	// Framing::raw: everything buffered, and dropping the first `n` bytes.
	std::string_view buffered() const;
	void skip(size_t n);

	// Queues output; errors surface as output_failed().
	void send(std::string_view data);
	// Collects output into one write until uncork().
	void cork();
	void uncork();
	// Calls `callback` once the queued output has shrunk below
	// `low_water_bytes` (after being written out), then forgets it.
	void on_drained(size_t low_water_bytes, std::function<void()> callback);
	// Calls `callback` once a non-blocking connect() finished (the socket
	// became writable); `error_r` is empty on success.
	void on_connected(std::function<void(const std::string &error)> callback);
	// Turns a connected client stream into TLS (handshake with the next
	// read or write; certificates as the context says). Call before
	// watch(). false with error_r set on failure.
	bool start_tls_client(const class TlsClientContext &ctx, const std::string &host,
			      std::string &error_r);
	bool output_failed() const;
	size_t output_buffered() const;
	void flush();

	// Why the last read failed ("EOF", the errno text, ...).
	std::string read_error() const;
	uint64_t bytes_read() const;
	uint64_t bytes_sent() const;
	int fd() const { return fd_; }

private:
	static int flush_trampoline(Stream *self) noexcept;
	static void connect_trampoline(Stream *self) noexcept;
	// Moves what the istream buffered into the line reader.
	void feed_lines();

	int fd_;
	std::optional<core::LineReader> lines_; // unless Framing::raw
	std::string line_;			// the line next_line() returned last
	bool line_too_long_ = false;		// Framing::lines: the reader failed
	unsigned skipped_lines_ = 0;
	struct istream *input_;
	struct ostream *output_;
	struct ssl_iostream *ssl_io_ = nullptr;
	IoHandle io_;
	std::function<void()> callback_;
	size_t low_water_ = 0;
	std::function<void()> drained_;
	struct io *connect_io_ = nullptr;
	std::function<void(const std::string &)> connected_;
};

// Corks a stream for a scope and uncorks it on every way out, an exception
// included, so a failed callback cannot leave output corked for good.
class StreamCork {
public:
	explicit StreamCork(Stream &stream) : stream_(stream) { stream_.cork(); }
	~StreamCork() { stream_.uncork(); }
	StreamCork(const StreamCork &) = delete;
	StreamCork &operator=(const StreamCork &) = delete;

private:
	Stream &stream_;
};

} // namespace director::adapter
