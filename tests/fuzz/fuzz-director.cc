// libFuzzer target: the single-director state machine. The input is decoded as a
// sequence of operations (lookups, proxy-notify, ticks, admin commands, ipc and flush
// completions) driven with explicit, monotonic time; invariants are checked after
// every step and, at the end, the director must drain: every job finished, every
// lookup answered exactly once, every deferred admin reply sent. Any violation aborts.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "director-harness.h"

const char *const director::fuzz::target_name = "fuzz-director";

using namespace director::fuzz;

namespace {

const char *const host_ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
				"10.0.0.5", "10.0.0.6", "2001:db8::1", "2001:db8::2"};
const char *const tags[] = {"", "a", "b", "zz"};
const char *const users[] = {"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7",
			     "U0", "u1*master", "x@d1", "y@d1", "x@d2", "", "u8", "u9"};
const std::optional<unsigned> vhost_choices[] = {std::nullopt, 0u, 1u, 5u, 100u, 1000u, 1001u, 2u};

struct Harness : Ledger {
	NullLog log;
	Director dir;
	Effects fx;
	int64_t now;

	Harness(DirectorConfig cfg, int64_t t0) : dir(std::move(cfg), log), now(t0) {}

	IpAddr ip(size_t i) const { return *IpAddr::parse(host_ips[i]); }

	void no_deferral(const AdminReply &r)
	{
		if (r.later)
			fail("admin command without a job was deferred", step);
	}

	// Consumes fx, checking every effect.
	void absorb()
	{
		std::vector<HostListEntry> list = dir.host_list();
		record(fx, list);
		if (!fx.ring_connects.empty() || !fx.ring_sends.empty() || !fx.ring_closes.empty())
			fail("a standalone director produced ring effects", step);
		fx = Effects();
		check(dir, list, true);
	}

	void op(Bytes &in)
	{
		switch (in.u8() % 16) {
		case 0:
		case 1: {
			const char *user = users[in.pick(16)];
			std::string tag = tags[in.pick(4)];
			RequestId id = new_request(tag);
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
			cancelled(id);
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
			if (r.result != AdminResult::ok && r.result != AdminResult::not_found &&
			    r.result != AdminResult::try_again)
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
			dir.kick_done(id, ok, ok ? "" : "ipc failed", now, fx);
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
			Ledger::admin_gone(job);
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
			finish_jobs(dir, now, fx);
			absorb();
			now += dir.config().user_kick_delay_secs + 1;
			trace("t=%lld tick\n", (long long)now);
			dir.tick(now, fx);
			absorb();
			if (quiet(dir))
				break;
		}
		check_drained(dir);
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
