// The director process: the core state machine, the connections of every
// listener, and the carrying out of the core's Effects (answers to lookups,
// kicks, flush programs, deferred admin replies). Single-threaded; all
// callbacks come from the Dovecot ioloop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapter/event-log.h"
#include "adapter/handles.h"
#include "adapter/kick-client.h"
#include "adapter/program-runner.h"
#include "adapter/random.h"
#include "adapter/director-settings.h"
#include "core/auth-reply.h"
#include "core/director.h"
#include "core/health.h"

struct master_service_connection;

namespace director::adapter {
class MetricsHttpServer;
}
namespace director::core {
struct MetricsSnapshot;
}

namespace director {

class DirectorService;

// Base of every connection the service owns. The service deletes a closed
// connection only after the callback that closed it has returned.
class Connection {
public:
	explicit Connection(DirectorService &service);
	virtual ~Connection();
	uint64_t id() const { return id_; }

protected:
	// Asks the service to delete this connection once the ioloop is idle.
	void close();
	bool closed() const { return closed_; }
	DirectorService &service_;
	// A FIFO reader is not a client the master counts (it stays open for
	// good), so its end must not be reported as one.
	bool counted_as_client_ = true;

private:
	uint64_t id_;
	bool closed_ = false;
};

// What the listener's socket name says it is (login-and-userdb.md §1).
enum class ListenerType { auth, userdb, authreply, ring, admin, notify, metrics };

class DirectorService {
public:
	DirectorService(adapter::DirectorSettings settings, core::DirectorConfig config);
	~DirectorService();

	// A new client on one of our listeners (master_service callback).
	void client_connected(master_service_connection *conn, ListenerType type);

	core::Director &core() { return core_; }
	// Ring nonces (director_ring_secret_file); lives as long as the core.
	core::RandomSource &random() { return random_; }
	const adapter::DirectorSettings &settings() const { return settings_; }
	struct event *event() const { return event_; }
	// The time of the current ioloop wakeup (see adapter/clock.h).
	core::Now now() const;
	// The monotonic clock in microseconds, for durations of events only.
	static int64_t now_usecs();

	// Starts a core lookup whose answer goes to connection `owner`. The
	// caller runs `fx` (once per batch of lines, not per lookup).
	void start_lookup(uint64_t owner, core::RequestId id, std::string_view name,
			  const std::string &tag, core::Effects &fx);
	// The owner of lookup `id` went away before the answer: the core
	// forgets the lookup and so does the service.
	void cancel_lookup(core::RequestId id);
	size_t lookups_owned() const { return lookup_owners_.size(); }
	core::RequestId new_request_id() { return next_request_id_++; }
	// Carries out what the core asked for.
	void run_effects(core::Effects &fx);
	// Runs `handle_input` (which feeds the core, collecting into `fx`), then
	// run_effects(fx). If handle_input throws, the effects collected until
	// then are still carried out before the exception goes on: the core's
	// state already reflects them, so dropping them would lose answers,
	// kicks or ring lines.
	void run_batch(core::Effects &fx, const std::function<void()> &handle_input);

	// The ring: our own address (the source of outgoing connections) and
	// the transport of a core ring connection, if it still exists.
	void set_self(const core::IpAddr &ip) { self_ip_ = ip; }
	class RingTransport *ring_transport(core::RingConnId id);
	// Output of all ring connections is collected while a batch of ring
	// input is handled.
	void cork_ring();
	void uncork_ring();

	// Before privileges are dropped: connections that need root.
	void connect_privileged();

	// Health checks (issue #7): off unless started.
	void start_health(core::HealthConfig config, std::optional<core::HealthDecider> self,
			  std::optional<core::IpAddr> source);
	class HealthMonitor *health() { return health_.get(); }

	// The state file keeper (nullptr when director_state_file is empty). Held here so
	// it goes before the core: its snapshot holds a cursor into the user table.
	void set_state_keeper(std::unique_ptr<class StateKeeper> keeper);
	class StateKeeper *state_keeper() { return state_keeper_.get(); }

	void connection_closed(Connection *conn);
	// Named events of ring connections (director_ring_connected and
	// director_ring_disconnected). Each connection reports its end once.
	void ring_event_connected(const RingTransport &t, const core::RingUserCounts &users);
	void ring_event_disconnected(const RingTransport &t, const std::string &reason);
	void ring_digest_checked_event(const RingTransport *t,
					const core::Effects::RingDigestChecked &check);
	// For the process title: one line arrived from another director.
	void count_ring_line() { ring_lines_++; }
	uint64_t register_connection(Connection *conn);

private:
	void tick();
	// Keeps kick_delay_timer_ set for the core's first kick delay end.
	void arm_kick_delay_timer();
	// Keeps idle_work_timer_ set while the core has idle work
	// (core::Director::run_idle_work()).
	void arm_idle_work_timer();
	void run_effects_batch(core::Effects &fx);
	void start_ring_connect(const core::Effects::RingConnect &rc);
	void schedule_reap();
	// Deletes closed connections and finished program clients.
	void reap();
	void refresh_proctitle();
	void start_kick(const core::Effects::KickCommand &cmd);
	void start_flush(const core::Effects::FlushProgram &flush);

	adapter::DirectorSettings settings_;
	struct event *event_;
	adapter::EventLog log_;
	adapter::DovecotRandom random_; // before core_: the core points at it
	core::Director core_;
	core::IpAddr self_ip_;
	std::unordered_map<core::RingConnId, uint64_t> ring_conns_; // ring id -> connection id

	uint64_t next_conn_id_ = 1;
	core::RequestId next_request_id_ = 1;
	std::map<uint64_t, std::unique_ptr<Connection>> connections_;
	std::vector<std::unique_ptr<Connection>> graveyard_;
	adapter::TimeoutHandle graveyard_timer_;
	adapter::TimeoutHandle tick_timer_;
	// Fires when the first running kick delay ends (kick_delay_at_msecs_, on
	// adapter::mono_msecs()); inactive when none runs.
	adapter::TimeoutHandle kick_delay_timer_;
	int64_t kick_delay_at_msecs_ = 0;
	// Zero-delay: runs once the current event-loop pass has done its I/O.
	adapter::TimeoutHandle idle_work_timer_;
	// A lookup in the core: who asked, for the director_lookup_finished
	// event what and since when.
	struct LookupInfo {
		uint64_t owner;
		std::string tag;
		int64_t started_usecs;
	};
	std::unordered_map<core::RequestId, LookupInfo> lookup_owners_;
	// Lookup connections: "login" or "userdb", the event's source field.
	std::unordered_map<uint64_t, const char *> lookup_sources_;
	void lookup_finished_event(const LookupInfo &info, const core::Effects::LookupDone &done);

	std::unique_ptr<adapter::KickClient> kicks_;
	bool stopping_ = false; // late kick replies are ignored
	// Flush programs in flight, and finished ones awaiting deletion.
	std::map<core::JobId, std::unique_ptr<adapter::ProgramRunner>> flushes_;
	std::vector<std::unique_ptr<adapter::ProgramRunner>> dead_flushes_;

	uint64_t prev_requests_ = 0;
	// Ring traffic for the process title: lines received, and bytes of
	// closed ring connections (live ones are summed when it is drawn).
	uint64_t ring_lines_ = 0, prev_ring_lines_ = 0;
	uint64_t ring_bytes_in_done_ = 0, ring_bytes_out_done_ = 0;
	uint64_t prev_ring_bytes_in_ = 0, prev_ring_bytes_out_ = 0;
	std::unique_ptr<class HealthMonitor> health_;
	// Named events from state changes the core makes (director-events.cc):
	// host changes and ring syncs, seen by comparing with the last state.
	std::unique_ptr<class StateEvents> state_events_;
	void observe_state();
	bool in_ring_input_ = false; // between cork_ring() and uncork_ring()
	void kick_event(const core::Effects::KickCommand &cmd);
	void host_flushed_event(const core::Effects::HostFlushed &fl);
	void user_moved_event(const core::Effects::UserMoved &mv);
	// The director-metrics HTTP server, made with its first client.
	std::unique_ptr<adapter::MetricsHttpServer> metrics_http_;
	std::unique_ptr<class StateKeeper> state_keeper_;
};

// Listener connection types; each lives in its own *-connection.cc.
std::unique_ptr<Connection> make_auth_connection(DirectorService &service, int fd,
						 ListenerType type);
std::unique_ptr<Connection> make_admin_connection(DirectorService &service, int fd);
std::unique_ptr<Connection> make_notify_connection(DirectorService &service, int fd, bool fifo);
std::unique_ptr<Connection> make_metrics_connection(DirectorService &service,
						    adapter::MetricsHttpServer &server, int fd);
// The gauges of the director-metrics listener, as of now.
core::MetricsSnapshot metrics_snapshot(DirectorService &service);
// peer: "ip:port" of an outgoing connection's target (an incoming one finds
// its own).
std::unique_ptr<Connection> make_ring_connection(DirectorService &service, int fd,
						 core::RingConnId ring_id, bool outgoing,
						 const std::string &peer = "");
// Starts a non-blocking TCP connect from `source`; -1 on failure.
int connect_ring(const core::IpAddr &ip, uint16_t port, const core::IpAddr &source);

// What the service needs of a ring connection.
class RingTransport {
public:
	virtual ~RingTransport() = default;
	virtual core::RingConnId ring_id() const = 0;
	virtual void ring_send(std::string_view data) = 0;
	// Flushes and closes without telling the core (it asked for it).
	virtual void ring_close() = 0;
	// Calls Director::ring_drained() once the output buffer is low.
	virtual void ring_wait_drain() = 0;
	virtual void cork() = 0;
	virtual void uncork() = 0;
	virtual uint64_t bytes_read() const = 0;
	virtual uint64_t bytes_sent() const = 0;
	virtual size_t bytes_buffered() const = 0;
	virtual size_t peak_buffered() const = 0;
	virtual const std::string &peer() const = 0; // "ip:port", "" if unknown
	virtual bool outgoing() const = 0;
	virtual int64_t started_usecs() const = 0; // DirectorService::now_usecs()
	// When the TCP connection was up (accepted, or connect() done) and when the
	// core reported its handshake finished; 0 = not yet.
	int64_t connected_usecs = 0;
	int64_t handshaked_usecs = 0;
};

// Hooks the service calls on connections of a known kind.
class LookupOwner {
public:
	virtual ~LookupOwner() = default;
	virtual void lookup_done(core::RequestId id, const core::Effects::LookupDone &result) = 0;
};
class AdminWaiter {
public:
	virtual ~AdminWaiter() = default;
	virtual void admin_done(core::AdminResult result) = 0;
	// The ring synced: a command that waited for it may run now.
	virtual void admin_resume() = 0;
};

} // namespace director
