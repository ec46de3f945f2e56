// StateFileWriter: temp file, chunked writes across ioloop turns, fdatasync, rename,
// directory fsync. Plain POSIX calls relative to a directory fd opened before the chroot.
#include "adapter/state-writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

#include "adapter/clock.h"
#include "adapter/dovecot.h"

namespace director::adapter {

namespace {

std::string errno_text(const char *what)
{
	return std::string(what) + " failed: " + std::strerror(errno);
}

// Files larger than this are refused before reading them whole (about 89 M users).
constexpr uint64_t max_state_file_bytes = uint64_t(1) << 30;

} // namespace

StateFileWriter::StateFileWriter(struct event *event, StateFileLocation location)
	: event_(event), location_(std::move(location)), temp_name_(location_.name + ".tmp")
{
}

StateFileWriter::~StateFileWriter()
{
	abort();
	if (location_.dir_fd != -1)
		::close(location_.dir_fd);
}

void StateFileWriter::discard_temp()
{
	if (fd_ != -1) {
		::close(fd_);
		fd_ = -1;
		(void)unlinkat(location_.dir_fd, temp_name_.c_str(), 0);
	}
}

// Waits for a sync thread (it only makes syscalls, so it ends on its own).
void StateFileWriter::join_sync()
{
	if (!sync_thread_.joinable())
		return;
	sync_thread_.join();
	sync_io_.reset();
	::close(sync_pipe_[0]);
	::close(sync_pipe_[1]);
	sync_pipe_[0] = sync_pipe_[1] = -1;
}

void StateFileWriter::abort()
{
	join_sync();
	step_timer_.reset();
	source_.reset();
	done_ = nullptr;
	discard_temp();
}

bool StateFileWriter::open_temp(std::string &error_r)
{
	fd_ = openat(location_.dir_fd, temp_name_.c_str(),
		     O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd_ == -1) {
		error_r = errno_text("open(.tmp)");
		return false;
	}
	offset_ = 0;
	stats_ = StateWriteStats();
	started_usecs_ = uint64_t(mono_usecs_fresh());
	return true;
}

bool StateFileWriter::write_all(const std::string &data, std::string &error_r)
{
	size_t done = 0;
	while (done < data.size()) {
		ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error_r = errno_text("write()");
			return false;
		}
		done += size_t(n);
	}
	offset_ += data.size();
	stats_.bytes += data.size();
	return true;
}

bool StateFileWriter::finish_file(std::string &error_r)
{
	uint64_t sync_start = uint64_t(mono_usecs_fresh());
	if (fdatasync(fd_) < 0) {
		error_r = errno_text("fdatasync()");
		return false;
	}
	if (::close(fd_) < 0) {
		fd_ = -1;
		(void)unlinkat(location_.dir_fd, temp_name_.c_str(), 0);
		error_r = errno_text("close()");
		return false;
	}
	fd_ = -1;
	if (renameat(location_.dir_fd, temp_name_.c_str(), location_.dir_fd,
		     location_.name.c_str()) < 0) {
		error_r = errno_text("rename()");
		(void)unlinkat(location_.dir_fd, temp_name_.c_str(), 0);
		return false;
	}
	// The rename itself is durable only once the directory is.
	if (fsync(location_.dir_fd) < 0) {
		error_r = errno_text("fsync(directory)");
		return false;
	}
	uint64_t end = uint64_t(mono_usecs_fresh());
	stats_.sync_usecs = end - sync_start;
	stats_.total_usecs = end - started_usecs_;
	return true;
}

void StateFileWriter::fail_write(const std::string &error)
{
	e_error(event_, "state file %s: writing failed, the previous file is kept: %s",
		location_.path.c_str(), error.c_str());
	DoneCallback done = std::move(done_);
	abort();
	if (done)
		done(false, stats_);
}

bool StateFileWriter::start(std::unique_ptr<StateChunkSource> source, DoneCallback done)
{
	if (writing())
		return false;
	std::string error;
	if (!open_temp(error)) {
		e_error(event_, "state file %s: %s", location_.path.c_str(), error.c_str());
		if (done)
			done(false, stats_);
		return true;
	}
	source_ = std::move(source);
	done_ = std::move(done);
	step_timer_.once(0, [this]() { step(); });
	return true;
}

// One ioloop turn: about step_bytes of snapshot, written and handed to writeback.
void StateFileWriter::step()
{
	uint64_t t0 = uint64_t(mono_usecs_fresh());
	buf_.clear();
	bool last = source_->next_chunk(buf_, step_bytes);
	std::string error;
	if (!write_all(buf_, error)) {
		fail_write(error);
		return;
	}
	stats_.steps++;
	uint64_t took = uint64_t(mono_usecs_fresh()) - t0;
	if (took > stats_.max_step_usecs)
		stats_.max_step_usecs = took;
	if (!last) {
		step_timer_.once(0, [this]() { step(); });
		return;
	}
	source_.reset();
	if (pipe2(sync_pipe_, O_CLOEXEC) < 0) {
		fail_write(errno_text("pipe()"));
		return;
	}
	sync_io_.read(sync_pipe_[0], [this]() { sync_done(); });
	try {
		sync_thread_ = std::thread([this]() {
			std::string error;
			sync_ok_ = finish_file(error);
			sync_error_ = error;
			char c = 1;
			while (::write(sync_pipe_[1], &c, 1) < 0 && errno == EINTR) {
			}
		});
	} catch (const std::system_error &e) {
		sync_io_.reset();
		::close(sync_pipe_[0]);
		::close(sync_pipe_[1]);
		sync_pipe_[0] = sync_pipe_[1] = -1;
		fail_write(std::string("starting the sync thread failed: ") + e.what());
	}
}

// The sync thread finished (its pipe became readable).
void StateFileWriter::sync_done()
{
	join_sync();
	if (!sync_ok_) {
		discard_temp();
		fail_write(sync_error_);
		return;
	}
	DoneCallback done = std::move(done_);
	done_ = nullptr;
	if (done)
		done(true, stats_);
}

bool StateFileWriter::write_now(StateChunkSource &source, StateWriteStats *stats_r)
{
	abort();
	std::string error;
	bool ok = open_temp(error);
	for (bool last = false; ok && !last;) {
		uint64_t t0 = uint64_t(mono_usecs_fresh());
		buf_.clear();
		last = source.next_chunk(buf_, step_bytes);
		ok = write_all(buf_, error);
		stats_.steps++;
		uint64_t took = uint64_t(mono_usecs_fresh()) - t0;
		if (took > stats_.max_step_usecs)
			stats_.max_step_usecs = took;
	}
	if (ok)
		ok = finish_file(error);
	if (!ok) {
		discard_temp();
		e_error(event_, "state file %s: writing failed, the previous file is kept: %s",
			location_.path.c_str(), error.c_str());
	}
	if (stats_r != nullptr)
		*stats_r = stats_;
	return ok;
}

bool StateFileWriter::move_aside(const std::string &suffix) const
{
	std::string to = location_.name + suffix;
	return renameat(location_.dir_fd, location_.name.c_str(), location_.dir_fd,
			to.c_str()) == 0;
}

int StateFileWriter::read(StateFileBytes &data_r, std::string &error_r) const
{
	data_r = StateFileBytes();
	int fd = openat(location_.dir_fd, location_.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return 0;
		error_r = errno_text("open()");
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		error_r = errno_text("fstat()");
		::close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		error_r = "not a regular file";
		::close(fd);
		return -1;
	}
	if (uint64_t(st.st_size) > max_state_file_bytes) {
		error_r = "too large (" + std::to_string(st.st_size) + " bytes)";
		::close(fd);
		return -1;
	}
	auto size = size_t(st.st_size);
	data_r.buf_ = core::PageArray<char>(size);
	size_t got = 0;
	while (got < size) {
		ssize_t n = ::read(fd, data_r.buf_.get() + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_r = errno_text("read()");
			::close(fd);
			return -1;
		}
		if (n == 0)
			break; // shrank meanwhile: the parser reports it as truncated
		got += size_t(n);
	}
	data_r.size_ = got;
	::close(fd);
	return 1;
}

} // namespace director::adapter
