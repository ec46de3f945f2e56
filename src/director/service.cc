// DirectorService: connection ownership, the 1 s core tick, and carrying out
// Effects through the adapter (kick client, program client).
#include "director/service.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "adapter/clock.h"
#include "adapter/dovecot.h"
#include "adapter/metrics-http.h"
#include "adapter/named-event.h"
#include "core/metrics.h"
#include "director/events.h"
#include "director/health.h"
#include "director/state-keeper.h"

extern "C" {
#include "master-service.h"
#include "process-title.h"
}

namespace director {

namespace {
constexpr unsigned flush_connect_timeout_msecs = 10 * 1000;
// A flush program still running when the core gives up on the user move is
// of no use any more: it is destroyed then (a flush socket that accepts and
// never answers would otherwise keep its descriptor for good).
constexpr unsigned flush_run_timeout_msecs = core::user_move_timeout_secs * 1000;
} // namespace

Connection::Connection(DirectorService &service)
	: service_(service), id_(service.register_connection(this))
{
}

Connection::~Connection()
{
	if (counted_as_client_)
		master_service_client_connection_destroyed(master_service);
}

void Connection::close()
{
	if (closed_)
		return;
	closed_ = true;
	service_.connection_closed(this);
}

DirectorService::DirectorService(adapter::DirectorSettings settings, core::DirectorConfig config)
	: settings_(std::move(settings)), event_(adapter::director_root_event()), log_(event_),
	  core_(std::move(config), log_)
{
	kicks_ = adapter::KickClient::create(event_, core_.config().username_hash);
	tick_timer_.repeat(1000, [this]() { tick(); });
}

DirectorService::~DirectorService()
{
	state_keeper_.reset();
	health_.reset();
	stopping_ = true;
	kicks_.reset();
	tick_timer_.reset();
	kick_delay_timer_.reset();
	graveyard_timer_.reset();
	connections_.clear();
	flushes_.clear();
	reap();
	metrics_http_.reset();
}

void DirectorService::set_state_keeper(std::unique_ptr<StateKeeper> keeper)
{
	state_keeper_ = std::move(keeper);
}

void DirectorService::connect_privileged()
{
	kicks_->connect();
}

void DirectorService::start_health(core::HealthConfig config,
				   std::optional<core::HealthDecider> self,
				   std::optional<core::IpAddr> source)
{
	health_ = std::make_unique<HealthMonitor>(*this, std::move(config), self, source);
}

core::Now DirectorService::now() const
{
	return adapter::now();
}

uint64_t DirectorService::register_connection(Connection *)
{
	return next_conn_id_++;
}

void DirectorService::connection_closed(Connection *conn)
{
	auto it = connections_.find(conn->id());
	if (it == connections_.end())
		return;
	lookup_sources_.erase(conn->id());
	if (auto *t = dynamic_cast<RingTransport *>(conn)) {
		ring_bytes_in_done_ += t->bytes_read();
		ring_bytes_out_done_ += t->bytes_sent();
	}
	graveyard_.push_back(std::move(it->second));
	connections_.erase(it);
	schedule_reap();
}

void DirectorService::schedule_reap()
{
	if (!graveyard_timer_.active())
		graveyard_timer_.once(0, [this]() { reap(); });
}

void DirectorService::reap()
{
	graveyard_.clear();
	dead_flushes_.clear();
}

void DirectorService::client_connected(master_service_connection *conn, ListenerType type)
{
	std::unique_ptr<Connection> c;
	switch (type) {
	case ListenerType::auth:
	case ListenerType::userdb:
	case ListenerType::authreply:
		c = make_auth_connection(*this, conn->fd, type);
		break;
	case ListenerType::admin:
		c = make_admin_connection(*this, conn->fd);
		break;
	case ListenerType::notify:
		c = make_notify_connection(*this, conn->fd, conn->fifo);
		break;
	case ListenerType::metrics:
		if (!metrics_http_) {
			metrics_http_ = std::make_unique<adapter::MetricsHttpServer>(
				event_, [this](std::string &content_type_r) {
					content_type_r = core::openmetrics_content_type;
					return core::format_openmetrics(metrics_snapshot(*this));
				});
		}
		c = make_metrics_connection(*this, *metrics_http_, conn->fd);
		break;
	case ListenerType::ring: {
		auto ip = core::IpAddr::parse(net_ip2addr(&conn->remote_ip));
		core::Effects fx;
		core::RingConnId id = ip ? core_.ring_accept(*ip, now(), fx) : 0;
		if (id == 0)
			return; // refused and logged by the core
		c = make_ring_connection(*this, conn->fd, id, false);
		ring_conns_[id] = c->id();
		master_service_client_connection_accept(conn);
		uint64_t cid = c->id();
		connections_.emplace(cid, std::move(c));
		run_effects(fx);
		return;
	}
	}
	if (!c)
		return; // not accepted: the master service closes the fd
	master_service_client_connection_accept(conn);
	uint64_t id = c->id();
	if (type == ListenerType::auth || type == ListenerType::authreply)
		lookup_sources_[id] = "login";
	else if (type == ListenerType::userdb)
		lookup_sources_[id] = "userdb";
	connections_.emplace(id, std::move(c));
}

void DirectorService::start_lookup(uint64_t owner, core::RequestId id, std::string_view name,
				   const std::string &tag, core::Effects &fx)
{
	lookup_owners_[id] = LookupInfo{owner, tag, now_usecs()};
	core_.lookup(id, name, tag, now(), fx);
}

void DirectorService::cancel_lookup(core::RequestId id)
{
	lookup_owners_.erase(id);
	core_.cancel_lookup(id);
}

void DirectorService::run_batch(core::Effects &fx, const std::function<void()> &handle_input)
{
	try {
		handle_input();
	} catch (...) {
		run_effects(fx);
		throw;
	}
	run_effects(fx);
}

int64_t DirectorService::now_usecs()
{
	return adapter::mono_usecs();
}

// One per lookup answered: metric { filter = event=director_lookup_finished }
// counts logins by result. Sent at debug level: counted, not logged.
void DirectorService::lookup_finished_event(const LookupInfo &info,
					    const core::Effects::LookupDone &done)
{
	if (!adapter::debug_events_possible(event_))
		return; // nobody counts or logs it: not worth building
	auto src = lookup_sources_.find(info.owner);
	const char *source = src == lookup_sources_.end() ? "login" : src->second;
	std::string result = done.host ? "ok"
			     : done.error.compare(0, 7, "Timeout") == 0 ? "timeout"
									 : "fail";
	std::string host = done.host ? done.host->ip.to_string() : "";
	uint64_t delay = uint64_t(std::max<int64_t>(0, now_usecs() - info.started_usecs));
	adapter::send_named_debug_event(
		event_, "director_lookup_finished",
		{{"result", result},
		 {"host", host},
		 {"tag", info.tag},
		 {"delay_usecs", delay},
		 {"source", std::string(source)}},
		[&]() {
			return "Lookup finished: result=" + result +
			       (host.empty() ? "" : " host=" + host) + " source=" + source +
			       " delay=" + std::to_string(delay / 1000) + " ms";
		});
}

void DirectorService::run_effects(core::Effects &fx)
{
	run_effects_batch(fx);
	observe_state();
	arm_kick_delay_timer();
	arm_idle_work_timer();
}

void DirectorService::arm_idle_work_timer()
{
	if (!core_.idle_work_due() || idle_work_timer_.active())
		return;
	idle_work_timer_.once(0, [this]() { core_.run_idle_work(); });
}

// director_user_kick_delay is kept to the millisecond, as stock keeps it: the
// once-a-second tick alone would end a 2 s delay after anything from 1 to 3 s.
void DirectorService::arm_kick_delay_timer()
{
	std::optional<int64_t> at = core_.kick_delay_end_msecs();
	if (!at || (kick_delay_timer_.active() && kick_delay_at_msecs_ <= *at))
		return;
	kick_delay_at_msecs_ = *at;
	int64_t wait = std::max<int64_t>(0, *at - adapter::mono_msecs());
	kick_delay_timer_.once(unsigned(wait), [this]() {
		core::Effects fx;
		core_.end_kick_delays(now(), fx);
		run_effects(fx);
	});
}

void DirectorService::run_effects_batch(core::Effects &fx)
{
	// Carrying out an effect can produce more (a kick may fail
	// synchronously), so loop until the core is quiet.
	for (unsigned round = 0; !fx.empty() && round < 1000; round++) {
		core::Effects todo;
		std::swap(todo, fx);
		for (auto &done : todo.lookups) {
			auto it = lookup_owners_.find(done.id);
			if (it == lookup_owners_.end())
				continue;
			LookupInfo info = std::move(it->second);
			uint64_t owner = info.owner;
			lookup_owners_.erase(it);
			lookup_finished_event(info, done);
			auto conn = connections_.find(owner);
			if (conn == connections_.end())
				continue;
			if (auto *lo = dynamic_cast<LookupOwner *>(conn->second.get()))
				lo->lookup_done(done.id, done);
		}
		for (auto &cmd : todo.kicks) {
			kick_event(cmd);
			start_kick(cmd);
		}
		for (auto &flush : todo.flushes)
			start_flush(flush);
		for (auto &fl : todo.host_flushes)
			host_flushed_event(fl);
		for (auto &mv : todo.user_moves)
			user_moved_event(mv);
		for (auto &admin : todo.admin) {
			auto conn = connections_.find(admin.id);
			if (conn == connections_.end())
				continue;
			if (auto *w = dynamic_cast<AdminWaiter *>(conn->second.get()))
				w->admin_done(admin.result);
		}
		for (core::JobId job : todo.admin_resume) {
			auto conn = connections_.find(job);
			if (conn == connections_.end())
				continue;
			if (auto *w = dynamic_cast<AdminWaiter *>(conn->second.get()))
				w->admin_resume();
		}
		for (auto &rc : todo.ring_connects)
			start_ring_connect(rc);
		for (auto &send : todo.ring_sends) {
			if (RingTransport *t = ring_transport(send.id)) {
				t->ring_send(send.data);
				if (core_.ring_wants_drain(send.id))
					t->ring_wait_drain();
			}
		}
		for (auto &hs : todo.ring_handshakes) {
			if (RingTransport *t = ring_transport(hs.id)) {
				t->handshaked_usecs = now_usecs();
				ring_event_connected(*t, hs.users);
			}
		}
		for (auto &check : todo.ring_digest_checks)
			ring_digest_checked_event(ring_transport(check.id), check);
		for (auto &close : todo.ring_closes) {
			if (RingTransport *t = ring_transport(close.id)) {
				ring_event_disconnected(*t, close.reason);
				t->ring_close();
			}
			ring_conns_.erase(close.id);
		}
	}
}

RingTransport *DirectorService::ring_transport(core::RingConnId id)
{
	auto it = ring_conns_.find(id);
	if (it == ring_conns_.end())
		return nullptr;
	auto conn = connections_.find(it->second);
	if (conn == connections_.end())
		return nullptr;
	return dynamic_cast<RingTransport *>(conn->second.get());
}

void DirectorService::cork_ring()
{
	in_ring_input_ = true;
	for (auto &[rid, cid] : ring_conns_) {
		if (RingTransport *t = ring_transport(rid))
			t->cork();
	}
}

void DirectorService::uncork_ring()
{
	in_ring_input_ = false;
	for (auto &[rid, cid] : ring_conns_) {
		if (RingTransport *t = ring_transport(rid))
			t->uncork();
	}
}

void DirectorService::start_ring_connect(const core::Effects::RingConnect &rc)
{
	int fd = connect_ring(rc.ip, rc.port, self_ip_);
	if (fd == -1) {
		e_error(event_, "connect(%s:%u) failed: %m", rc.ip.to_string().c_str(), rc.port);
		core::Effects fx;
		core_.ring_closed(rc.id, std::string("connect() failed: ") + strerror(errno), now(),
				  fx);
		run_effects(fx);
		return;
	}
	std::unique_ptr<Connection> c =
		make_ring_connection(*this, fd, rc.id, true, rc.ip.to_string() + ":" +
							      std::to_string(rc.port));
	ring_conns_[rc.id] = c->id();
	uint64_t cid = c->id();
	connections_.emplace(cid, std::move(c));
}

void DirectorService::start_kick(const core::Effects::KickCommand &cmd)
{
	core::JobId id = cmd.id;
	// The client reports every kick exactly once, failed when the ipc
	// service or anvil does not answer within its reply timeout, so the
	// core's count of running kicks cannot leak behind a hung peer and
	// queued kicks go on (stock waits forever).
	kicks_->kick(cmd.kick, [this, id](bool ok, const std::string &error) {
		if (stopping_)
			return;
		core::Effects fx;
		core_.kick_done(id, ok, error, now(), fx);
		run_effects(fx);
	});
}

// director_flush_socket with %i / %h (and %{ip} / %{host}) expanded.
static std::string expand_flush_target(const std::string &tmpl, const std::string &ip,
				       const std::string &host)
{
	std::string out;
	for (size_t i = 0; i < tmpl.size(); i++) {
		if (tmpl[i] != '%' || i + 1 == tmpl.size()) {
			out += tmpl[i];
			continue;
		}
		std::string_view rest(tmpl.c_str() + i + 1);
		if (rest[0] == 'i') {
			out += ip;
			i += 1;
		} else if (rest[0] == 'h') {
			out += host;
			i += 1;
		} else if (rest.substr(0, 4) == "{ip}") {
			out += ip;
			i += 4;
		} else if (rest.substr(0, 6) == "{host}") {
			out += host;
			i += 6;
		} else if (rest[0] == '%') {
			out += '%';
			i += 1;
		} else {
			out += '%';
		}
	}
	return out;
}

void DirectorService::start_flush(const core::Effects::FlushProgram &flush)
{
	core::JobId id = flush.id;
	std::string target = expand_flush_target(settings_.director_flush_socket,
						 flush.new_host_ip.to_string(), flush.new_host_name);
	auto pc = std::make_unique<adapter::ProgramRunner>();
	std::string error;
	bool started = pc->start(
		event_, target, flush.args, flush_connect_timeout_msecs, flush_run_timeout_msecs,
		[this, id, target](bool ok, int status) {
			if (!ok && status != -1) {
				e_error(event_, "%s: Failed to flush user (exit status %d)",
					target.c_str(), status);
			}
			// Not destroyed inside its own callback: the graveyard
			// timer's next run does it.
			auto it = flushes_.find(id);
			if (it != flushes_.end()) {
				dead_flushes_.push_back(std::move(it->second));
				flushes_.erase(it);
				schedule_reap();
			}
			core::Effects fx;
			core_.flush_done(id, ok, now(), fx);
			run_effects(fx);
		},
		error);
	if (!started) {
		e_error(event_, "%s: Failed to flush user hash %s: %s", target.c_str(),
			flush.args[1].c_str(), error.c_str());
		core::Effects fx;
		core_.flush_done(id, false, now(), fx);
		run_effects(fx);
		return;
	}
	flushes_.emplace(id, std::move(pc));
}

void DirectorService::tick()
{
	core::Effects fx;
	core_.tick(now(), fx);
	run_effects(fx);
	if (settings_.verbose_proctitle)
		refresh_proctitle();
}

// As stock: "[U users, D delayed, M moving, K kicking, R+L req/s, I+O kB/s]",
// R = login and userdb lookups, L = lines from other directors, I/O = ring
// bytes received/sent, each per second.
void DirectorService::refresh_proctitle()
{
	uint64_t bytes_in = ring_bytes_in_done_, bytes_out = ring_bytes_out_done_;
	for (const auto &[id, conn] : connections_) {
		if (auto *t = dynamic_cast<RingTransport *>(conn.get())) {
			bytes_in += t->bytes_read();
			bytes_out += t->bytes_sent();
		}
	}
	std::string title = "[" + std::to_string(core_.user_count()) + " users";
	if (core_.delayed_lookups() > 0)
		title += ", " + std::to_string(core_.delayed_lookups()) + " delayed";
	if (core_.users_moving() > 0)
		title += ", " + std::to_string(core_.users_moving()) + " moving";
	if (core_.users_kicking() > 0)
		title += ", " + std::to_string(core_.users_kicking()) + " kicking";
	uint64_t requests = next_request_id_ - 1;
	title += ", " + std::to_string(requests - prev_requests_) + "+" +
		 std::to_string(ring_lines_ - prev_ring_lines_) + " req/s";
	title += ", " + std::to_string((bytes_in - prev_ring_bytes_in_) / 1024) + "+" +
		 std::to_string((bytes_out - prev_ring_bytes_out_) / 1024) + " kB/s]";
	prev_requests_ = requests;
	prev_ring_lines_ = ring_lines_;
	prev_ring_bytes_in_ = bytes_in;
	prev_ring_bytes_out_ = bytes_out;
	process_title_set(title.c_str());
}

} // namespace director
