// Shared by the Director fuzz targets (fuzz-director.cc, fuzz-ring-director.cc): input
// decoding, tracing, and the bookkeeping of what the director was asked and what it
// answered, with the checks that hold for a standalone director and a ring member alike.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "admin-protocol.h"
#include "director.h"

namespace director::fuzz {

using namespace director::core;

// FUZZ_DIRECTOR_TRACE=1 prints every operation (to reduce a failing input by hand).
inline bool tracing()
{
	static const bool on = getenv("FUZZ_DIRECTOR_TRACE") != nullptr;
	return on;
}

__attribute__((format(printf, 1, 2))) inline void trace(const char *fmt, ...)
{
	if (!tracing())
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

// The target's name, for failure messages; set by each target.
extern const char *const target_name;

[[noreturn]] inline void fail(const char *what, size_t step)
{
	fprintf(stderr, "%s: invariant failed at step %zu: %s\n", target_name, step, what);
	abort();
}

struct NullLog : LogSink {
	void log(LogLevel, const std::string &message) override
	{
		if (message.empty())
			abort();
		trace("  log: %s\n", message.c_str());
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
	// The bytes up to the next LF (consumed, not returned), at most 4096.
	std::string_view line()
	{
		size_t start = i;
		while (i < n && p[i] != '\n' && i - start < 4096)
			i++;
		std::string_view s(reinterpret_cast<const char *>(p) + start, i - start);
		if (i < n && p[i] == '\n')
			i++;
		return s;
	}
};

inline const HostListEntry *find_host(const std::vector<HostListEntry> &list, const IpAddr &a)
{
	for (const HostListEntry &h : list) {
		if (h.ip == a)
			return &h;
	}
	return nullptr;
}

// What the director was asked (lookups, jobs, deferred admin commands) and what it
// answered so far.
struct Ledger {
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

	RequestId new_request(std::string tag)
	{
		RequestId id = next_request++;
		requests[id] = Request{std::move(tag)};
		return id;
	}

	void cancelled(RequestId id)
	{
		auto it = requests.find(id);
		if (it != requests.end() && !it->second.answered)
			it->second.cancelled = true;
	}

	void admin_gone(JobId job)
	{
		auto it = admin_waits.find(job);
		if (it != admin_waits.end())
			it->second.gone = true;
	}

	void admin_reply(JobId job, const AdminReply &r)
	{
		trace("  => %s\n",
		      r.later ? "(deferred)" : std::string(admin_result_line(r.result)).c_str());
		if (r.later)
			admin_waits[job] = AdminWait{};
	}

	// Checks the lookup, ipc, flush and admin effects against what was asked
	// (`list` is host_list() after the call that produced them).
	void record(const Effects &fx, const std::vector<HostListEntry> &list)
	{
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
		for (const Effects::KickCommand &c : fx.kicks) {
			std::string line = kick_ipc_line(c.kick);
			trace("  -> kick id=%llu '%s'\n", (unsigned long long)c.id, line.c_str());
			if (!seen_jobs.insert(c.id).second)
				fail("kick job id reused", step);
			if (line.find('\n') != std::string::npos)
				fail("ipc kick line contains LF", step);
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
			it->second.replied = true;
			trace("  -> admin job=%llu '%s'\n", (unsigned long long)a.id,
			      std::string(admin_result_line(a.result)).c_str());
		}
	}

	// The director's counters agree with the ledger and with each other.
	// `kicks_exact`: every running ipc command is a kick it counts.
	void check(const Director &dir, const std::vector<HostListEntry> &list, bool kicks_exact)
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
		if (kicks_exact ? dir.users_kicking() != ipc_jobs.size()
				: dir.users_kicking() > ipc_jobs.size())
			fail("users_kicking() does not match the ipc commands still running", step);
		std::vector<UserListEntry> all = dir.user_list(std::nullopt);
		if (all.size() != dir.user_count())
			fail("user_list() size differs from user_count()", step);
		for (const UserListEntry &u : all) {
			if (find_host(list, u.host) == nullptr)
				fail("user_list() names a host not in host_list()", step);
		}
	}

	// Reports every running ipc command and flush program as done (ok).
	void finish_jobs(Director &dir, int64_t now, Effects &fx)
	{
		while (!ipc_jobs.empty()) {
			JobId id = *ipc_jobs.begin();
			ipc_jobs.erase(ipc_jobs.begin());
			trace("t=%lld ipc_done id=%llu ok=1\n", (long long)now, (unsigned long long)id);
			dir.kick_done(id, true, "", now, fx);
		}
		while (!flush_jobs.empty()) {
			JobId id = *flush_jobs.begin();
			flush_jobs.erase(flush_jobs.begin());
			trace("t=%lld flush_done id=%llu ok=1\n", (long long)now, (unsigned long long)id);
			dir.flush_done(id, true, now, fx);
		}
	}

	bool quiet(const Director &dir) const
	{
		if (!ipc_jobs.empty() || !flush_jobs.empty() || dir.users_moving() != 0 ||
		    dir.delayed_lookups() != 0)
			return false;
		for (const auto &[job, w] : admin_waits) {
			if (!w.gone && !w.replied)
				return false;
		}
		return true;
	}

	// After draining: nothing left running, everything asked was answered.
	void check_drained(const Director &dir) const
	{
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

} // namespace director::fuzz
