// The director-metrics listener: each client is an HTTP connection of the
// service's lib-http server (adapter/metrics-http), answering GET /metrics
// with the gauges of core/metrics. Reads state only; changes nothing.
#include "adapter/dovecot.h"
#include "adapter/metrics-http.h"
#include "core/metrics.h"
#include "director/health.h"
#include "director/service.h"

namespace director {

namespace {

class MetricsConnection final : public Connection {
public:
	MetricsConnection(DirectorService &service, adapter::MetricsHttpServer &server, int fd)
		: Connection(service)
	{
		http_ = server.accept(fd, [this]() { close(); });
	}

private:
	std::unique_ptr<adapter::MetricsHttpConnection> http_;
};

} // namespace

core::MetricsSnapshot metrics_snapshot(DirectorService &service)
{
	core::Director &dir = service.core();
	core::MetricsSnapshot s;
	std::map<core::IpAddr, core::HealthHostStatus> health;
	if (HealthMonitor *hm = service.health()) {
		s.health_checks = true;
		s.health_decider = hm->is_decider();
		for (auto &st : hm->host_status())
			health.emplace(st.ip, st);
	}
	for (const auto &h : dir.host_list()) {
		core::MetricsHost mh;
		mh.host = h.ip.to_string();
		mh.tag = h.tag;
		mh.users = h.user_count;
		mh.vhosts = h.vhost_count;
		mh.up = !h.down;
		auto it = health.find(h.ip);
		if (it != health.end()) {
			mh.health = core::MetricsHealth{
				std::string(core::health_state_name(it->second.state)),
				it->second.last_ok, it->second.down_by_health};
		}
		s.hosts.push_back(std::move(mh));
	}
	s.ring_synced = dir.ring_synced();
	for (const auto &e : dir.director_list(service.now())) {
		if (!e.has_connection)
			continue;
		if (e.type == "left")
			s.ring_left++;
		else if (e.type == "right")
			s.ring_right++;
		else if (e.type == "out")
			s.ring_out++;
		else
			s.ring_in++; // "in", or incoming before its ME line
	}
	s.requests_delayed = dir.delayed_lookups();
	s.moves_in_progress = dir.users_moving();
	s.kicks_in_progress = dir.users_kicking();
	return s;
}

std::unique_ptr<Connection> make_metrics_connection(DirectorService &service,
						    adapter::MetricsHttpServer &server, int fd)
{
	return std::make_unique<MetricsConnection>(service, server, fd);
}

} // namespace director
