// auth-bench: load client for the auth-client protocol (1.2) over a unix socket.
// Talks to a director's login/director socket or to auth's own login socket
// (login/login, auth-login) and reports lookups/s, latency and the CPU cost per
// lookup of chosen processes. No Dovecot code; POSIX sockets and poll only.
//
// Exchange (per connection):
//   C: VERSION 1 2 / CPID <unique>
//   S: VERSION 1 2 / MECH ... / SPID / CUID / COOKIE / DONE
//   C: AUTH <id> PLAIN service=imap secured ... resp=<base64 "\0user\0pass">
//   S: OK <id> user=... proxy ... [host=...]   or   FAIL <id> ...
// A request counts as done when its OK/FAIL arrives. The director appends
// host= to proxied OK lines; --expect-host makes a missing host= a failure.

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

// What /proc says of a process at one moment; -1 where unreadable.
struct ProcSample {
	long long ticks = -1;    // utime+stime, clock ticks (/proc/<pid>/stat)
	long long minflt = -1;   // minor page faults (the same file)
	long long sched_ns = -1; // on-CPU nanoseconds (/proc/<pid>/schedstat)
	long long slices = -1;   // times scheduled in (the same file)
};

// A process sampled around the measured interval.
struct CpuProbe {
	std::string label;
	int pid = 0;
	ProcSample before, after;
};

struct Options {
	std::string socket_path;
	unsigned connections = 1;
	unsigned inflight = 1; // total requests in flight, spread over connections
	unsigned long count = 10000;
	double duration_secs = 0; // >0: run for this long instead of count
	double timeout_secs = 60; // hard deadline for the whole run
	unsigned long users = 100000;
	unsigned long user_offset = 0;
	std::string user_prefix = "user";
	std::string user_suffix = "@example.com";
	std::string password = "pass";
	std::string service = "imap";
	std::string label = "auth-bench";
	bool expect_host = false;
	std::vector<CpuProbe> probes;
};

struct Connection {
	int fd = -1;
	bool handshaked = false;
	bool dead = false;
	std::string in;
	std::string out;
	size_t out_pos = 0;
	unsigned inflight_limit = 0;
	unsigned inflight = 0;
	unsigned next_id = 1;
	std::vector<Clock::time_point> sent_at; // indexed by request id
};

struct Totals {
	unsigned long sent = 0;
	unsigned long ok = 0;
	unsigned long fail = 0;
	unsigned long ok_with_host = 0;
	unsigned long other_lines = 0;
	std::vector<double> latencies_us;
	std::string first_error;
};

void usage()
{
	std::fprintf(stderr,
		"usage: auth-bench --socket PATH [--connections C] [--inflight K]\n"
		"                  [--count N | --duration SECS] [--timeout SECS]\n"
		"                  [--users N] [--user-offset N] [--user-prefix P] [--user-suffix S]\n"
		"                  [--password PW] [--service NAME] [--expect-host]\n"
		"                  [--pid LABEL=PID]... [--label NAME]\n"
		"  --inflight K: total requests in flight, spread over the C connections\n"
		"  (K=C=1 is one-at-a-time). User names are P<i>S for i in\n"
		"  [offset, offset+N), cycling. Output: one line of key=value pairs.\n");
}

bool parse_ulong(const char *s, unsigned long &out)
{
	char *end = nullptr;
	errno = 0;
	unsigned long v = std::strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return false;
	out = v;
	return true;
}

bool parse_args(int argc, char **argv, Options &opt)
{
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto need = [&](const char *name) -> const char * {
			if (i + 1 >= argc) {
				std::fprintf(stderr, "auth-bench: %s needs a value\n", name);
				return nullptr;
			}
			return argv[++i];
		};
		unsigned long v = 0;
		const char *val = nullptr;
		if (a == "--expect-host") {
			opt.expect_host = true;
			continue;
		}
		if (a == "-h" || a == "--help") {
			usage();
			std::exit(0);
		}
		if ((val = need(a.c_str())) == nullptr)
			return false;
		if (a == "--socket") {
			opt.socket_path = val;
		} else if (a == "--connections" || a == "--inflight" || a == "--count" ||
			   a == "--users" || a == "--user-offset") {
			if (!parse_ulong(val, v)) {
				std::fprintf(stderr, "auth-bench: bad number for %s: %s\n", a.c_str(), val);
				return false;
			}
			if (a == "--connections")
				opt.connections = static_cast<unsigned>(v);
			else if (a == "--inflight")
				opt.inflight = static_cast<unsigned>(v);
			else if (a == "--count")
				opt.count = v;
			else if (a == "--users")
				opt.users = v;
			else
				opt.user_offset = v;
		} else if (a == "--duration") {
			opt.duration_secs = std::atof(val);
		} else if (a == "--timeout") {
			opt.timeout_secs = std::atof(val);
		} else if (a == "--user-prefix") {
			opt.user_prefix = val;
		} else if (a == "--user-suffix") {
			opt.user_suffix = val;
		} else if (a == "--password") {
			opt.password = val;
		} else if (a == "--service") {
			opt.service = val;
		} else if (a == "--label") {
			opt.label = val;
		} else if (a == "--pid") {
			CpuProbe p;
			std::string s = val;
			size_t eq = s.find('=');
			p.label = eq == std::string::npos ? "proc" : s.substr(0, eq);
			std::string num = eq == std::string::npos ? s : s.substr(eq + 1);
			if (!parse_ulong(num.c_str(), v) || v == 0) {
				std::fprintf(stderr, "auth-bench: bad --pid %s\n", val);
				return false;
			}
			p.pid = static_cast<int>(v);
			opt.probes.push_back(p);
		} else {
			std::fprintf(stderr, "auth-bench: unknown option %s\n", a.c_str());
			return false;
		}
	}
	if (opt.socket_path.empty() || opt.connections == 0 || opt.inflight == 0 ||
	    opt.users == 0 || (opt.count == 0 && opt.duration_secs <= 0)) {
		usage();
		return false;
	}
	if (opt.inflight < opt.connections)
		opt.inflight = opt.connections;
	return true;
}

ProcSample read_sample(int pid)
{
	ProcSample res;
	std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
	std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
	size_t rp = s.rfind(')');
	if (rp != std::string::npos) {
		std::istringstream is(s.substr(rp + 2));
		std::string field;
		// fields after comm: state(3) ppid pgrp session tty tpgid flags minflt(10)
		// cminflt majflt cmajflt utime(14) stime(15)
		long long utime = -1, stime = -1;
		for (int n = 3; n <= 15 && (is >> field); n++) {
			if (n == 10)
				res.minflt = std::atoll(field.c_str());
			else if (n == 14)
				utime = std::atoll(field.c_str());
			else if (n == 15)
				stime = std::atoll(field.c_str());
		}
		if (utime >= 0 && stime >= 0)
			res.ticks = utime + stime;
	}
	std::ifstream sf("/proc/" + std::to_string(pid) + "/schedstat");
	long long wait_ns = 0;
	if (!(sf >> res.sched_ns >> wait_ns >> res.slices))
		res.slices = -1;
	return res;
}

// after - before of one field, or -1 when either is unknown.
long long growth(long long before, long long after)
{
	return before < 0 || after < 0 ? -1 : after - before;
}

std::string base64(const std::string &in)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string out;
	size_t i = 0;
	for (; i + 2 < in.size(); i += 3) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 |
			     (unsigned char)in[i + 2];
		out += tbl[v >> 18];
		out += tbl[(v >> 12) & 63];
		out += tbl[(v >> 6) & 63];
		out += tbl[v & 63];
	}
	if (i + 1 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16;
		out += tbl[v >> 18];
		out += tbl[(v >> 12) & 63];
		out += "==";
	} else if (i + 2 == in.size()) {
		unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
		out += tbl[v >> 18];
		out += tbl[(v >> 12) & 63];
		out += tbl[(v >> 6) & 63];
		out += '=';
	}
	return out;
}

int connect_unix(const std::string &path, std::string &error_r)
{
	sockaddr_un sa{};
	if (path.size() >= sizeof(sa.sun_path)) {
		error_r = "socket path too long: " + path;
		return -1;
	}
	sa.sun_family = AF_UNIX;
	std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		error_r = std::string("socket(): ") + std::strerror(errno);
		return -1;
	}
	if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0) {
		error_r = "connect(" + path + "): " + std::strerror(errno);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

class Bench {
public:
	explicit Bench(const Options &opt) : opt_(opt) {}

	int run()
	{
		if (!connect_all())
			return 1;
		const Clock::time_point hard_deadline =
			Clock::now() + std::chrono::duration_cast<Clock::duration>(
					       std::chrono::duration<double>(opt_.timeout_secs));
		if (!wait_handshakes(hard_deadline))
			return 1;

		for (auto &p : opt_.probes)
			p.before = read_sample(p.pid);
		start_ = Clock::now();
		if (opt_.duration_secs > 0)
			stop_sending_at_ = start_ + std::chrono::duration_cast<Clock::duration>(
							    std::chrono::duration<double>(opt_.duration_secs));
		else
			stop_sending_at_ = hard_deadline;
		for (auto &c : conns_)
			fill(c);
		bool timed_out = !loop(hard_deadline);
		end_ = Clock::now();
		for (auto &p : opt_.probes)
			p.after = read_sample(p.pid);
		report(timed_out);
		for (auto &c : conns_)
			if (c.fd >= 0)
				close(c.fd);
		return totals_.fail > 0 || timed_out || !totals_.first_error.empty() ? 2 : 0;
	}

private:
	bool connect_all()
	{
		conns_.resize(opt_.connections);
		// CPIDs must be unique among all clients of the auth service's login
		// sockets; real login processes use their pids, so stay above pid_max.
		unsigned cpid_base = 0x40000000u + (static_cast<unsigned>(getpid()) % 0x10000u) * 0x1000u;
		for (unsigned i = 0; i < conns_.size(); i++) {
			Connection &c = conns_[i];
			std::string err;
			c.fd = connect_unix(opt_.socket_path, err);
			if (c.fd < 0) {
				std::fprintf(stderr, "auth-bench: %s\n", err.c_str());
				return false;
			}
			c.inflight_limit = opt_.inflight / opt_.connections +
					   (i < opt_.inflight % opt_.connections ? 1 : 0);
			c.out = "VERSION\t1\t2\nCPID\t" + std::to_string(cpid_base + i + 1) + "\n";
		}
		return true;
	}

	bool wait_handshakes(Clock::time_point deadline)
	{
		for (;;) {
			bool all = true;
			for (auto &c : conns_)
				if (!c.handshaked)
					all = false;
			if (all)
				return true;
			if (!poll_once(deadline))
				break;
			for (auto &c : conns_)
				if (c.dead) {
					std::fprintf(stderr, "auth-bench: handshake failed: %s\n",
						     totals_.first_error.c_str());
					return false;
				}
		}
		std::fprintf(stderr, "auth-bench: handshake timed out\n");
		return false;
	}

	bool want_more() const
	{
		if (opt_.duration_secs > 0)
			return Clock::now() < stop_sending_at_;
		return totals_.sent < opt_.count;
	}

	void fill(Connection &c)
	{
		while (c.inflight < c.inflight_limit && want_more() && !c.dead) {
			unsigned long n = opt_.user_offset + (totals_.sent % opt_.users);
			std::string user = opt_.user_prefix + std::to_string(n) + opt_.user_suffix;
			std::string resp;
			resp.push_back('\0');
			resp += user;
			resp.push_back('\0');
			resp += opt_.password;
			unsigned id = c.next_id++;
			if (c.sent_at.size() <= id)
				c.sent_at.resize(id * 2 + 16);
			c.sent_at[id] = Clock::now();
			c.out += "AUTH\t" + std::to_string(id) + "\tPLAIN\tservice=" + opt_.service +
				 "\tsecured\tlip=127.0.0.1\trip=127.0.0.1\tlport=143\trport=" +
				 std::to_string(1024 + id % 60000) + "\tresp=" + base64(resp) + "\n";
			c.inflight++;
			totals_.sent++;
		}
	}

	void fail_conn(Connection &c, const std::string &why)
	{
		if (totals_.first_error.empty())
			totals_.first_error = why;
		c.dead = true;
	}

	void handle_line(Connection &c, const std::string &line)
	{
		if (!c.handshaked) {
			if (line == "DONE")
				c.handshaked = true;
			return;
		}
		bool ok = line.compare(0, 3, "OK\t") == 0;
		bool fail = line.compare(0, 5, "FAIL\t") == 0;
		if (!ok && !fail) {
			totals_.other_lines++;
			if (totals_.first_error.empty())
				totals_.first_error = "unexpected line: " + line.substr(0, 120);
			return;
		}
		const char *p = line.c_str() + (ok ? 3 : 5);
		unsigned long id = std::strtoul(p, nullptr, 10);
		if (id == 0 || id >= c.sent_at.size() || c.inflight == 0) {
			fail_conn(c, "reply for unknown id: " + line.substr(0, 120));
			return;
		}
		auto lat = Clock::now() - c.sent_at[id];
		totals_.latencies_us.push_back(
			std::chrono::duration<double, std::micro>(lat).count());
		c.inflight--;
		bool has_host = line.find("\thost=") != std::string::npos;
		if (ok && has_host)
			totals_.ok_with_host++;
		if (ok && (has_host || !opt_.expect_host)) {
			totals_.ok++;
		} else {
			totals_.fail++;
			if (totals_.first_error.empty())
				totals_.first_error = "failed reply: " + line.substr(0, 200);
		}
	}

	// One poll round over all connections. Returns false at the deadline.
	bool poll_once(Clock::time_point deadline)
	{
		auto now = Clock::now();
		if (now >= deadline)
			return false;
		int wait_ms = static_cast<int>(
			std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
		wait_ms = std::min(std::max(wait_ms, 1), 100);
		std::vector<pollfd> pfds;
		std::vector<Connection *> which;
		for (auto &c : conns_) {
			if (c.dead)
				continue;
			short ev = POLLIN;
			if (c.out_pos < c.out.size())
				ev |= POLLOUT;
			pfds.push_back(pollfd{c.fd, ev, 0});
			which.push_back(&c);
		}
		if (pfds.empty())
			return false;
		int r = poll(pfds.data(), pfds.size(), wait_ms);
		if (r < 0 && errno != EINTR) {
			std::fprintf(stderr, "auth-bench: poll: %s\n", std::strerror(errno));
			return false;
		}
		for (size_t i = 0; i < pfds.size() && r > 0; i++) {
			Connection &c = *which[i];
			if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
				do_read(c);
			if (!c.dead && (pfds[i].revents & POLLOUT))
				do_write(c);
		}
		// Opportunistic write of anything queued by replies.
		for (auto &c : conns_)
			if (!c.dead && c.out_pos < c.out.size())
				do_write(c);
		return true;
	}

	void do_read(Connection &c)
	{
		char buf[65536];
		for (int rounds = 0; rounds < 16; rounds++) {
			ssize_t n = read(c.fd, buf, sizeof(buf));
			if (n > 0) {
				c.in.append(buf, static_cast<size_t>(n));
				if (static_cast<size_t>(n) < sizeof(buf))
					break;
				continue;
			}
			if (n == 0) {
				fail_conn(c, "server closed the connection");
				break;
			}
			if (errno == EAGAIN || errno == EINTR)
				break;
			fail_conn(c, std::string("read: ") + std::strerror(errno));
			break;
		}
		size_t start = 0, nl;
		while ((nl = c.in.find('\n', start)) != std::string::npos) {
			handle_line(c, c.in.substr(start, nl - start));
			start = nl + 1;
		}
		c.in.erase(0, start);
		if (c.handshaked)
			fill(c);
	}

	void do_write(Connection &c)
	{
		while (c.out_pos < c.out.size()) {
			ssize_t n = write(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos);
			if (n > 0) {
				c.out_pos += static_cast<size_t>(n);
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			fail_conn(c, std::string("write: ") + std::strerror(errno));
			return;
		}
		if (c.out_pos == c.out.size()) {
			c.out.clear();
			c.out_pos = 0;
		}
	}

	// Runs until all sent requests are answered and no more are wanted.
	bool loop(Clock::time_point deadline)
	{
		for (;;) {
			bool busy = false;
			for (auto &c : conns_) {
				if (c.dead)
					continue;
				if (c.inflight > 0)
					busy = true;
				else
					fill(c);
				if (c.inflight > 0)
					busy = true;
			}
			if (!busy)
				return true;
			if (!poll_once(deadline))
				return false;
		}
	}

	static double percentile(std::vector<double> &v, double q)
	{
		if (v.empty())
			return 0;
		size_t idx = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
		std::nth_element(v.begin(), v.begin() + static_cast<long>(idx), v.end());
		return v[idx];
	}

	void report(bool timed_out)
	{
		double secs = std::chrono::duration<double>(end_ - start_).count();
		unsigned long done = totals_.ok + totals_.fail;
		double mean = 0;
		for (double l : totals_.latencies_us)
			mean += l;
		if (!totals_.latencies_us.empty())
			mean /= static_cast<double>(totals_.latencies_us.size());
		std::vector<double> lat = totals_.latencies_us;
		double p50 = percentile(lat, 0.50);
		double p99 = percentile(lat, 0.99);
		long tck = sysconf(_SC_CLK_TCK);
		std::printf("%s: socket=%s connections=%u inflight=%u requests=%lu ok=%lu fail=%lu"
			    " ok_with_host=%lu secs=%.3f lookups_per_sec=%.1f mean_latency_us=%.1f"
			    " p50_latency_us=%.1f p99_latency_us=%.1f",
			    opt_.label.c_str(), opt_.socket_path.c_str(), opt_.connections,
			    opt_.inflight, done, totals_.ok, totals_.fail, totals_.ok_with_host, secs,
			    secs > 0 ? static_cast<double>(done) / secs : 0.0, mean, p50, p99);
		for (const auto &p : opt_.probes) {
			long long ticks = growth(p.before.ticks, p.after.ticks);
			if (ticks < 0 || done == 0) {
				std::printf(" %s_pid=%d %s_cpu_us_per_lookup=NA", p.label.c_str(), p.pid,
					    p.label.c_str());
				continue;
			}
			double n = static_cast<double>(done);
			const char *l = p.label.c_str();
			double stat_us = static_cast<double>(ticks) * 1e6 / static_cast<double>(tck);
			std::printf(" %s_pid=%d %s_cpu_us=%.0f %s_cpu_us_per_lookup=%.2f", l, p.pid, l,
				    stat_us, l, stat_us / n);
			long long ns = growth(p.before.sched_ns, p.after.sched_ns);
			if (ns >= 0)
				std::printf(" %s_sched_us_per_lookup=%.2f %s_cpu_util=%.3f", l,
					    static_cast<double>(ns) / 1e3 / n, l,
					    secs > 0 ? static_cast<double>(ns) / 1e9 / secs : 0.0);
			long long slices = growth(p.before.slices, p.after.slices);
			if (slices >= 0)
				std::printf(" %s_slices_per_klookup=%.1f", l,
					    static_cast<double>(slices) * 1e3 / n);
			long long minflt = growth(p.before.minflt, p.after.minflt);
			if (minflt >= 0)
				std::printf(" %s_minflt_per_klookup=%.2f", l,
					    static_cast<double>(minflt) * 1e3 / n);
		}
		if (timed_out)
			std::printf(" timed_out=1");
		std::printf("\n");
		if (!totals_.first_error.empty())
			std::fprintf(stderr, "%s: first error: %s\n", opt_.label.c_str(),
				     totals_.first_error.c_str());
		std::fflush(stdout);
	}

	Options opt_;
	std::vector<Connection> conns_;
	Totals totals_;
	Clock::time_point start_, end_, stop_sending_at_;
};

} // namespace

int main(int argc, char **argv)
{
	Options opt;
	if (!parse_args(argc, argv, opt))
		return 64;
	Bench b(opt);
	return b.run();
}
