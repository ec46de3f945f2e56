// libFuzzer target: the single-director state machine. The input is decoded as a
// sequence of operations (lookups, proxy-notify, ticks, admin commands, ipc and flush
// completions) driven with explicit, monotonic time; invariants are checked after
// every step and, at the end, the director must drain: every job finished, every
// lookup answered exactly once, every deferred admin reply sent. Any violation aborts.
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "director.h"

using namespace director::core;

namespace {

// FUZZ_DIRECTOR_TRACE=1 prints every operation (to reduce a failing input by hand).
bool tracing()
{
	static const bool on = getenv("FUZZ_DIRECTOR_TRACE") != nullptr;
	return on;
}

__attribute__((format(printf, 1, 2))) void trace(const char *fmt, ...)
{
	if (!tracing())
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

[[noreturn]] void fail(const char *what, size_t step)
{
	fprintf(stderr, "fuzz-director: invariant failed at step %zu: %s\n", step, what);
	abort();
}

struct NullLog : LogSink {
	void log(LogLevel, const std::string &message) override
	{
		if (message.empty())
			abort();
	}
};

// Reads the input byte by byte; past the end it yields zeros.
struct Bytes {
	const uint8_t *p;
	size_t n;
	size_t i = 0;
	bool done() const { return i >= n; }
	uint8_t u8() { return i < n ? p[i++] : 0; }
	size_t pick(size_t count) { return count == 0 ? 0 : u8() % count; }
	bool bit() { return (u8() & 1) != 0; }
};

const char *const host_ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
				"10.0.0.5", "10.0.0.6", "2001:db8::1", "2001:db8::2"};
const char *const tags[] = {"", "a", "b", "zz"};
const char *const users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7",
			     "U0", "u1*master", "x@d1", "y@d1", "x@d2", "", "u8", "u9"};
const std::optional<unsigned> vhost_choices[] = {std::nullopt, 0u, 1u, 5u, 100u, 1000u, 1001u, 2u};

struct Harness {
	NullLog log;
	Director dir;
	Effects fx;
	int64_t now;
	size_t step = 0;

	struct Request {
		std::string tag;
		bool answered = false;
		bool cancelled = false;
	};
	std::map<RequestId, Request> requests;
	RequestId next_request = 1;
	std::set<JobId> ipc_jobs;   // issued, ipc_done not yet called
	std::set<JobId> flush_jobs; // issued, flush_done not yet called
	std::set<JobId> seen_jobs;  // every ipc/flush id ever issued
	struct AdminWait {
		bool gone = false;
		bool replied = false;
	};
	std::map<JobId, AdminWait> admin_waits;
	JobId next_admin_job = 1;

	Harness(DirectorConfig cfg, int64_t t0) : dir(std::move(cfg), log), now(t0) {}

	IpAddr ip(size_t i) const { return *IpAddr::parse(host_ips[i]); }

	const HostListEntry *find_host(const std::vector<HostListEntry> &list, const IpAddr &a)
	{
		for (const HostListEntry &h : list) {
			if (h.ip == a)
				return &h;
		}
		return nullptr;
	}

	void no_deferral(const AdminReply &r)
	{
		if (r.later)
			fail("admin command without a job was deferred", step);
		if (r.line.empty())
			fail("admin command replied with an empty line", step);
	}

	void admin_reply(JobId job, const AdminReply &r)
	{
		trace("  => %s\n", r.later ? "(deferred)" : r.line.c_str());
		if (r.later)
			admin_waits[job] = AdminWait{};
		else if (r.line.empty())
			fail("admin command replied with an empty line", step);
	}

	// Consumes fx, checking every effect.
	void absorb()
	{
		std::vector<HostListEntry> list = dir.host_list();
		for (const Effects::LookupDone &l : fx.lookups) {
			auto it = requests.find(l.id);
			if (it == requests.end())
				fail("answer for a lookup never made", step);
			if (it->second.answered)
				fail("lookup answered twice", step);
			if (it->second.cancelled)
				fail("cancelled lookup answered", step);
			it->second.answered = true;
			trace("  -> lookup id=%llu %s\n", (unsigned long long)l.id,
			      l.host ? l.host->ip.to_string().c_str() : l.error.c_str());
			if (l.host) {
				const HostListEntry *h = find_host(list, l.host->ip);
				if (h == nullptr)
					fail("lookup answered with a host not in host_list()", step);
				if (h->tag != it->second.tag)
					fail("lookup answered with a host of another tag", step);
			} else if (l.error.empty()) {
				fail("failed lookup without an error", step);
			}
		}
		for (const Effects::IpcCommand &c : fx.ipc) {
			trace("  -> ipc id=%llu '%s'\n", (unsigned long long)c.id, c.line.c_str());
			if (!seen_jobs.insert(c.id).second)
				fail("ipc job id reused", step);
			if (c.line.find('\n') != std::string::npos)
				fail("ipc line contains LF", step);
			ipc_jobs.insert(c.id);
		}
		for (const Effects::FlushProgram &f : fx.flushes) {
			trace("  -> flush id=%llu\n", (unsigned long long)f.id);
			if (!seen_jobs.insert(f.id).second)
				fail("flush job id reused", step);
			if (find_host(list, f.new_host_ip) == nullptr)
				fail("flush program names an unknown new host", step);
			flush_jobs.insert(f.id);
		}
		for (const Effects::AdminDone &a : fx.admin) {
			auto it = admin_waits.find(a.id);
			if (it == admin_waits.end())
				fail("deferred admin reply for a job that was not deferred", step);
			if (it->second.replied)
				fail("deferred admin reply sent twice", step);
			if (it->second.gone)
				fail("deferred admin reply after admin_gone()", step);
			if (a.reply.empty())
				fail("deferred admin reply is empty", step);
			it->second.replied = true;
			trace("  -> admin job=%llu '%s'\n", (unsigned long long)a.id, a.reply.c_str());
		}
		if (!fx.ring_connects.empty() || !fx.ring_sends.empty() || !fx.ring_closes.empty())
			fail("a standalone director produced ring effects", step);
		fx = Effects();
		check(list);
	}

	void check(const std::vector<HostListEntry> &list)
	{
		size_t sum = 0;
		for (const HostListEntry &h : list)
			sum += h.user_count;
		if (sum != dir.user_count())
			fail("user_count() differs from the sum of host user counts", step);
		size_t pending = 0;
		for (const auto &[id, r] : requests) {
			if (!r.answered && !r.cancelled)
				pending++;
		}
		if (pending != dir.delayed_lookups())
			fail("delayed_lookups() differs from the unanswered lookups", step);
		if (dir.users_kicking() != ipc_jobs.size())
			fail("users_kicking() differs from the ipc commands still running", step);
		std::vector<UserListEntry> all = dir.user_list(std::nullopt);
		if (all.size() != dir.user_count())
			fail("user_list() size differs from user_count()", step);
		for (const UserListEntry &u : all) {
			if (find_host(list, u.host) == nullptr)
				fail("user_list() names a host not in host_list()", step);
		}
	}

	void op(Bytes &in)
	{
		switch (in.u8() % 16) {
		case 0:
		case 1: {
			RequestId id = next_request++;
			const char *user = users[in.pick(16)];
			std::string tag = tags[in.pick(4)];
			requests[id] = Request{tag};
			trace("t=%lld lookup id=%llu user='%s' tag='%s'\n", (long long)now,
			      (unsigned long long)id, user, tag.c_str());
			dir.lookup(id, user, tag, now, fx);
			bool immediate = false;
			std::optional<IpAddr> answered;
			for (const auto &l : fx.lookups) {
				if (l.id == id && l.host) {
					immediate = true;
					answered = l.host->ip;
				}
			}
			absorb();
			if (immediate) {
				UserLookup ul = dir.user_lookup(dir.user_hash(user), tag, now);
				if (!ul.current || *ul.current != *answered)
					fail("USER-LOOKUP does not show the host just answered", step);
			}
			break;
		}
		case 2: {
			RequestId id = in.pick(unsigned(next_request) + 1);
			trace("cancel_lookup id=%llu\n", (unsigned long long)id);
			dir.cancel_lookup(id);
			auto it = requests.find(id);
			if (it != requests.end() && !it->second.answered)
				it->second.cancelled = true;
			absorb();
			break;
		}
		case 3: {
			const char *user = users[in.pick(16)];
			trace("t=%lld notify_alive '%s'\n", (long long)now, user);
			dir.notify_alive(user, now, fx);
			absorb();
			break;
		}
		case 4: {
			uint8_t b = in.u8();
			now += b < 200 ? b % 40 : int64_t(b - 199) * 60;
			trace("t=%lld tick\n", (long long)now);
			dir.tick(now, fx);
			absorb();
			break;
		}
		case 5: {
			size_t h = in.pick(8);
			const char *tag = tags[in.pick(3)];
			auto vhosts = vhost_choices[in.pick(8)];
			bool update_only = in.bit();
			JobId job = next_admin_job++;
			trace("host_set job=%llu %s tag='%s' vhosts=%d update_only=%d\n",
			      (unsigned long long)job, host_ips[h], tag, vhosts ? int(*vhosts) : -1,
			      int(update_only));
			admin_reply(job, dir.host_set(job, ip(h), tag, vhosts, update_only, now, fx));
			absorb();
			break;
		}
		case 6: {
			size_t h = in.pick(8);
			JobId job = next_admin_job++;
			bool down = in.bit();
			trace("host_set_down job=%llu %s down=%d\n", (unsigned long long)job, host_ips[h],
			      int(down));
			admin_reply(job, dir.host_set_down(job, ip(h), down, now, fx));
			absorb();
			break;
		}
		case 7: {
			JobId job = next_admin_job++;
			size_t h = in.pick(8);
			trace("host_remove job=%llu %s\n", (unsigned long long)job, host_ips[h]);
			admin_reply(job, dir.host_remove(job, ip(h), now, fx));
			absorb();
			break;
		}
		case 8: {
			uint8_t b = in.u8();
			JobId job = next_admin_job++;
			trace("host_flush job=%llu %s\n", (unsigned long long)job,
			      b % 9 == 8 ? "(all)" : host_ips[b % 9]);
			admin_reply(job, dir.host_flush(job,
							b % 9 == 8 ? std::nullopt
								   : std::optional<IpAddr>(ip(b % 9)),
							now, fx));
			absorb();
			break;
		}
		case 9: {
			uint8_t b = in.u8();
			JobId job = next_admin_job++;
			auto which = b % 9 == 8 ? std::nullopt : std::optional<IpAddr>(ip(b % 9));
			unsigned par = 1 + unsigned(in.pick(4));
			trace("t=%lld host_reset_users job=%llu %s max_parallel=%u\n", (long long)now,
			      (unsigned long long)job, b % 9 == 8 ? "(all)" : host_ips[b % 9], par);
			admin_reply(job, dir.host_reset_users(job, which, par, now, fx));
			absorb();
			break;
		}
		case 10: {
			uint8_t b = in.u8();
			uint32_t hash = b < 128 ? dir.user_hash(users[b % 16]) : uint32_t(b);
			size_t h = in.pick(8);
			trace("t=%lld user_move hash=%u %s\n", (long long)now, hash, host_ips[h]);
			AdminReply r = dir.user_move(hash, ip(h), now, fx);
			no_deferral(r);
			if (r.line != "OK" && r.line != "NOTFOUND" && r.line != "TRYAGAIN")
				fail("unexpected USER-MOVE reply", step);
			absorb();
			break;
		}
		case 11: {
			JobId job = next_admin_job++;
			bool alt = in.bit();
			bool nowait = in.bit();
			const char *user = users[in.pick(16)];
			trace("user_kick job=%llu alt=%d nowait=%d '%s'\n", (unsigned long long)job,
			      int(alt), int(nowait), user);
			admin_reply(job, dir.user_kick(job, alt ? "user_x" : "", user, nowait, fx));
			absorb();
			break;
		}
		case 12: {
			uint8_t b = in.u8();
			bool ok = in.bit();
			JobId id;
			if (ipc_jobs.empty() || b == 255) {
				id = b; // unknown or already finished
			} else {
				auto it = ipc_jobs.begin();
				std::advance(it, b % ipc_jobs.size());
				id = *it;
			}
			if (ipc_jobs.erase(id) == 0 && flush_jobs.count(id) != 0)
				break; // an ipc completion for a flush job: not a caller we model
			trace("t=%lld ipc_done id=%llu ok=%d\n", (long long)now, (unsigned long long)id,
			      int(ok));
			dir.ipc_done(id, ok, ok ? "" : "ipc failed", now, fx);
			absorb();
			break;
		}
		case 13: {
			uint8_t b = in.u8();
			bool ok = in.bit();
			JobId id;
			if (flush_jobs.empty() || b == 255) {
				id = b;
			} else {
				auto it = flush_jobs.begin();
				std::advance(it, b % flush_jobs.size());
				id = *it;
			}
			if (flush_jobs.erase(id) == 0 && ipc_jobs.count(id) != 0)
				break;
			trace("t=%lld flush_done id=%llu ok=%d\n", (long long)now,
			      (unsigned long long)id, int(ok));
			dir.flush_done(id, ok, now, fx);
			absorb();
			break;
		}
		case 14: {
			JobId job = 1 + in.pick(unsigned(next_admin_job));
			trace("admin_gone job=%llu\n", (unsigned long long)job);
			dir.admin_gone(job);
			auto it = admin_waits.find(job);
			if (it != admin_waits.end())
				it->second.gone = true;
			absorb();
			break;
		}
		default: {
			uint8_t b = in.u8();
			uint32_t hash = dir.user_hash(users[b % 16]);
			UserLookup ul = dir.user_lookup(hash, tags[in.pick(4)], now);
			std::vector<HostListEntry> list = dir.host_list();
			if (ul.current && find_host(list, *ul.current) == nullptr)
				fail("USER-LOOKUP current host not in host_list()", step);
			if (ul.hashed && find_host(list, *ul.hashed) == nullptr)
				fail("USER-LOOKUP hashed host not in host_list()", step);
			// A user being moved is kept past its expiry (as stock does).
			if (ul.current && ul.expire_time <= now && dir.users_moving() == 0)
				fail("USER-LOOKUP shows an expired user", step);
			auto only = b & 0x80 ? std::optional<IpAddr>(ip(b % 8)) : std::nullopt;
			for (const UserListEntry &u : dir.user_list(only)) {
				if (only && u.host != *only)
					fail("USER-LIST for a host lists another host", step);
			}
			(void)dir.hosts_removed_from_config();
			absorb();
			break;
		}
		}
	}

	// Finishes every job and lets time pass until nothing is left running.
	void drain()
	{
		trace("drain\n");
		for (int round = 0; round < 10000; round++) {
			step++;
			while (!ipc_jobs.empty()) {
				JobId id = *ipc_jobs.begin();
				ipc_jobs.erase(ipc_jobs.begin());
				trace("t=%lld ipc_done id=%llu ok=1\n", (long long)now,
				      (unsigned long long)id);
				dir.ipc_done(id, true, "", now, fx);
				absorb();
			}
			while (!flush_jobs.empty()) {
				JobId id = *flush_jobs.begin();
				flush_jobs.erase(flush_jobs.begin());
				trace("t=%lld flush_done id=%llu ok=1\n", (long long)now,
				      (unsigned long long)id);
				dir.flush_done(id, true, now, fx);
				absorb();
			}
			now += dir.config().user_kick_delay_secs + 1;
			trace("t=%lld tick\n", (long long)now);
			dir.tick(now, fx);
			absorb();
			if (ipc_jobs.empty() && flush_jobs.empty() && dir.users_moving() == 0 &&
			    dir.delayed_lookups() == 0) {
				bool waiting = false;
				for (const auto &[job, w] : admin_waits)
					waiting |= !w.gone && !w.replied;
				if (!waiting)
					break;
			}
		}
		if (dir.users_moving() != 0)
			fail("moves still running after draining", step);
		if (dir.users_kicking() != 0)
			fail("kicks still counted after every ipc command finished", step);
		if (dir.delayed_lookups() != 0)
			fail("lookups still queued after draining", step);
		for (const auto &[id, r] : requests) {
			if (!r.answered && !r.cancelled)
				fail("a lookup was never answered", step);
		}
		for (const auto &[job, w] : admin_waits) {
			if (!w.gone && !w.replied)
				fail("a deferred admin command never got its reply", step);
		}
	}
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Bytes in{data, size};
	DirectorConfig cfg;
	uint8_t c = in.u8();
	static const uint32_t expire_choices[] = {10, 60, 900, 1};
	cfg.user_expire_secs = expire_choices[c & 3];
	cfg.user_kick_delay_secs = (c >> 2) & 3;
	cfg.flush_program_set = (c & 0x10) != 0;
	if (c & 0x40)
		cfg.username_hash = *UsernameHash::parse("%Ln"); // users of many domains collide
	uint8_t p = in.u8();
	cfg.max_parallel_moves = 1 + (p & 3);
	cfg.max_parallel_kicks = 1 + ((p >> 2) & 3);

	const int64_t t0 = 1700000000;
	Harness h(std::move(cfg), t0);
	// Initial config: a few hosts of director_mail_servers, some tagged.
	uint8_t hosts = in.u8();
	for (size_t i = 0; i < 8; i++) {
		if (hosts & (1u << i))
			h.dir.add_config_host(h.ip(i), i == 5 ? "mail5.example.com" : "", tags[i % 3]);
	}
	h.dir.start_alone(t0);
	while (!in.done() && h.step < 2000) {
		h.step++;
		h.op(in);
	}
	h.drain();
	return 0;
}
