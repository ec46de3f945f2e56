// LineReader: LF line splitting with stock's input-buffer limit. No I/O here.
#include "line-reader.h"

namespace director::core {

LineReader::LineReader(size_t max_line_bytes, OnTooLong on_too_long)
	: max_(max_line_bytes == 0 ? 1 : max_line_bytes), skip_(on_too_long == OnTooLong::skip_line)
{
}

void LineReader::feed(std::string_view bytes)
{
	if (too_long_)
		return;
	if (discarding_) {
		size_t lf = bytes.find('\n');
		if (lf == std::string_view::npos)
			return;
		discarding_ = false;
		bytes.remove_prefix(lf + 1);
	}
	// Drop consumed bytes before growing, so the buffer stays near one line.
	if (pos_ > 0 && (pos_ >= 4096 || pos_ * 2 >= buf_.size())) {
		buf_.erase(0, pos_);
		scan_ -= pos_;
		pos_ = 0;
	}
	buf_.append(bytes.data(), bytes.size());
}

LineReader::Status LineReader::next_line(std::string &line_r)
{
	if (too_long_)
		return Status::too_long;
	size_t lf = buf_.find('\n', scan_);
	if (lf == std::string::npos) {
		scan_ = buf_.size();
		if (buf_.size() - pos_ >= max_) {
			if (skip_) {
				// The rest of this line is dropped by feed().
				pos_ = scan_ = buf_.size();
				discarding_ = true;
			} else {
				too_long_ = true;
			}
			return Status::too_long;
		}
		return Status::need_more;
	}
	if (lf - pos_ + 1 > max_) {
		if (skip_) {
			pos_ = scan_ = lf + 1;
		} else {
			too_long_ = true;
		}
		return Status::too_long;
	}
	size_t end = lf;
	if (end > pos_ && buf_[end - 1] == '\r')
		end--;
	line_r.assign(buf_, pos_, end - pos_);
	pos_ = lf + 1;
	scan_ = pos_;
	return Status::line;
}

} // namespace director::core
