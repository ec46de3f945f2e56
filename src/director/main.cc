// The director service binary: a drop-in for Dovecot's
// "service director { executable = ... }". Reads the director_* settings,
// finds itself in director_servers, resolves director_mail_servers, drops
// privileges and serves every listener until the master stops it.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <memory>
#include <vector>

#include "adapter/dovecot.h"
#include "adapter/event-log.h"
#include "adapter/director-settings.h"
#include "adapter/random.h"
#include "adapter/stats-client.h"
#include "core/config-values.h"
#include "core/health.h"
#include "core/ring-auth.h"
#include "core/state-file.h"
#include "director/service.h"
#include "director/state-keeper.h"

extern "C" {
#include "master-interface.h"
#include "master-service.h"
#include "restrict-access.h"
}

using namespace director;

namespace {

std::unique_ptr<DirectorService> service;
std::vector<ListenerType> listener_types; // indexed by listen fd

// The role a listener has by its socket name: the part after the last '-'
// of the file name (login-and-userdb.md §1). nullopt = unknown.
std::optional<ListenerType> listener_type_from_name(const char *path)
{
	const char *name = std::strrchr(path, '/');
	name = name == nullptr ? path : name + 1;
	const char *suffix = std::strrchr(name, '-');
	suffix = suffix == nullptr ? name : suffix + 1;
	std::string_view s(suffix);
	if (s == "auth")
		return ListenerType::auth;
	if (s == "userdb")
		return ListenerType::userdb;
	if (s == "authreply")
		return ListenerType::authreply;
	if (s == "ring")
		return ListenerType::ring;
	if (s == "admin" || s == "doveadm")
		return ListenerType::admin;
	if (s == "notify")
		return ListenerType::notify;
	if (s == "metrics")
		return ListenerType::metrics;
	return std::nullopt;
}

// Finds every listener's role; returns the ring listener's address, if any.
void init_listeners(struct ip_addr *ring_ip_r, in_port_t *ring_port_r)
{
	*ring_port_r = 0;
	unsigned count = master_service_get_socket_count(master_service);
	listener_types.assign(MASTER_LISTEN_FD_FIRST + count, ListenerType::auth);
	for (unsigned i = 0; i < count; i++) {
		int fd = MASTER_LISTEN_FD_FIRST + int(i);
		const char *name = master_service_get_socket_name(master_service, fd);
		struct ip_addr ip;
		in_port_t port = 0;
		bool tcp = net_getsockname(fd, &ip, &port) == 0 && port != 0;
		// Unknown names: TCP means ring, anything else auth, as stock.
		ListenerType type = listener_type_from_name(name).value_or(
			tcp ? ListenerType::ring : ListenerType::auth);
		if (type == ListenerType::ring && *ring_port_r == 0 && tcp) {
			*ring_ip_r = ip;
			*ring_port_r = port;
		}
		listener_types[fd] = type;
	}
}

std::optional<core::IpAddr> to_core_ip(const struct ip_addr &ip)
{
	return core::IpAddr::parse(net_ip2addr(&ip));
}

// director_servers, with names resolved (before the chroot), and which of
// them is us.
struct RingSetup {
	std::vector<core::RingDirectorConfig> directors;
	core::IpAddr self_ip;
	uint16_t self_port = 0;
};

RingSetup init_directors(const adapter::DirectorSettings &set, const struct ip_addr &ring_ip,
			 in_port_t ring_port)
{
	auto parsed = core::parse_director_servers(set.director_servers, ring_port);
	if (!parsed.ok()) {
		i_fatal("Invalid setting director_servers=%s: %s", set.director_servers.c_str(),
			parsed.error().c_str());
	}
	RingSetup out;
	for (const auto &entry : *parsed) {
		if (entry.ip) {
			out.directors.push_back({*entry.ip, entry.port});
			continue;
		}
		struct ip_addr *ips;
		unsigned int ips_count;
		int ret = net_gethostbyname(entry.host.c_str(), &ips, &ips_count);
		if (ret != 0) {
			i_fatal("Invalid setting director_servers: Unknown host %s: %s",
				entry.host.c_str(), net_gethosterror(ret));
		}
		for (unsigned i = 0; i < ips_count; i++) {
			if (auto ip = to_core_ip(ips[i]))
				out.directors.push_back({*ip, entry.port});
		}
	}
	if (out.directors.empty())
		return out; // standalone director: no ring

	std::optional<core::IpAddr> self_ip;
	if (ring_ip.family != 0 && !net_ip_compare(&ring_ip, &net_ip4_any) &&
	    !net_ip_compare(&ring_ip, &net_ip6_any)) {
		self_ip = to_core_ip(ring_ip);
	} else {
		// A wildcard listener: we are the first listed address we can bind.
		for (const auto &d : out.directors) {
			struct ip_addr ip;
			if (net_addr2ip(d.ip.to_string().c_str(), &ip) == 0 && net_try_bind(&ip) == 0) {
				self_ip = d.ip;
				break;
			}
		}
		if (!self_ip)
			i_fatal("director_servers doesn't list ourself");
	}
	bool found = false;
	for (const auto &d : out.directors)
		found = found || (d.ip == *self_ip && d.port == ring_port);
	if (!found) {
		i_fatal("director_servers doesn't list ourself (%s:%u)",
			self_ip->to_string().c_str(), ring_port);
	}
	out.self_ip = *self_ip;
	out.self_port = ring_port;
	return out;
}

core::DirectorConfig make_config(const adapter::DirectorSettings &set)
{
	core::DirectorConfig cfg;
	cfg.user_expire_secs = set.user_expire_secs;
	cfg.user_kick_delay_secs = set.user_kick_delay_secs;
	cfg.max_parallel_moves = set.max_parallel_moves;
	cfg.max_parallel_kicks = set.max_parallel_kicks;
	cfg.ping_idle_timeout_secs = set.ping_idle_timeout_secs;
	cfg.ping_max_timeout_secs = set.ping_max_timeout_secs;
	cfg.flush_program_set = !set.director_flush_socket.empty();
	auto hash = core::UsernameHash::parse(set.director_username_hash);
	if (!hash.ok()) {
		i_fatal("Invalid setting director_username_hash=%s: %s",
			set.director_username_hash.c_str(), hash.error().c_str());
	}
	cfg.username_hash = std::move(hash).value();
	return cfg;
}

// director_mail_servers -> the initial hosts (names resolved here, before
// the chroot takes /etc away).
void add_mail_servers(core::Director &dir, const adapter::DirectorSettings &set,
		      std::vector<core::StateIdentity::ConfigHost> &added_r)
{
	auto parsed = core::parse_mail_servers(set.director_mail_servers);
	if (!parsed.ok()) {
		i_fatal("Invalid value for director_mail_servers setting: %s",
			parsed.error().c_str());
	}
	for (const auto &entry : *parsed) {
		if (!entry.needs_dns) {
			dir.add_config_host(entry.ip, "", entry.tag);
			added_r.push_back({entry.ip, entry.tag});
			continue;
		}
		struct ip_addr *ips;
		unsigned int ips_count;
		int ret = net_gethostbyname(entry.hostname.c_str(), &ips, &ips_count);
		if (ret != 0) {
			i_fatal("Invalid value for director_mail_servers setting: "
				"Unknown host %s: %s",
				entry.hostname.c_str(), net_gethosterror(ret));
		}
		for (unsigned i = 0; i < ips_count; i++) {
			if (auto ip = to_core_ip(ips[i])) {
				dir.add_config_host(*ip, entry.hostname, entry.tag);
				added_r.push_back({*ip, entry.tag});
			}
		}
	}
}

// director_health_login_file: read before privileges are dropped. It holds
// a password, so it must be root's and unreadable by anyone else.
core::HealthLogin read_health_login(const std::string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		i_fatal("director_health_login_file=%s: open() failed: %m", path.c_str());
	struct stat st;
	if (fstat(fd, &st) < 0)
		i_fatal("director_health_login_file=%s: fstat() failed: %m", path.c_str());
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
		i_fatal("director_health_login_file=%s: must be a regular file owned by root "
			"with mode 0600 or stricter (it holds a password)", path.c_str());
	}
	std::string data;
	char buf[1024];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0)
			i_fatal("director_health_login_file=%s: read() failed: %m", path.c_str());
		if (n == 0)
			break;
		data.append(buf, size_t(n));
		if (data.size() > 64 * 1024)
			i_fatal("director_health_login_file=%s: too large", path.c_str());
	}
	i_close_fd(&fd);
	auto login = core::parse_health_login(data);
	if (!login.ok())
		i_fatal("director_health_login_file=%s: %s", path.c_str(), login.error().c_str());
	return *login;
}

// director_ring_secret_file: the shared secret of the authenticated ring,
// read before privileges are dropped. Anyone who can read it can join the
// ring, so it must be root's and unreadable by anyone else.
std::string read_ring_secret(const std::string &path)
{
	int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		i_fatal("director_ring_secret_file=%s: open() failed: %m", path.c_str());
	struct stat st;
	if (fstat(fd, &st) < 0)
		i_fatal("director_ring_secret_file=%s: fstat() failed: %m", path.c_str());
	if (!S_ISREG(st.st_mode))
		i_fatal("director_ring_secret_file=%s: not a regular file", path.c_str());
	if (st.st_uid != 0) {
		i_fatal("director_ring_secret_file=%s: owned by uid %ld, must be owned by root",
			path.c_str(), long(st.st_uid));
	}
	if ((st.st_mode & 077) != 0) {
		i_fatal("director_ring_secret_file=%s: mode %04o gives group or others access; "
			"it must be 0600 or stricter (chmod 0600)",
			path.c_str(), unsigned(st.st_mode & 07777));
	}
	std::string data;
	char buf[1024];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0)
			i_fatal("director_ring_secret_file=%s: read() failed: %m", path.c_str());
		if (n == 0)
			break;
		data.append(buf, size_t(n));
		if (data.size() > core::ring_secret_max_bytes + 2)
			break; // parse_ring_secret() reports it as too long
	}
	i_close_fd(&fd);
	auto secret = core::parse_ring_secret(data);
	if (!secret.ok())
		i_fatal("director_ring_secret_file=%s: %s", path.c_str(), secret.error().c_str());
	return std::move(secret).value();
}

// The director_health_* settings; nullopt when health checks are off.
std::optional<core::HealthConfig> make_health_config(const adapter::DirectorSettings &set,
						     uint16_t ring_port)
{
	auto checks = core::parse_health_checks(set.health_checks);
	if (!checks.ok()) {
		i_fatal("Invalid setting director_health_checks=%s: %s", set.health_checks.c_str(),
			checks.error().c_str());
	}
	if (checks->empty())
		return std::nullopt;
	core::HealthConfig cfg;
	cfg.checks = *checks;
	cfg.interval_msecs = set.health_interval_msecs;
	cfg.timeout_msecs = set.health_timeout_msecs;
	cfg.fail_rounds = set.health_fail_rounds;
	cfg.rapid_interval_msecs = set.health_rapid_interval_msecs;
	cfg.rapid_polls = set.health_rapid_polls;
	cfg.rapid_threshold = set.health_rapid_threshold;
	cfg.decider_timeout_secs = set.health_decider_timeout_secs;
	cfg.lmtp_from = set.health_lmtp_from;
	cfg.lmtp_rcpt = set.health_lmtp_rcpt;
	auto max_down = core::parse_health_max_down(set.health_max_down);
	if (!max_down.ok()) {
		i_fatal("Invalid setting director_health_max_down=%s: %s",
			set.health_max_down.c_str(), max_down.error().c_str());
	}
	cfg.max_down = *max_down;
	auto deciders = core::parse_health_deciders(set.health_deciders, ring_port);
	if (!deciders.ok()) {
		i_fatal("Invalid setting director_health_deciders=%s: %s",
			set.health_deciders.c_str(), deciders.error().c_str());
	}
	cfg.deciders = *deciders;
	if (!set.health_login_file.empty())
		cfg.login = read_health_login(set.health_login_file);
	core::Status st = core::validate_health_config(cfg);
	if (!st.ok())
		i_fatal("Invalid health check settings: %s", st.error().c_str());
	return cfg;
}

extern "C" void client_connected(struct master_service_connection *conn)
{
	adapter::run_noexcept("accepting a connection", [conn]() {
		ListenerType type = conn->fifo ? ListenerType::notify
					       : listener_types.at(size_t(conn->listen_fd));
		service->client_connected(conn, type);
	});
}

void main_preinit()
{
	// Die with the master even with shutdown_clients=no: two directors
	// serving the same base_dir would break everything.
	master_service_set_die_with_master(master_service, TRUE);

	struct ip_addr ring_ip;
	i_zero(&ring_ip);
	in_port_t ring_port;
	init_listeners(&ring_ip, &ring_port);

	adapter::DirectorSettings set = adapter::director_settings_get();
	if (ring_port == 0 && !set.director_servers.empty()) {
		i_fatal("No inet_listeners defined for director service "
			"(for standalone keep director_servers empty)");
	}
	RingSetup ring = init_directors(set, ring_ip, ring_port);
	// While still root and outside the chroot.
	std::optional<adapter::StateFileLocation> state_loc = state_file_open_location(set);
	core::DirectorConfig cfg = make_config(set);
	std::string ring_secret;
	if (!set.ring_secret_file.empty()) {
		if (ring.directors.empty()) {
			i_fatal("director_ring_secret_file=%s: set, but director_servers is empty "
				"(a standalone director has no ring)", set.ring_secret_file.c_str());
		}
		ring_secret = read_ring_secret(set.ring_secret_file);
	}
	service = std::make_unique<DirectorService>(set, std::move(cfg));
	if (!ring_secret.empty())
		service->core().set_ring_secret(std::move(ring_secret), service->random());
	core::StateIdentity identity;
	add_mail_servers(service->core(), set, identity.mail_servers);
	if (state_loc) {
		for (const auto &d : ring.directors)
			identity.director_servers.push_back({d.ip, d.port});
		if (!ring.directors.empty())
			identity.self = {ring.self_ip, ring.self_port};
		identity.username_hash = set.director_username_hash;
		auto keeper = std::make_unique<StateKeeper>(*service, std::move(*state_loc),
							    identity.fingerprint(),
							    set.state_interval_secs);
		// Directors added at runtime come back too (the ones configured are
		// in the file as well, unless the ring removed them).
		for (const auto &d : keeper->restore(service->now())) {
			bool known = false;
			for (const auto &c : ring.directors)
				known = known || (c.ip == d.ip && c.port == d.port);
			if (!known && !ring.directors.empty())
				ring.directors.push_back(d);
		}
		service->set_state_keeper(std::move(keeper));
	}
	if (ring.directors.empty()) {
		service->core().start_alone(service->now(), ring_port);
	} else {
		service->set_self(ring.self_ip);
		core::Effects fx;
		service->core().ring_start(ring.directors, ring.self_ip, ring.self_port,
					   service->now(), fx);
		service->run_effects(fx);
	}

	service->connect_privileged();

	if (auto health = make_health_config(set, ring_port)) {
		std::optional<core::HealthDecider> self;
		std::optional<core::IpAddr> source;
		// A ring of one (director_servers lists only this director) has
		// no peer to share the decision with: it decides as a standalone
		// director does, unless director_health_deciders leaves it out.
		bool ring_of_one = std::all_of(
			ring.directors.begin(), ring.directors.end(),
			[&ring](const core::RingDirectorConfig &d) {
				return d.ip == ring.self_ip && d.port == ring.self_port;
			});
		core::HealthDecider me{ring.self_ip, ring.self_port};
		bool excluded = !health->deciders.empty() &&
				std::find(health->deciders.begin(), health->deciders.end(),
					  me) == health->deciders.end();
		if (!ring.directors.empty())
			source = ring.self_ip;
		if (!ring.directors.empty() && (!ring_of_one || excluded)) {
			self = me;
			if (health->deciders.empty()) {
				e_warning(adapter::director_root_event(),
					  "health: director_health_deciders is empty: backends are "
					  "checked but no director changes host states");
			}
		}
		service->start_health(std::move(*health), self, source);
	}

	restrict_access_by_env(RESTRICT_ACCESS_FLAG_ALLOW_ROOT, nullptr);
	restrict_access_allow_coredumps(TRUE);
	if (StateKeeper *keeper = service->state_keeper())
		keeper->start();
}

} // namespace

int main(int argc, char *argv[])
{
	const auto flags = static_cast<enum master_service_flags>(
		MASTER_SERVICE_FLAG_NO_IDLE_DIE | adapter::stats_client_master_service_flags());
	master_service = master_service_init("director", flags, &argc, &argv, "Dt:");
	bool debug = false;
	int c;
	while ((c = master_getopt(master_service)) > 0) {
		switch (c) {
		case 'D':
			debug = true;
			break;
		case 't':
			// Stock's test harness option; we accept and ignore it.
			break;
		default:
			return FATAL_DEFAULT;
		}
	}
	adapter::director_settings_read();
	master_service_init_log(master_service);
	adapter::stats_client_start();

	main_preinit();
	event_set_forced_debug(adapter::director_root_event(), debug);
	master_service_init_finish(master_service);
	master_service_run(master_service, client_connected);

	// Tell ring peers why we go, as stock does, before closing everything.
	core::Effects fx;
	service->core().ring_shutdown(service->now(), fx);
	service->run_effects(fx);
	// The state file is written last, so it holds everything up to the stop.
	if (StateKeeper *keeper = service->state_keeper())
		keeper->write_final(service->now());
	service.reset();
	adapter::director_root_event_free();
	master_service_deinit(&master_service);
	return 0;
}
