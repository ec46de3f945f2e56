// Stream: istream/ostream over an fd with an io watch.
#include "adapter/stream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "adapter/dovecot.h"
#include "adapter/tls.h"

extern "C" {
#include "iostream-ssl.h"
}

namespace director::adapter {

Stream::Stream(int fd, size_t max_input_bytes, Framing framing, size_t read_bytes)
	: fd_(fd), input_(i_stream_create_fd(fd, framing == Framing::raw
							 ? max_input_bytes
							 : std::max(max_input_bytes, read_bytes))),
	  output_(o_stream_create_fd(fd, SIZE_MAX))
{
	if (framing != Framing::raw) {
		lines_.emplace(max_input_bytes, framing == Framing::lines_skip_overlong
							? core::LineReader::OnTooLong::skip_line
							: core::LineReader::OnTooLong::fail);
	}
	o_stream_set_no_error_handling(output_, TRUE);
	net_set_nonblock(fd, TRUE);
}

Stream::~Stream()
{
	io_.reset();
	if (connect_io_ != nullptr)
		io_remove(&connect_io_);
	if (ssl_io_ != nullptr)
		ssl_iostream_destroy(&ssl_io_);
	i_stream_destroy(&input_);
	o_stream_destroy(&output_);
	if (fd_ != -1)
		i_close_fd(&fd_);
}

void Stream::watch(std::function<void()> callback)
{
	callback_ = std::move(callback);
	resume();
}

void Stream::pause()
{
	io_.reset();
}

void Stream::resume()
{
	// A TLS stream may hold decrypted input the fd does not show: watch
	// the stream itself.
	if (io_.active() || !callback_)
		return;
	if (ssl_io_ != nullptr)
		io_.read_istream(input_, callback_);
	else
		io_.read(fd_, callback_);
	// Input may already sit in a buffer (ours or the istream's): handle it
	// without waiting for the socket. A fd watch ignores the istream's
	// pending flag, so the io itself is marked.
	if (i_stream_get_data_size(input_) > 0 || (lines_ && lines_->buffered_bytes() > 0) ||
	    line_too_long_)
		io_.set_pending();
}

void Stream::feed_lines()
{
	size_t size;
	const unsigned char *data = i_stream_get_data(input_, &size);
	if (size == 0)
		return;
	lines_->feed(std::string_view(reinterpret_cast<const char *>(data), size));
	i_stream_skip(input_, size);
}

Stream::ReadResult Stream::read()
{
	if (line_too_long_)
		return ReadResult::read_full;
	ssize_t ret = i_stream_read(input_);
	if (lines_) {
		// The istream only carries bytes to the line reader, which
		// enforces the line limit: its buffer is emptied every time.
		feed_lines();
		if (ret == -2)
			ret = 1;
	}
	if (ret > 0)
		return ReadResult::data;
	if (ret == 0)
		return ReadResult::nothing;
	if (ret == -2)
		return ReadResult::read_full;
	return input_->stream_errno == 0 ? ReadResult::eof : ReadResult::error;
}

bool Stream::next_line(std::string_view &line_r)
{
	if (!lines_ || line_too_long_)
		return false;
	for (;;) {
		switch (lines_->next_line(line_)) {
		case core::LineReader::Status::line:
			line_r = line_;
			return true;
		case core::LineReader::Status::need_more:
			return false;
		case core::LineReader::Status::too_long:
			if (!lines_->failed()) {
				skipped_lines_++;
				continue;
			}
			// The lines before it were returned; the caller learns of it
			// from the next read(), which the io runs at once.
			line_too_long_ = true;
			if (io_.active())
				io_.set_pending();
			return false;
		}
	}
}

unsigned Stream::take_skipped_lines()
{
	unsigned n = skipped_lines_;
	skipped_lines_ = 0;
	return n;
}

std::string_view Stream::buffered() const
{
	size_t size;
	const unsigned char *data = i_stream_get_data(input_, &size);
	return std::string_view(reinterpret_cast<const char *>(data), size);
}

void Stream::skip(size_t n)
{
	i_stream_skip(input_, n);
}

void Stream::send(std::string_view data)
{
	o_stream_nsend(output_, data.data(), data.size());
}

void Stream::cork()
{
	o_stream_cork(output_);
}

void Stream::uncork()
{
	o_stream_uncork(output_);
}

void Stream::on_drained(size_t low_water_bytes, std::function<void()> callback)
{
	low_water_ = low_water_bytes;
	drained_ = std::move(callback);
	o_stream_set_flush_callback(output_, flush_trampoline, this);
	o_stream_set_flush_pending(output_, TRUE);
}

int Stream::flush_trampoline(Stream *self) noexcept
{
	int ret = o_stream_flush(self->output_);
	if (ret < 0)
		return 1;
	if (self->drained_ && o_stream_get_buffer_used_size(self->output_) <= self->low_water_) {
		std::function<void()> cb = std::move(self->drained_);
		self->drained_ = nullptr;
		run_noexcept("output drained", cb);
		return 1;
	}
	return ret;
}

void Stream::on_connected(std::function<void(const std::string &error)> callback)
{
	connected_ = std::move(callback);
	connect_io_ = io_add(fd_, IO_WRITE, connect_trampoline, this);
}

void Stream::connect_trampoline(Stream *self) noexcept
{
	io_remove(&self->connect_io_);
	int err = net_geterror(self->fd_);
	std::string error = err == 0 ? std::string() : std::string(strerror(err));
	std::function<void(const std::string &)> cb = std::move(self->connected_);
	self->connected_ = nullptr;
	run_noexcept("connect", [&]() { cb(error); });
}

bool Stream::start_tls_client(const TlsClientContext &ctx, const std::string &host,
			      std::string &error_r)
{
	const char *error;
#if DIRECTOR_DOVECOT_API == 23
	struct ssl_iostream_settings set;
	i_zero(&set);
	set.allow_invalid_cert = TRUE;
	int ret = io_stream_create_ssl_client(ctx.get(), host.c_str(), &set, &input_, &output_,
					      &ssl_io_, &error);
#else
	int ret = io_stream_create_ssl_client(ctx.get(), host.c_str(), nullptr,
					      SSL_IOSTREAM_FLAG_ALLOW_INVALID_CERT, &input_,
					      &output_, &ssl_io_, &error);
#endif
	if (ret < 0) {
		error_r = error;
		return false;
	}
	(void)ssl_iostream_handshake(ssl_io_);
	return true;
}

bool Stream::output_failed() const
{
	return output_->stream_errno != 0;
}

size_t Stream::output_buffered() const
{
	return o_stream_get_buffer_used_size(output_);
}

void Stream::flush()
{
	(void)o_stream_flush(output_);
}

std::string Stream::read_error() const
{
	if (input_->stream_errno == 0)
		return "EOF";
	return i_stream_get_error(input_);
}

uint64_t Stream::bytes_read() const
{
	// Bytes handed to the line reader were skipped in the istream, so
	// v_offset counts them.
	return input_->v_offset + i_stream_get_data_size(input_);
}

uint64_t Stream::bytes_sent() const
{
	return output_->offset;
}

} // namespace director::adapter
