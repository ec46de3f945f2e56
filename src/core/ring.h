// Ring: this director's place in the director ring: the director list, one RingLink per
// connection, left and right, the handshake, SYNC and origin sequence checks
// (ring-protocol.md). User and host commands from peers go up through RingHandler; user
// and host logic reaches the ring only through RingPort. No I/O here: lines go out as
// Effects and come in through line().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "director-list.h"
#include "director-types.h"
#include "host-list.h"
#include "ring-link.h"
#include "ring-port.h"
#include "user-table.h"

namespace director::core {

class Ring final : public RingPort {
public:
	// `hosts` is read for the handshake and SYNC; `users` is streamed to new right
	// sides (and re-sorted after a handshake). Both outlive the ring.
	Ring(const DirectorConfig &config, LogSink &log, const HostList &hosts, UserTable &users,
	     RingHandler &handler);

	// See Director::set_ring_secret().
	void set_secret(std::string secret, RandomSource &random)
	{
		ring_secret_ = std::move(secret);
		ring_random_ = &random;
	}

	// See Director for these.
	void start_alone(Now now, uint16_t ring_port)
	{
		ring_last_sync_time_ = now.mono;
		ring_listen_port_ = ring_port;
	}
	void start(const std::vector<RingDirectorConfig> &directors, const IpAddr &self_ip,
		   uint16_t self_port, Now now, Effects &fx);
	RingConnId accept(const IpAddr &remote, Now now, Effects &fx);
	void connected(RingConnId id, Now now, Effects &fx);
	void line(RingConnId id, std::string_view line, Now now, Effects &fx);
	void closed(RingConnId id, const std::string &reason, Now now, Effects &fx);
	void shutdown(Now now, Effects &fx);
	void drained(RingConnId id, Now now, Effects &fx);
	bool wants_drain(RingConnId id) const;
	std::optional<RingUserCounts> user_counts(RingConnId id) const;
	void tick(Now now, Effects &fx);
	bool heartbeat(Now now, Effects &fx);
	int64_t director_last_sync_seen(const IpAddr &ip, uint16_t port) const;
	std::vector<DirectorListEntry> director_list(Now now) const;
	AdminReply director_add(const IpAddr &ip, std::optional<uint16_t> port, Now now,
				Effects &fx);
	AdminReply director_remove(JobId job, const IpAddr &ip, std::optional<uint16_t> port,
				   Now now, Effects &fx);
	bool admin_may_run(JobId job);
	// An admin change's reply: now when nothing is pending, else once the ring syncs
	// (or "Ring sync timed out").
	AdminReply reply_after_sync(JobId job, Now now);
	size_t connection_count() const { return conns_.size(); }

	// --- the state file ------------------------------------------------------
	uint32_t sync_seq() const { return sync_seq_; }
	// After a restore, before start(): our origin and SYNC sequences continue past the
	// stored ones (applied at start()).
	void restore_sequences(uint32_t sync_seq, uint32_t last_seq)
	{
		restored_sync_seq_ = sync_seq;
		restored_last_seq_ = last_seq;
		sequences_restored_ = true;
	}
	// After a restore: outgoing handshakes send their host list at once but hold the
	// user stream until our left's HOST-HAND-START shows whether the ring kept running
	// (then its hosts and users replace ours, as stock does, and our stale users are
	// never sent), or until `until` (the whole ring restarted and our left is not up
	// yet: the restored users go out).
	void hold_user_streams(int64_t until)
	{
		hold_users_until_ = until;
		restart_signal_pending_ = true;
		push_restored_users_ = false;
	}
	bool holding_user_streams() const { return hold_users_until_ != 0; }
	// Our table is a restored one, a peer has said the ring kept running, and our
	// left's handshake has not replaced it yet: a ring update that disagrees with it
	// is newer than our entry.
	bool restored_table_stale() const { return restored_table_stale_; }
	bool mode() const { return ring_mode_; }
	bool alone() const { return left_ == 0 && right_ == 0; }

	// RingPort
	bool active() const override { return ring_mode_; }
	bool has_neighbours() const override { return !alone(); }
	bool has_right() const override { return right_ != 0; }
	bool has_links() const override { return !conns_.empty(); }
	bool synced() const override { return ring_synced_; }
	bool handshaked() const override { return ring_handshaked_; }
	unsigned min_version() const override { return ring_min_version_; }
	int64_t last_sync_time() const override { return ring_last_sync_time_; }
	const DirectorHost *self() const override { return dirs_.self(); }
	RingOrigin next_origin() override;
	void send(const DirectorHost *src, const RingCommand &cmd, Effects &fx,
		  unsigned min_minor = 0) override
	{
		update_send(src, cmd, fx, min_minor);
	}
	bool send_right(const RingCommand &cmd, Effects &fx) override;
	void pass_on(const RingLink &from, const RingCommand &cmd, Effects &fx) override;
	void close(RingLink &link, const std::string &reason, Now now, Effects &fx,
		   bool protocol_failure) override
	{
		close_conn(link, reason, now, fx, protocol_failure);
	}
	void changed(Now now, Effects &fx) override { ring_sync(now, fx); }

private:
	struct SyncWaiter {
		JobId job;
		int64_t deadline; // Now::mono
	};

	RingLink *conn(RingConnId id);
	RingLink &new_link(bool incoming, const IpAddr &remote, Now now);
	void send(RingLink &c, const RingCommand &cmd, Effects &fx)
	{
		c.send(cmd, ring_min_version_, fx);
	}
	void ping(RingLink &c, Now now, Effects &fx) { c.ping(now, ring_min_version_, fx); }
	void update_send(const DirectorHost *src, const RingCommand &cmd, Effects &fx,
			 unsigned min_minor = 0);
	void send_version_me(RingLink &c, Now now, Effects &fx);
	void connect_right(Now now, Effects &fx);
	bool connect_to(DirectorHost *h, Now now, Effects &fx);
	// A peer that broke the protocol: `why` logged as an error, and the
	// connection closed with it as the reason.
	void refuse_peer(RingLink &c, const std::string &why, Now now, Effects &fx);
	void close_conn(RingLink &c, const std::string &reason, Now now, Effects &fx,
			bool protocol_failure = false);
	void conn_gone(RingConnId id, Now now, Effects &fx);

	// ring-handshake.cc
	bool handle_handshake_command(RingLink &c, const RingCommand &cmd, Now now,
				      Effects &fx);
	void handle_me(RingLink &c, const RingCommand &cmd, Now now, Effects &fx);
	void send_handshake_start(RingLink &c, Now now, Effects &fx);
	void continue_user_stream(RingLink &c, Now now, Effects &fx);
	void handshake_done(RingLink &c, Now now, Effects &fx);
	void resend_to_right(const RingLink &from, Now now, Effects &fx);
	void assign_left(RingLink &c, Now now, Effects &fx);
	void assign_right(RingLink &c, Now now, Effects &fx);
	void promote_left(Now now, Effects &fx);
	void release_user_streams(Now now, Effects &fx);

	// ring-sync.cc
	void ring_sync(Now now, Effects &fx);
	void sync_send(const DirectorHost &origin, uint32_t seq, uint32_t minor, uint32_t timestamp,
		       uint32_t hosts_hash, Now now, Effects &fx);
	void set_ring_synced(Now now, Effects &fx);
	void set_ring_unsynced(Now now);
	void set_ring_handshaked(Now now, Effects &fx);
	void handle_sync(RingLink &c, const RingCommand &cmd, Now now, Effects &fx);
	void state_changed(Now now, Effects &fx);
	void purge_removed_directors();

	// ring-security.cc
	void start_auth(RingLink &c, std::optional<RingEndpoint> peer);
	void send_director_list(RingLink &c, Effects &fx);
	bool auth_line(RingLink &c, std::string_view line, Now now, Effects &fx);
	bool defer_before_handshake(RingLink &c, const RingCommand &cmd, Now now, Effects &fx);
	void defer_user(RingLink &c, uint32_t hash, const IpAddr &ip, uint32_t timestamp, bool weak,
			Now now, Effects &fx);
	void me_effects(RingLink &c, Now now, Effects &fx);
	void apply_deferred_handshake(RingLink &c, Now now, Effects &fx);
	void replay_deferred_commands(RingLink &c, Now now, Effects &fx);
	bool from_ring_neighbour(const RingLink &c, const RingCommand &cmd) const;
	std::string unlisted_reason(const IpAddr &ip, uint16_t port) const;

	// ring-digest.cc
	void send_user_digests(RingLink &c, Effects &fx);
	void digest_line(RingLink &c, std::string_view line, Now now, Effects &fx);
	void send_sub_digests(RingLink &c, Effects &fx);
	std::optional<UserDigestBuckets> refined_diff(RingLink &c);
	void start_handshake_users(RingLink &c, Now now, Effects &fx);
	bool delta_join(RingLink &c, Now now);
	void log_delta_join(RingLink &c);
	void schedule_digest_check(int64_t at);
	void check_left_digests(Now now, Effects &fx);
	void digest_check_line(RingLink &c, std::string_view line, Now now, Effects &fx);
	void answer_digest_check(RingLink &c, Now now, Effects &fx);
	void digest_check_answer(RingLink &c, std::string_view line, Now now, Effects &fx);
	void end_digest_check(RingLink &c, Effects::DigestCheckResult result, Effects &fx);
	void cut_repair_stream(RingLink &c, Effects &fx);

	// ring-commands.cc
	bool check_origin(const RingOrigin &origin, bool &reoriginate_r);
	void handle_ring_command(RingLink &c, const RingCommand &cmd, Now now, Effects &fx);
	void handle_director(RingLink &c, const RingCommand &cmd, Now now, Effects &fx);
	void handle_connect(RingLink &c, const RingCommand &cmd, Now now, Effects &fx);
	void handle_pong(RingLink &c, Now now, Effects &fx);

	const DirectorConfig &config_;
	LogSink &log_;
	const HostList &hosts_;
	UserTable &users_;
	RingHandler &handler_;

	DirectorList dirs_;
	std::map<RingConnId, RingLink> conns_;
	RingConnId next_conn_ = 1;
	RingConnId left_ = 0;
	RingConnId right_ = 0;
	bool ring_mode_ = false;
	bool shutting_down_ = false;
	uint16_t ring_listen_port_ = 0;
	bool ring_handshaked_ = true;
	bool ring_synced_ = true;
	// The times below are Now::mono seconds.
	int64_t ring_last_sync_time_ = 0;
	uint32_t sync_seq_ = 0;
	unsigned ring_min_version_ = ring_version_minor;
	uint64_t ring_change_counter_ = 0;
	uint64_t last_sync_sent_change_counter_ = 0;
	int64_t last_sync_start_ = 0;
	uint32_t last_sync_msecs_ = 0;
	int64_t ring_first_alone_ = 0;
	int64_t reconnect_at_ = 0;
	int64_t preferred_reconnect_at_ = 0;
	int64_t sync_resend_at_ = 0;
	int64_t last_sync_resend_ = 0;
	std::vector<SyncWaiter> sync_waiters_;
	std::vector<JobId> presync_waiters_;
	std::string ring_secret_; // empty: the ring is not authenticated
	RandomSource *ring_random_ = nullptr;
	// State file restore: see hold_user_streams() and restore_sequences().
	int64_t hold_users_until_ = 0;
	// After a restore that was not replaced by a running ring: once the ring is
	// handshaked, the whole table goes to our left as USER updates, so the directors
	// on that side (which never get our handshake users: stock does not forward them)
	// learn it too.
	// Only a positive signal sets it: the first HOST-HAND-START from an incoming
	// connection after the restore says 0 (its sender's ring is not running
	// either: the ring restarted). A hold that times out decides nothing.
	bool push_restored_users_ = false;
	bool restored_table_stale_ = false; // see restored_table_stale()
	bool restart_signal_pending_ = false;
	// A left's handshake taught us users while our right was not handshaked:
	// they go to the right (as USER updates) when it is (resend_to_right()).
	bool resend_to_new_right_ = false;
	RingEndpoint resend_source_; // the left they came from: not sent back to it
	std::vector<RingConnId> held_streams_;
	// Digest checks of our table against our left's (ring-digest.cc), in
	// Now::mono seconds. 0: none due (the next sync or answer schedules one).
	int64_t next_digest_check_ = 0;
	uint64_t host_erasures_seen_ = 0;
	int64_t host_erasure_seen_at_ = 0;
	bool sequences_restored_ = false;
	uint32_t restored_sync_seq_ = 0;
	uint32_t restored_last_seq_ = 0;
};

// How long a restored director waits to hear from its left whether the ring kept
// running: a running left reaches us within a second (our right tells it to connect
// to us as soon as we say ME), but took 5 s under ASan on a loaded machine, and a
// stale table sent into a running ring moves users (stock's conflict rule prefers
// the lower host IP); a peer waits 40 s for our DONE.
constexpr int64_t ring_restore_hold_secs = 20;
// Digest checks (user-digest.h): the first one this long after the ring synced
// following a change, then one every interval (sooner after a check that found
// differences: the quiet time after a repair, 30 s when nothing changed); not
// within the quiet time after
// a host's users were dropped here (the drop may still be on its way to our
// left, whose answer would bring them back); an answer that has not ended in
// the timeout is given up.
constexpr int64_t ring_digest_check_after_sync_secs = 2;
constexpr int64_t ring_digest_check_interval_secs = 300;
constexpr int64_t ring_digest_check_quiet_secs = 10;
constexpr int64_t ring_digest_check_in_flight_secs = 30;
constexpr int64_t ring_digest_check_timeout_secs = 30;
// Restored sequences continue this far past the stored ones: the file may be up to
// director_state_interval old, and a peer that still remembers our sequence (it did
// not see us reconnect) drops commands whose number it thinks it saw. 100,000 covers
// far more ring commands than a director originates between two writes.
constexpr uint32_t ring_restore_seq_margin = 100000;

} // namespace director::core
