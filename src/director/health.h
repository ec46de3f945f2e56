// Built-in backend health checks (issue #7), the I/O side: HealthRound probes
// one mail host (non-blocking connects and dialogs on the ioloop, each probe
// bounded by director_health_timeout); HealthMonitor schedules rounds, feeds
// the core's HealthChecker and HealthDeciderRule, and, when this director is
// the decider, carries out downs (with flush) and ups through the Director's
// host paths so the ring sees stock HOST and HOST-FLUSH changes. Logs every
// transition as a named event.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapter/handles.h"
#include "adapter/stream.h"
#include "adapter/tls.h"
#include "core/health.h"
#include "core/ip-addr.h"

namespace director {

class DirectorService;

// One round for one host: its probes one after another; the first failure
// ends the round. `done` is called once, from a timer callback, never from
// the constructor; the owner may destroy the round only after that.
class HealthRound {
public:
	using Done = std::function<void(bool ok, const std::string &reason)>;
	// tls: the context for imaps/pop3s probes (nullptr: none configured).
	HealthRound(const core::HealthConfig &config, const adapter::TlsClientContext *tls,
		    const core::IpAddr &ip, std::vector<core::HealthProbe> probes,
		    std::optional<core::IpAddr> source, Done done);
	~HealthRound();
	HealthRound(const HealthRound &) = delete;
	HealthRound &operator=(const HealthRound &) = delete;

private:
	void start_probe();
	void connected(const std::string &error);
	void input();
	// Ends the current probe; the next one (or the report) runs from a
	// fresh timer callback.
	void end_probe(bool ok, std::string reason);
	std::string probe_name() const;

	const core::HealthConfig &config_;
	const adapter::TlsClientContext *tls_;
	core::IpAddr ip_;
	std::vector<core::HealthProbe> probes_;
	size_t next_ = 0;
	std::optional<core::IpAddr> source_;
	Done done_;
	std::unique_ptr<adapter::Stream> stream_;
	std::optional<core::HealthDialog> dialog_;
	bool probe_over_ = false;
	adapter::TimeoutHandle timeout_;
	adapter::TimeoutHandle defer_;
};

class HealthMonitor {
public:
	// self: our ring address (nullopt when standalone); source: the address
	// probes are sent from (nullopt: the kernel's choice). Call before the
	// chroot: a TLS context is made here when TLS probes are configured
	// (i_fatal if that fails).
	HealthMonitor(DirectorService &service, core::HealthConfig config,
		      std::optional<core::HealthDecider> self, std::optional<core::IpAddr> source);
	~HealthMonitor();

	// The HEALTH-LIST reply of the director-admin socket: a decider line,
	// one line per checked host (ring states as of now), and the ending
	// empty line.
	std::string list_reply();
	// For the gauges: every checked host's state (ring states as of now),
	// and whether this director acts on verdicts now.
	std::vector<core::HealthHostStatus> host_status();
	bool is_decider() const;

private:
	void step();
	void schedule();
	void round_done(const core::IpAddr &ip, bool ok, const std::string &reason);
	void observe();
	void act(int64_t now_msecs);
	int64_t now_msecs() const;

	DirectorService &service_;
	core::HealthChecker checker_;
	core::HealthDeciderRule rule_;
	std::optional<core::IpAddr> source_;
	std::unique_ptr<adapter::TlsClientContext> tls_;
	bool was_decider_ = false;
	std::map<core::IpAddr, std::unique_ptr<HealthRound>> rounds_;
	std::vector<std::unique_ptr<HealthRound>> finished_;
	adapter::TimeoutHandle timer_;
};

} // namespace director
