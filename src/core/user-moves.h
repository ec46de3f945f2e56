// UserMoves: user moves and kicks. A move kills the user's connections everywhere
// (kill states travelling round the ring), runs the flush program, then waits
// director_user_kick_delay; kicks are ipc commands counted against
// director_max_parallel_kicks; reset-users jobs move users host by host. Reaches the
// ring only through RingPort. No I/O and no clock here.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "director-types.h"
#include "host-list.h"
#include "ring-port.h"
#include "user-table.h"

namespace director::core {

class UserMoves {
public:
	// What the moves need from the director that owns them.
	class Owner {
	public:
		virtual ~Owner() = default;
		// A move ended: delayed lookups of that user may be answered now.
		virtual void moves_ended(Now now, Effects &fx) = 0;
		// Forget every user of `host` and tell the ring (HOST-FLUSH).
		virtual void flush_host(HostId host, Now now, Effects &fx) = 0;
	};

	UserMoves(const DirectorConfig &config, LogSink &log, UserTable &users, HostList &hosts,
		  RingPort &ring, Owner &owner);

	static uint64_t user_key(uint32_t hash, TagId tag) { return uint64_t(tag) << 32 | hash; }
	bool moving(uint32_t hash, TagId tag) const { return kills_.count(user_key(hash, tag)) != 0; }
	size_t users_moving() const { return kills_.size(); }
	size_t users_kicking() const { return kicking_; }

	// Moves a user to `host` (USER-MOVE from `src` with `origin`, or ours when src is
	// the ring's self and origin is nullopt) and kills its old connections.
	// `reason` is only reported (Effects::user_moves).
	void move(const DirectorHost *src, std::optional<RingOrigin> origin, uint32_t hash,
		  HostId host, Effects::MoveReason reason, Now now, Effects &fx);
	// Kills u's connections (forced: even when it stays on its host).
	void kill(UserIndex u, std::optional<HostId> old_host, bool forced, Now now, Effects &fx);
	// USER-KILLED and USER-KILLED-EVERYWHERE from the ring.
	void user_killed(uint32_t hash, Now now, Effects &fx);
	void user_killed_everywhere(const DirectorHost *src, const RingOrigin &origin, uint32_t hash,
				    Now now, Effects &fx);
	// Kicks a user hash from every host but `except` (two directors disagreed), here
	// and around the ring.
	void kick_hash(uint32_t hash, const IpAddr &except, Effects &fx);
	// A kick from the ring: run it here (the ring forwards it).
	void ring_kick(const RingCommand &cmd, Effects &fx);

	void kick_done(JobId id, bool ok, const std::string &error, Now now, Effects &fx);
	void flush_done(JobId id, bool ok, Now now, Effects &fx);
	// Ends kick delays and times out stuck moves.
	void tick(Now now, Effects &fx);
	// When the first running kick delay ends (Now::mono_msecs), if one runs:
	// end_delays() should run then, not at the next tick. O(1) amortized.
	std::optional<int64_t> next_delay_end_msecs();
	// Ends the kick delays that are over, in O(delays ended); tick() starts
	// with it.
	void end_delays(Now now, Effects &fx);

	// USER-KICK / USER-KICK-ALT from an admin.
	AdminReply user_kick(JobId job, std::string_view kick_field, std::string_view value,
			     bool nowait, Effects &fx);
	AdminReply reset_users(JobId job, std::optional<IpAddr> ip, unsigned max_parallel,
			       Now now, Effects &fx);
	void run_reset_jobs(Now now, Effects &fx);
	void admin_gone(JobId job);

private:
	enum class KillState { killing, killing_notify_received, killed_waiting_for_notify,
			       killed_waiting_for_everyone, flushing, delay };
	struct KillContext {
		KillState state = KillState::killing;
		bool self_initiated = false;
		std::optional<IpAddr> old_host_ip;
		bool old_host_down = false;
		unsigned old_host_vhosts = 0;
		int64_t started = 0; // Now::mono
		int64_t delay_until_msecs = 0; // Now::mono_msecs
		JobId job = 0; // the running ipc kick or flush program
	};
	enum class JobKind { kill_kick, admin_kick, flush };
	struct Job {
		JobKind kind;
		uint64_t user_key; // kill_kick / flush
	};
	struct QueuedKick {
		JobId admin_job;
		std::string field, value;
	};
	struct ResetJob {
		JobId admin_job;
		bool admin_present = true;
		std::vector<IpAddr> hosts;
		size_t host_idx = 0;
		std::vector<uint32_t> users; // hashes on hosts[host_idx], snapshot
		size_t user_idx = 0;
		bool snapshot_taken = false;
		bool users_killed = false;
		unsigned max_parallel;
		unsigned moved = 0;
		int64_t started_msecs; // Now::mono_msecs
	};

	static const char *kill_state_name(KillState state);
	JobId new_job(JobKind kind, uint64_t user_key);
	void ipc(std::string line, Effects &fx);
	void finish_user_kill(uint64_t key, Now now, Effects &fx);
	void flush_killed_user(uint64_t key, Now now, Effects &fx);
	void finish_kill_delayed(uint64_t key, bool skip_delay, Now now, Effects &fx);
	void free_kill(uint64_t key, Now now, Effects &fx);
	void start_admin_kick(const QueuedKick &kick, Effects &fx);
	void run_queued_kicks(Effects &fx);
	bool run_reset_job(ResetJob &job, Now now, Effects &fx);

	const DirectorConfig &config_;
	LogSink &log_;
	UserTable &users_;
	HostList &hosts_;
	RingPort &ring_;
	Owner &owner_;
	std::unordered_map<uint64_t, KillContext> kills_;
	// (delay end, user key) of each kick delay in the order they started:
	// every delay is equally long, so also in the order they end. Entries
	// whose kill ended or was restarted meanwhile are dropped when met.
	std::deque<std::pair<int64_t, uint64_t>> delay_ends_;
	std::unordered_map<JobId, Job> jobs_;
	JobId next_job_ = 1;
	size_t kicking_ = 0;
	std::deque<QueuedKick> queued_kicks_;
	std::vector<ResetJob> resets_;
};

} // namespace director::core
