// Writes the director state file atomically without stalling the ioloop, and reads it back.
// Owns the directory fd and the temporary file; knows nothing of the file's format.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "adapter/handles.h"
#include "core/page-array.h"

struct event;

namespace director::adapter {

// Produces the bytes of one snapshot, piece by piece. Called only from the ioloop.
class StateChunkSource {
public:
	virtual ~StateChunkSource() = default;
	// Appends about `max_bytes` (more or less is fine) to `out`. Returns true when the
	// snapshot is complete with what it appended (the end of the file included).
	virtual bool next_chunk(std::string &out, size_t max_bytes) = 0;
};

// Where the state file lives: a directory opened before the chroot and the privilege drop
// (so every later operation is relative to it) and the file's name in it.
struct StateFileLocation {
	int dir_fd = -1;
	std::string name;
	std::string path; // for log lines only
};

struct StateWriteStats {
	uint64_t bytes = 0;
	unsigned steps = 0;        // ioloop turns the write took
	uint64_t max_step_usecs = 0; // the longest turn (encoding, write() and syncing)
	uint64_t total_usecs = 0;  // from start to rename, wall clock
	uint64_t sync_usecs = 0;   // the final fdatasync() + rename + directory fsync
};

// The bytes of a state file as read: one buffer whose pages are mapped when it is made
// (core/page-array.h), so a 12 MB file does not pay a page fault per 4 kB on its way in.
class StateFileBytes {
public:
	std::string_view view() const { return {buf_.get(), size_}; }

private:
	friend class StateFileWriter;
	core::PageArray<char> buf_;
	size_t size_ = 0;
};

// One write at a time: the snapshot goes to "<name>.tmp" in pieces of about
// `step_bytes` per ioloop turn. The closing fdatasync(), rename() over the old file and
// fsync() of the directory run on a short-lived thread (plain syscalls only, no
// lib-dovecot), which reports back through a pipe, so a slow disk never stalls the
// ioloop. Until the rename the previous file is untouched, so a director killed at
// any point keeps it.
class StateFileWriter {
public:
	// Takes ownership of location.dir_fd.
	StateFileWriter(struct event *event, StateFileLocation location);
	~StateFileWriter(); // an unfinished write is abandoned: its temp file is removed
	StateFileWriter(const StateFileWriter &) = delete;
	StateFileWriter &operator=(const StateFileWriter &) = delete;

	const std::string &path() const { return location_.path; }
	bool writing() const { return source_ != nullptr || sync_thread_.joinable(); }

	// Starts an incremental write. `done` runs after it finished or failed (failures
	// are logged here with the file name and the reason). false (and nothing started)
	// while another write is running.
	using DoneCallback = std::function<void(bool ok, const StateWriteStats &stats)>;
	bool start(std::unique_ptr<StateChunkSource> source, DoneCallback done);
	// Abandons a running write (its callback is not called).
	void abort();

	// Writes a whole snapshot now, blocking (the clean-shutdown write). Abandons a running
	// incremental write first. Logs failures; returns false on failure.
	bool write_now(StateChunkSource &source, StateWriteStats *stats_r = nullptr);

	// Renames the file to "<name><suffix>" (replacing an older one), so a file that
	// could not be used is kept for the operator. false if that failed.
	bool move_aside(const std::string &suffix) const;

	// Reads the whole file. 1 = read, 0 = there is none (a first start), -1 = failed
	// (error_r names the reason).
	int read(StateFileBytes &data_r, std::string &error_r) const;

	// Bytes per ioloop turn (about 21,000 users): 1-3 ms of encoding and write() on
	// the machine we measured (bench/state-bench). Starting writeback per piece with
	// sync_file_range() was tried and dropped: it blocked for up to 10 ms at times.
	size_t step_bytes = 256 * 1024;

private:
	bool open_temp(std::string &error_r);
	bool write_all(const std::string &data, std::string &error_r);
	bool finish_file(std::string &error_r);
	void step();
	void sync_done();
	void join_sync();
	void fail_write(const std::string &error);
	void discard_temp();

	struct event *event_;
	StateFileLocation location_;
	std::string temp_name_;
	int fd_ = -1;
	uint64_t offset_ = 0;
	std::unique_ptr<StateChunkSource> source_;
	DoneCallback done_;
	StateWriteStats stats_;
	uint64_t started_usecs_ = 0;
	std::string buf_;
	TimeoutHandle step_timer_;
	// The final sync in flight: its thread, the pipe it reports on, its result.
	std::thread sync_thread_;
	int sync_pipe_[2] = {-1, -1};
	IoHandle sync_io_;
	bool sync_ok_ = false;
	std::string sync_error_;
};

} // namespace director::adapter
