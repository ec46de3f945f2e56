// StateKeeper: state file location, restore at startup, periodic and final writes.
#include "director/state-keeper.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "adapter/clock.h"
#include "adapter/dovecot.h"
#include "adapter/named-event.h"
#include "core/state-file.h"
#include "core/state-snapshot.h"
#include "director/service.h"

extern "C" {
#include "restrict-access.h"
}

namespace director {

namespace {

// The core's snapshot as the writer's chunk source.
class SnapshotSource : public adapter::StateChunkSource {
public:
	explicit SnapshotSource(std::unique_ptr<core::StateSnapshot> snap) : snap_(std::move(snap))
	{
	}
	bool next_chunk(std::string &out, size_t max_bytes) override
	{
		return snap_->next_chunk(out, max_bytes);
	}

private:
	std::unique_ptr<core::StateSnapshot> snap_;
};

} // namespace

std::optional<adapter::StateFileLocation>
state_file_open_location(const adapter::DirectorSettings &set)
{
	struct event *ev = adapter::director_root_event();
	if (set.state_file.empty())
		return std::nullopt;
	std::string full;
	if (set.state_file[0] == '/') {
		full = set.state_file;
	} else {
		if (set.state_dir.empty() || set.state_dir[0] != '/') {
			e_error(ev, "director_state_file=%s: state_dir=%s is not an absolute path; "
				    "no state file is kept",
				set.state_file.c_str(), set.state_dir.c_str());
			return std::nullopt;
		}
		std::string own_dir = set.state_dir + "/director";
		if (mkdir(own_dir.c_str(), 0700) == 0) {
			struct restrict_access_settings rset;
			restrict_access_get_env(&rset);
			if (chown(own_dir.c_str(), rset.uid, rset.gid) < 0) {
				e_error(ev, "director_state_file: chown(%s) failed: %m; "
					    "no state file is kept", own_dir.c_str());
				return std::nullopt;
			}
		} else if (errno != EEXIST) {
			e_error(ev, "director_state_file: mkdir(%s) failed: %m; "
				    "no state file is kept", own_dir.c_str());
			return std::nullopt;
		}
		full = own_dir + "/" + set.state_file;
	}
	size_t slash = full.rfind('/');
	adapter::StateFileLocation loc;
	std::string dir = slash == 0 ? "/" : full.substr(0, slash);
	loc.name = full.substr(slash + 1);
	loc.path = full;
	if (loc.name.empty() || loc.name == "." || loc.name == "..") {
		e_error(ev, "director_state_file=%s: not a file name; no state file is kept",
			set.state_file.c_str());
		return std::nullopt;
	}
	loc.dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (loc.dir_fd == -1) {
		e_error(ev, "director_state_file=%s: open(%s) failed: %m; no state file is kept",
			set.state_file.c_str(), dir.c_str());
		return std::nullopt;
	}
	return loc;
}

StateKeeper::StateKeeper(DirectorService &service, adapter::StateFileLocation location,
			 const std::array<uint8_t, 16> &identity, unsigned interval_secs)
	: service_(service), event_(service.event()), writer_(service.event(), std::move(location)),
	  identity_(identity), interval_secs_(interval_secs)
{
}

StateKeeper::~StateKeeper()
{
	timer_.reset();
	writer_.abort();
}

std::vector<core::RingDirectorConfig> StateKeeper::restore(core::Now now)
{
	int64_t started = adapter::mono_usecs_fresh();
	auto elapsed = [started]() { return uint64_t(adapter::mono_usecs_fresh() - started); };
	adapter::StateFileBytes data;
	std::string error;
	int ret = writer_.read(data, error);
	if (ret == 0) {
		adapter::send_named_event(event_, "director_state_restored", {{"result", "missing"}},
					  core::LogLevel::info,
					  "state file " + writer_.path() + ": none yet, starting empty");
		return {};
	}
	if (ret > 0) {
		auto file = core::StateFile::parse(data.view(), identity_);
		if (file.ok()) {
			core::StateRestore r = service_.core().restore_state(*file, now);
			int64_t age = now.wall - file->header().written_at;
			uint64_t usecs = elapsed();
			adapter::send_named_event(
				event_, "director_state_restored",
				{{"result", "ok"},
				 {"users", uint64_t(r.users)},
				 {"expired", uint64_t(r.expired)},
				 {"hosts", uint64_t(r.hosts)},
				 {"directors", uint64_t(r.directors.size())},
				 {"age_secs", uint64_t(age < 0 ? 0 : age)},
				 {"duration_usecs", usecs}},
				core::LogLevel::info,
				t_strdup_printf("state file %s: restored %zu users (%zu expired "
						"meanwhile), %zu hosts, %zu directors; written "
						"%lld secs ago, loaded in %llu ms",
						writer_.path().c_str(), r.users, r.expired, r.hosts,
						r.directors.size(), (long long)age,
						(unsigned long long)(usecs / 1000)));
			return r.directors;
		}
		error = file.error();
	}
	// Keep the evidence: the next write would replace it.
	std::string aside = writer_.path() + ".bad";
	std::string message = "state file " + writer_.path() + ": not used, starting empty: " + error;
	if (writer_.move_aside(".bad"))
		message += " (moved to " + aside + ")";
	adapter::send_named_event(event_, "director_state_restored",
				  {{"result", "refused"}, {"error", error}, {"duration_usecs", elapsed()}},
				  core::LogLevel::error, message);
	return {};
}

void StateKeeper::start()
{
	timer_.repeat(interval_secs_ * 1000, [this]() { write_periodic(); });
}

void StateKeeper::write_periodic()
{
	if (writer_.writing())
		return; // the previous one is still running (a very slow disk)
	auto snap = service_.core().state_snapshot(identity_, service_.now());
	writer_.start(std::make_unique<SnapshotSource>(std::move(snap)),
		      [this](bool ok, const adapter::StateWriteStats &stats) {
			      if (!ok)
				      return; // logged by the writer
			      written_event(stats, false);
		      });
}

void StateKeeper::write_final(core::Now now)
{
	timer_.reset();
	auto snap = service_.core().state_snapshot(identity_, now);
	SnapshotSource source(std::move(snap));
	adapter::StateWriteStats stats;
	if (writer_.write_now(source, &stats))
		written_event(stats, true);
}

void StateKeeper::written_event(const adapter::StateWriteStats &stats, bool at_shutdown)
{
	adapter::send_named_event(
		event_, "director_state_written",
		{{"bytes", uint64_t(stats.bytes)},
		 {"steps", uint64_t(stats.steps)},
		 {"duration_usecs", uint64_t(stats.total_usecs)},
		 {"max_step_usecs", uint64_t(stats.max_step_usecs)},
		 {"sync_usecs", uint64_t(stats.sync_usecs)},
		 {"shutdown", uint64_t(at_shutdown ? 1 : 0)}},
		core::LogLevel::debug,
		t_strdup_printf("state file %s: written%s, %llu bytes in %u steps, %llu ms "
				"(longest step %llu us, sync %llu ms)",
				writer_.path().c_str(), at_shutdown ? " at shutdown" : "",
				(unsigned long long)stats.bytes, stats.steps,
				(unsigned long long)stats.total_usecs / 1000,
				(unsigned long long)stats.max_step_usecs,
				(unsigned long long)stats.sync_usecs / 1000));
}

} // namespace director
