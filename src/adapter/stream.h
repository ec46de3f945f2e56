// A socket (or FIFO) with Dovecot's istream/ostream and a read watch: the
// transport every director connection uses. Owns the fd. Not copyable.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "adapter/handles.h"

struct istream;
struct ostream;
struct ssl_iostream;

namespace director::adapter {

class Stream {
public:
	// Takes ownership of `fd`. Input is buffered up to max_input_bytes;
	// a longer line makes read() return read_full.
	Stream(int fd, size_t max_input_bytes);
	~Stream();
	Stream(const Stream &) = delete;
	Stream &operator=(const Stream &) = delete;

	// Calls `callback` whenever input is readable, until pause().
	void watch(std::function<void()> callback);
	void pause();
	void resume();
	bool paused() const { return !io_.active(); }

	enum class ReadResult { data, nothing, eof, read_full, error };
	// Reads what the socket has into the buffer.
	ReadResult read();
	// The next complete LF-terminated line (without LF; a trailing CR is
	// kept), or false when none is buffered.
	bool next_line(std::string_view &line_r);
	// Everything buffered, and dropping the first `n` bytes of it.
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

	int fd_;
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

} // namespace director::adapter
