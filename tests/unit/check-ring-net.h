// A ring of Director cores joined by an in-memory network, for the Check suites
// of the ring: no sockets, explicit time, every line delivered whole and in order.
#pragma once

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <check.h>

#include "check-fixtures.h"

#include "director.h"

namespace ring_net {

using namespace director::core;

inline constexpr int64_t t0 = 1700000000;

// N directors on 127.0.0.1..N:9090. Lines are delivered whole, in order,
// one director at a time, until the network is quiet. Directors start one
// after the other, each once the network is quiet, except that those from
// index `together_from` on start at the same moment.
class Net {
public:
	// Every line goes through `rewrite` when one is given.
	using Rewrite = std::function<std::string(std::string_view line)>;
	explicit Net(size_t n, DirectorConfig cfg = DirectorConfig(), size_t together_from = SIZE_MAX,
		     Rewrite rewrite_lines = nullptr)
		: rewrite(std::move(rewrite_lines))
	{
		std::vector<RingDirectorConfig> list;
		for (size_t i = 0; i < n; i++)
			list.push_back({addr(i), 9090});
		for (size_t i = 0; i < n; i++) {
			logs.push_back(std::make_unique<RecordingLog>());
			dirs.push_back(std::make_unique<Director>(cfg, *logs.back()));
			add_hosts_(*dirs[i]);
			fxs.emplace_back();
			up.push_back(true);
			wall_offset.push_back(0);
		}
		for (size_t i = 0; i < n; i++) {
			dirs[i]->ring_start(list, addr(i), 9090, at(i), fxs[i]);
			if (i < together_from || i + 1 == n)
				settle();
		}
		cfg_ = cfg;
	}

	// Director i's process ends: its connections close (its peers read EOF)
	// and it is down until start(i).
	void stop(size_t i)
	{
		std::vector<std::pair<std::pair<size_t, RingConnId>, End>> ends;
		for (const auto &[from, to] : links_) {
			if (from.first == i)
				ends.push_back({from, to});
		}
		for (const auto &[from, to] : ends) {
			links_.erase(from);
			links_.erase({to.dir, to.conn});
			if (to.conn != 0 && to.dir != i && up[to.dir])
				dirs[to.dir]->ring_closed(to.conn, "EOF", at(to.dir), fxs[to.dir]);
		}
		up[i] = false;
		settle();
	}

	// A new process for director i: `prepare` runs on it before it joins the
	// ring (a state restore, say).
	void start(size_t i, const std::function<void(Director &)> &prepare = nullptr)
	{
		logs[i] = std::make_unique<RecordingLog>();
		dirs[i] = std::make_unique<Director>(cfg_, *logs[i]);
		add_hosts_(*dirs[i]);
		fxs[i] = Effects();
		up[i] = true;
		if (prepare)
			prepare(*dirs[i]);
		std::vector<RingDirectorConfig> list;
		for (size_t j = 0; j < dirs.size(); j++)
			list.push_back({addr(j), 9090});
		dirs[i]->ring_start(list, addr(i), 9090, at(i), fxs[i]);
		settle();
	}

	static IpAddr addr(size_t i) { return IpAddr::v4(127, 0, 0, uint8_t(i + 1)); }

	// Runs every pending effect until nothing moves (bounded).
	void settle()
	{
		for (int round = 0; round < 10000; round++) {
			bool moved = false;
			for (size_t i = 0; i < dirs.size(); i++) {
				if (fxs[i].ring_connects.empty() && fxs[i].ring_sends.empty() &&
				    fxs[i].ring_closes.empty())
					continue;
				moved = true;
				Effects fx;
				std::swap(fx, fxs[i]);
				carry_out(i, fx);
				keep(fxs[i], fx);
			}
			if (!moved)
				return;
		}
		ck_abort_msg("ring did not settle");
	}

	void tick(int64_t secs)
	{
		for (int64_t s = 0; s < secs; s++) {
			now++;
			for (size_t i = 0; i < dirs.size(); i++) {
				if (up[i])
					dirs[i]->tick(at(i), fxs[i]);
			}
			settle();
		}
	}

	// The director stops answering (SIGSTOP): its input is dropped.
	void freeze(size_t i) { up[i] = false; }
	// It answers again, before its peers noticed: what it missed is lost.
	void thaw(size_t i) { up[i] = true; }

	bool all_synced() const
	{
		for (size_t i = 0; i < dirs.size(); i++) {
			if (!dirs[i]->ring_synced())
				return false;
		}
		return true;
	}

	std::string current(size_t i, const char *user)
	{
		UserLookup l = dirs[i]->user_lookup(dirs[i]->user_hash(user), "", at(i));
		return l.current ? l.current->to_string() : "";
	}

	// Lines for which `intercept(from, to, line)` says so are dropped (lost) or
	// held (delivered by release_held(), in order).
	enum class Fate { deliver, drop, hold };
	std::function<Fate(size_t from, size_t to, std::string_view line)> intercept;
	Rewrite rewrite;
	size_t held() const { return held_.size(); }
	void release_held()
	{
		std::vector<Held> held;
		held.swap(held_);
		for (const Held &h : held) {
			if (up[h.dir])
				dirs[h.dir]->ring_line(h.conn, h.line, at(h.dir), fxs[h.dir]);
		}
		settle();
	}

	std::vector<std::unique_ptr<RecordingLog>> logs;
	std::vector<std::unique_ptr<Director>> dirs;
	std::vector<Effects> fxs;
	std::vector<bool> up;
	// The monotonic clock, the same for all; each director's wall clock is
	// now + wall_offset[i] (a clock that was set).
	int64_t now = t0;
	std::vector<int64_t> wall_offset;
	Now at(size_t i) const { return Now(now + wall_offset[i], now); }

private:
	DirectorConfig cfg_;
	static void add_hosts_(Director &d)
	{
		d.add_config_host(ip("10.0.0.1"), "", "");
		d.add_config_host(ip("10.0.0.2"), "", "");
		d.add_config_host(ip("10.0.0.3"), "", "");
	}
	struct End {
		size_t dir;
		RingConnId conn;
	};
	std::map<std::pair<size_t, RingConnId>, End> links_;
	struct Held {
		size_t dir;
		RingConnId conn;
		std::string line;
	};
	std::vector<Held> held_;

	// The effects that are not the network's stay for the test to read.
	static void keep(Effects &into, Effects &from)
	{
		for (auto &x : from.lookups)
			into.lookups.push_back(std::move(x));
		for (auto &x : from.kicks)
			into.kicks.push_back(std::move(x));
		for (auto &x : from.flushes)
			into.flushes.push_back(std::move(x));
		for (auto &x : from.admin)
			into.admin.push_back(std::move(x));
		for (auto &x : from.admin_resume)
			into.admin_resume.push_back(x);
		for (auto &x : from.ring_digest_checks)
			into.ring_digest_checks.push_back(x);
	}

	void carry_out(size_t i, Effects &fx)
	{
		for (auto &c : fx.ring_connects) {
			size_t peer = c.ip.bytes()[3] - 1;
			if (!up[peer]) {
				// A stopped process's kernel still accepts the
				// connection; nothing ever answers on it.
				links_[{i, c.id}] = {peer, 0};
				dirs[i]->ring_connected(c.id, at(i), fxs[i]);
				continue;
			}
			RingConnId theirs = dirs[peer]->ring_accept(addr(i), at(peer), fxs[peer]);
			if (theirs == 0) {
				dirs[i]->ring_closed(c.id, "connect() failed", at(i), fxs[i]);
				continue;
			}
			links_[{i, c.id}] = {peer, theirs};
			links_[{peer, theirs}] = {i, c.id};
			dirs[i]->ring_connected(c.id, at(i), fxs[i]);
		}
		for (auto &s : fx.ring_sends) {
			auto it = links_.find({i, s.id});
			if (it == links_.end())
				continue;
			End to = it->second;
			if (!up[to.dir])
				continue;
			size_t start = 0;
			while (start < s.data.size()) {
				size_t lf = s.data.find('\n', start);
				std::string_view line = std::string_view(s.data).substr(start, lf - start);
				start = lf + 1;
				std::string rewritten;
				if (rewrite) {
					rewritten = rewrite(line);
					line = rewritten;
				}
				Fate fate = intercept ? intercept(i, to.dir, line) : Fate::deliver;
				if (fate == Fate::hold)
					held_.push_back({to.dir, to.conn, std::string(line)});
				if (fate != Fate::deliver)
					continue;
				dirs[to.dir]->ring_line(to.conn, line, at(to.dir), fxs[to.dir]);
			}
			if (dirs[i]->ring_wants_drain(s.id))
				dirs[i]->ring_drained(s.id, at(i), fxs[i]);
		}
		for (auto &c : fx.ring_closes) {
			auto it = links_.find({i, c.id});
			if (it == links_.end())
				continue;
			End to = it->second;
			links_.erase(it);
			links_.erase({to.dir, to.conn});
			if (to.conn != 0 && up[to.dir])
				dirs[to.dir]->ring_closed(to.conn, "EOF", at(to.dir), fxs[to.dir]);
		}
	}
};

inline std::string host_of(Effects &fx, RequestId id)
{
	for (auto &l : fx.lookups) {
		if (l.id == id && l.host)
			return l.host->ip.to_string();
	}
	return "";
}


} // namespace ring_net
