// HealthMonitor: schedules health rounds, feeds the core's verdicts and
// decider rule, and as the decider turns verdicts into ring changes.
#include <algorithm>
#include <sys/time.h>

#include "adapter/clock.h"
#include "adapter/dovecot.h"
#include "adapter/named-event.h"
#include "core/tab-escape.h"
#include "director/health.h"
#include "director/service.h"

namespace director {

namespace {

// Verdicts are acted on at least this often, even with long intervals.
constexpr int64_t step_max_msecs = 1000;

} // namespace

HealthMonitor::HealthMonitor(DirectorService &service, core::HealthConfig config,
			     std::optional<core::HealthDecider> self,
			     std::optional<core::IpAddr> source)
	: service_(service), checker_(config),
	  rule_(config.deciders, self, config.decider_timeout_secs), source_(source)
{
	auto any_tls = [](const std::vector<core::HealthProbe> &probes) {
		return std::any_of(probes.begin(), probes.end(), [](const core::HealthProbe &p) {
			return core::health_protocol_tls(p.protocol);
		});
	};
	bool want_tls = any_tls(config.checks.defaults);
	for (const auto &[ip, probes] : config.checks.per_host)
		want_tls = want_tls || any_tls(probes);
	if (want_tls) {
		std::string error;
		tls_ = adapter::TlsClientContext::create(error);
		if (!tls_)
			i_fatal("director_health_checks: %s", error.c_str());
	}
	if (!rule_.self_listed()) {
		e_info(service_.event(), "health: checking backends; this director is not in "
					 "director_health_deciders, so it never changes host states");
	}
	observe();
	timer_.once(0, [this]() { step(); });
}

HealthMonitor::~HealthMonitor()
{
	if (was_decider_) {
		e_info(service_.event(), "health: this director is no longer the health decider "
					 "(shutting down)");
	}
	timer_.reset();
	rounds_.clear();
	finished_.clear();
}

int64_t HealthMonitor::now_msecs() const
{
	return adapter::mono_msecs();
}

void HealthMonitor::observe()
{
	std::vector<std::pair<core::IpAddr, bool>> hosts;
	for (const auto &h : service_.core().host_list())
		hosts.emplace_back(h.ip, h.down);
	checker_.observe_hosts(hosts);
}

void HealthMonitor::step()
{
	finished_.clear();
	int64_t now = now_msecs();
	core::Now now_core = service_.now();
	int64_t now_secs = now_core.mono;
	core::Director &d = service_.core();

	observe();
	rule_.ring_state(d.ring_handshaked(), now_secs);
	for (const auto &dec : checker_.config().deciders) {
		int64_t seen = d.director_last_sync_seen(dec.ip, dec.port);
		if (seen != 0)
			rule_.sync_seen(dec, seen);
	}
	if (rule_.heartbeat_due(now_secs)) {
		core::Effects fx;
		d.ring_heartbeat(now_core, fx);
		service_.run_effects(fx);
	}

	for (const core::IpAddr &ip : checker_.due(now)) {
		auto probes = checker_.config().checks.for_host(ip);
		rounds_[ip] = std::make_unique<HealthRound>(
			checker_.config(), tls_.get(), ip, probes, source_,
			[this, ip](bool ok, const std::string &reason) { round_done(ip, ok, reason); });
	}
	act(now);
	schedule();
}

void HealthMonitor::schedule()
{
	int64_t now = now_msecs();
	int64_t delay = step_max_msecs;
	if (auto next = checker_.next_due_msecs())
		delay = std::clamp<int64_t>(*next - now, 0, step_max_msecs);
	timer_.once(unsigned(delay), [this]() { step(); });
}

void HealthMonitor::round_done(const core::IpAddr &ip, bool ok, const std::string &reason)
{
	auto it = rounds_.find(ip);
	if (it != rounds_.end()) {
		finished_.push_back(std::move(it->second));
		rounds_.erase(it);
	}
	std::vector<core::HealthTransition> changes;
	checker_.probe_done(ip, ok, reason, now_msecs(), changes);
	for (const auto &t : changes) {
		std::string from(core::health_state_name(t.from)), to(core::health_state_name(t.to));
		bool verdict = core::health_state_verdict_up(t.from) !=
			       core::health_state_verdict_up(t.to);
		adapter::send_named_event(service_.event(), "director_health_transition",
			     {{"host", t.ip.to_string()}, {"from", from}, {"to", to},
			      {"reason", t.reason}},
			     verdict ? core::LogLevel::warning : core::LogLevel::info,
			     "health: host " + t.ip.to_string() + " " + from + " -> " + to + ": " +
				     t.reason);
	}
	act(now_msecs());
	schedule();
}

void HealthMonitor::act(int64_t now)
{
	core::Now now_core = service_.now();
	int64_t now_secs = now_core.mono;
	bool decider = rule_.is_decider(now_secs);
	if (decider != was_decider_) {
		was_decider_ = decider;
		e_info(service_.event(), "health: this director %s the health decider",
		       decider ? "is now" : "is no longer");
	}
	if (!decider)
		return;
	observe();
	core::HealthActions actions = checker_.decide(now);
	core::Director &d = service_.core();
	for (const auto &down : actions.down) {
		std::string ip = down.ip.to_string();
		size_t users = 0;
		for (const auto &h : d.host_list()) {
			if (h.ip == down.ip)
				users = h.user_count;
		}
		core::Effects fx;
		if (!d.health_set_down(down.ip, now_core, fx))
			continue; // retried on a later step
		service_.run_effects(fx);
		adapter::send_named_event(service_.event(), "director_health_action",
			     {{"host", ip}, {"action", "down"}, {"reason", down.reason}},
			     core::LogLevel::warning,
			     "health: host " + ip + " is failing (" + down.reason +
				     "): setting it down and flushing its " + std::to_string(users) +
				     " users");
	}
	for (const auto &ip : actions.up) {
		core::Effects fx;
		if (!d.health_set_up(ip, now_core, fx))
			continue;
		service_.run_effects(fx);
		adapter::send_named_event(service_.event(), "director_health_action",
			     {{"host", ip.to_string()}, {"action", "up"}, {"reason", "healthy again"}},
			     core::LogLevel::info,
			     "health: host " + ip.to_string() + " is healthy again: setting it up");
	}
	for (const auto &b : actions.blocked) {
		adapter::send_named_event(service_.event(), "director_health_action",
			     {{"host", b.ip.to_string()}, {"action", "blocked"}, {"reason", b.reason}},
			     core::LogLevel::error,
			     "health: host " + b.ip.to_string() + " is failing (" + b.reason +
				     ") but is left up: " + std::to_string(b.down_hosts) + " hosts are "
				     "already down and director_health_max_down=" +
				     checker_.config().max_down.to_string() + " allows " +
				     std::to_string(b.limit) + " - check the backends");
	}
	observe();
}

std::vector<core::HealthHostStatus> HealthMonitor::host_status()
{
	observe();
	return checker_.status();
}

bool HealthMonitor::is_decider() const
{
	return rule_.is_decider(service_.now().mono);
}

std::string HealthMonitor::list_reply()
{
	observe();
	int64_t now_secs = service_.now().mono;
	// Checks ran on the monotonic clock; the listing shows wall times.
	int64_t now_mono_msecs = now_msecs();
	int64_t now_wall_msecs = int64_t(ioloop_timeval.tv_sec) * 1000 + ioloop_timeval.tv_usec / 1000;
	auto decider = rule_.current_decider(now_secs);
	std::string out = "decider\t";
	if (decider)
		out += decider->name();
	else
		out += rule_.is_decider(now_secs) ? "self" : "none";
	out += "\t";
	out += rule_.is_decider(now_secs) ? "1" : "0";
	out += "\n";
	for (const auto &st : checker_.status()) {
		out += st.ip.to_string();
		out += "\t";
		out += core::health_state_name(st.state);
		out += st.ring_down ? "\tdown" : "\tup";
		out += st.ring_down ? (st.down_by_health ? "\thealth" : "\tother") : "\t-";
		out += st.guard_blocked ? "\tblocked" : "\t-";
		int64_t last_check_wall_msecs =
			st.last_check_msecs == 0
				? 0
				: now_wall_msecs - (now_mono_msecs - st.last_check_msecs);
		out += "\t" + std::to_string(last_check_wall_msecs / 1000);
		out += "\t" + core::tab_escape(st.last_reason);
		out += "\n";
	}
	out += "\n";
	return out;
}

} // namespace director
