// StateKeeper: the director's state file. Opens its directory before the chroot, loads
// it into the core before the ring starts, writes a snapshot every
// director_state_interval (in pieces, see adapter/state-writer.h) and once more, whole,
// at a clean shutdown. Never fatal: a bad file is logged, moved aside, and the director
// starts empty.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapter/director-settings.h"
#include "adapter/handles.h"
#include "adapter/state-writer.h"
#include "core/director.h"

struct event;

namespace director {

class DirectorService;

// Where director_state_file points, resolved and opened while still root and not yet
// chrooted: a relative name lives in "<state_dir>/director/", a directory made here
// for the service user (who cannot write state_dir itself). nullopt when the setting
// is empty or the directory cannot be opened (logged).
std::optional<adapter::StateFileLocation>
state_file_open_location(const adapter::DirectorSettings &set);

class StateKeeper {
public:
	StateKeeper(DirectorService &service, adapter::StateFileLocation location,
		    const std::array<uint8_t, 16> &identity, unsigned interval_secs);
	~StateKeeper();

	// Loads the file into the core and logs one line (users, hosts, age, file). Run
	// before the ring starts. Returns the ring's director list from the file (empty
	// when nothing was restored).
	std::vector<core::RingDirectorConfig> restore(core::Now now);
	// Starts the periodic writes.
	void start();
	// The clean-shutdown write: everything now, after the ring was told we go.
	void write_final(core::Now now);

private:
	void write_periodic();
	// director_state_written, with the write's figures.
	void written_event(const adapter::StateWriteStats &stats, bool at_shutdown);

	DirectorService &service_;
	struct event *event_;
	adapter::StateFileWriter writer_;
	std::array<uint8_t, 16> identity_;
	unsigned interval_secs_;
	adapter::TimeoutHandle timer_;
};

} // namespace director
