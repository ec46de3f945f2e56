// imap-bench: IMAP session load client. C concurrent slots each loop over
// connect -> greeting -> "a LOGIN user pass" -> "b LOGOUT" -> close, for a fixed
// duration or session count; reports sessions/s and latency percentiles.
// POSIX sockets and poll only; one thread; every session has a deadline.

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
	std::string host = "127.0.0.1";
	unsigned port = 143;
	unsigned connections = 16;
	unsigned long count = 0;
	double duration_secs = 10;
	double session_timeout_secs = 10;
	unsigned long users = 100;
	unsigned long user_offset = 1;
	std::string user_prefix = "user";
	std::string user_suffix = "@example.com";
	std::string password = "pass";
	std::string label = "imap-bench";
};

enum class State { idle, connecting, greeting, login, logout };

struct Slot {
	int fd = -1;
	State state = State::idle;
	std::string in;
	std::string out;
	Clock::time_point started;
};

struct Totals {
	unsigned long started = 0;
	unsigned long ok = 0;
	unsigned long login_failed = 0;
	unsigned long errors = 0;
	unsigned long timeouts = 0;
	std::vector<double> latencies_ms;
	std::string first_error;
};

void usage()
{
	std::fprintf(stderr,
		"usage: imap-bench --host IP [--port N] [--connections C]\n"
		"                  [--duration SECS | --count N] [--session-timeout SECS]\n"
		"                  [--users N] [--user-offset N] [--user-prefix P] [--user-suffix S]\n"
		"                  [--password PW] [--label NAME]\n"
		"  Users are P<i>S, i cycling over [offset, offset+N). Output: one line\n"
		"  of key=value pairs.\n");
}

bool parse_args(int argc, char **argv, Options &opt)
{
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "-h" || a == "--help") {
			usage();
			std::exit(0);
		}
		if (i + 1 >= argc) {
			std::fprintf(stderr, "imap-bench: %s needs a value\n", a.c_str());
			return false;
		}
		const char *v = argv[++i];
		if (a == "--host")
			opt.host = v;
		else if (a == "--port")
			opt.port = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
		else if (a == "--connections")
			opt.connections = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
		else if (a == "--count") {
			opt.count = std::strtoul(v, nullptr, 10);
			opt.duration_secs = 0;
		} else if (a == "--duration")
			opt.duration_secs = std::atof(v);
		else if (a == "--session-timeout")
			opt.session_timeout_secs = std::atof(v);
		else if (a == "--users")
			opt.users = std::strtoul(v, nullptr, 10);
		else if (a == "--user-offset")
			opt.user_offset = std::strtoul(v, nullptr, 10);
		else if (a == "--user-prefix")
			opt.user_prefix = v;
		else if (a == "--user-suffix")
			opt.user_suffix = v;
		else if (a == "--password")
			opt.password = v;
		else if (a == "--label")
			opt.label = v;
		else {
			std::fprintf(stderr, "imap-bench: unknown option %s\n", a.c_str());
			return false;
		}
	}
	if (opt.connections == 0 || opt.users == 0 || opt.port == 0 || opt.port > 65535 ||
	    (opt.count == 0 && opt.duration_secs <= 0)) {
		usage();
		return false;
	}
	return true;
}

class Bench {
public:
	explicit Bench(const Options &opt) : opt_(opt) {}

	int run()
	{
		addr_.sin_family = AF_INET;
		addr_.sin_port = htons(static_cast<uint16_t>(opt_.port));
		if (inet_pton(AF_INET, opt_.host.c_str(), &addr_.sin_addr) != 1) {
			std::fprintf(stderr, "imap-bench: bad --host %s\n", opt_.host.c_str());
			return 64;
		}
		slots_.resize(opt_.connections);
		start_ = Clock::now();
		const double budget = opt_.duration_secs > 0 ? opt_.duration_secs : 3600;
		stop_starting_at_ = start_ + to_dur(budget);
		// Sessions still running at stop time get their own timeout to finish.
		const auto hard_deadline = stop_starting_at_ + to_dur(opt_.session_timeout_secs + 1);
		for (auto &s : slots_)
			maybe_start(s);
		while (Clock::now() < hard_deadline) {
			if (!poll_once())
				break;
		}
		end_ = Clock::now();
		for (auto &s : slots_)
			if (s.fd >= 0) {
				close(s.fd);
				totals_.timeouts++;
			}
		report();
		return totals_.ok > 0 && totals_.errors == 0 && totals_.timeouts == 0 &&
				       totals_.login_failed == 0
			       ? 0
			       : 2;
	}

private:
	static Clock::duration to_dur(double secs)
	{
		return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
	}

	bool want_more() const
	{
		if (opt_.count > 0)
			return totals_.started < opt_.count;
		return Clock::now() < stop_starting_at_;
	}

	void note_error(const std::string &why)
	{
		if (totals_.first_error.empty())
			totals_.first_error = why;
	}

	void finish(Slot &s, bool success)
	{
		if (success) {
			totals_.ok++;
			totals_.latencies_ms.push_back(
				std::chrono::duration<double, std::milli>(Clock::now() - s.started).count());
		}
		if (s.fd >= 0) {
			// Abortive close: no TIME_WAIT on the client side, so long runs
			// do not run out of ephemeral ports.
			linger lg{1, 0};
			setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(s.fd);
		}
		s.fd = -1;
		s.state = State::idle;
		s.in.clear();
		s.out.clear();
		maybe_start(s);
	}

	void maybe_start(Slot &s)
	{
		if (!want_more())
			return;
		s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s.fd < 0) {
			note_error(std::string("socket: ") + std::strerror(errno));
			totals_.errors++;
			return;
		}
		int one = 1;
		setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		s.started = Clock::now();
		totals_.started++;
		int r = connect(s.fd, reinterpret_cast<sockaddr *>(&addr_), sizeof(addr_));
		if (r < 0 && errno != EINPROGRESS) {
			note_error(std::string("connect: ") + std::strerror(errno));
			totals_.errors++;
			close(s.fd);
			s.fd = -1;
			return;
		}
		s.state = r == 0 ? State::greeting : State::connecting;
	}

	std::string next_user()
	{
		unsigned long n = opt_.user_offset + (user_seq_++ % opt_.users);
		return opt_.user_prefix + std::to_string(n) + opt_.user_suffix;
	}

	// Handles one complete line; returns false if the session ended.
	bool handle_line(Slot &s, const std::string &line)
	{
		switch (s.state) {
		case State::greeting:
			if (line.compare(0, 4, "* OK") != 0) {
				note_error("bad greeting: " + line.substr(0, 120));
				totals_.errors++;
				finish(s, false);
				return false;
			}
			s.out += "a LOGIN \"" + next_user() + "\" \"" + opt_.password + "\"\r\n";
			s.state = State::login;
			return true;
		case State::login:
			if (line.compare(0, 2, "a ") != 0)
				return true; // untagged (capabilities etc.)
			if (line.compare(0, 5, "a OK ") != 0) {
				note_error("login failed: " + line.substr(0, 120));
				totals_.login_failed++;
				finish(s, false);
				return false;
			}
			s.out += "b LOGOUT\r\n";
			s.state = State::logout;
			return true;
		case State::logout:
			if (line.compare(0, 2, "b ") != 0)
				return true; // "* BYE"
			finish(s, line.compare(0, 5, "b OK ") == 0);
			if (line.compare(0, 5, "b OK ") != 0) {
				note_error("logout failed: " + line.substr(0, 120));
				totals_.errors++;
			}
			return false;
		default:
			return true;
		}
	}

	void do_read(Slot &s)
	{
		char buf[8192];
		ssize_t n = read(s.fd, buf, sizeof(buf));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			note_error(n == 0 ? std::string("server closed in state ") +
						    std::to_string(static_cast<int>(s.state))
					  : std::string("read: ") + std::strerror(errno));
			totals_.errors++;
			finish(s, false);
			return;
		}
		if (n < 0)
			return;
		s.in.append(buf, static_cast<size_t>(n));
		size_t start = 0, nl;
		while ((nl = s.in.find('\n', start)) != std::string::npos) {
			std::string line = s.in.substr(start, nl - start);
			if (!line.empty() && line.back() == '\r')
				line.pop_back();
			start = nl + 1;
			if (!handle_line(s, line))
				return; // slot was recycled; its buffers are fresh
		}
		s.in.erase(0, start);
	}

	void do_write(Slot &s)
	{
		if (s.out.empty())
			return;
		ssize_t n = write(s.fd, s.out.data(), s.out.size());
		if (n > 0)
			s.out.erase(0, static_cast<size_t>(n));
		else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			note_error(std::string("write: ") + std::strerror(errno));
			totals_.errors++;
			finish(s, false);
		}
	}

	bool poll_once()
	{
		std::vector<pollfd> pfds;
		std::vector<Slot *> which;
		const auto now = Clock::now();
		const auto session_limit = to_dur(opt_.session_timeout_secs);
		for (auto &s : slots_) {
			if (s.fd < 0) {
				maybe_start(s);
				if (s.fd < 0)
					continue;
			}
			if (now - s.started > session_limit) {
				note_error("session timed out");
				totals_.timeouts++;
				close(s.fd);
				s.fd = -1;
				s.state = State::idle;
				maybe_start(s);
				if (s.fd < 0)
					continue;
			}
			short ev = s.state == State::connecting || !s.out.empty() ? POLLOUT : 0;
			if (s.state != State::connecting)
				ev |= POLLIN;
			pfds.push_back(pollfd{s.fd, ev, 0});
			which.push_back(&s);
		}
		if (pfds.empty())
			return false; // nothing running and nothing more wanted
		int r = poll(pfds.data(), pfds.size(), 50);
		if (r < 0 && errno != EINTR) {
			std::fprintf(stderr, "imap-bench: poll: %s\n", std::strerror(errno));
			return false;
		}
		for (size_t i = 0; i < pfds.size() && r > 0; i++) {
			Slot &s = *which[i];
			short re = pfds[i].revents;
			if (re == 0 || s.fd != pfds[i].fd)
				continue;
			if (s.state == State::connecting) {
				int err = 0;
				socklen_t len = sizeof(err);
				getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
				if (err != 0) {
					note_error(std::string("connect: ") + std::strerror(err));
					totals_.errors++;
					finish(s, false);
					continue;
				}
				s.state = State::greeting;
				continue;
			}
			if (re & (POLLIN | POLLHUP | POLLERR))
				do_read(s);
			if (s.fd == pfds[i].fd && s.state != State::idle)
				do_write(s);
		}
		return true;
	}

	static double percentile(std::vector<double> &v, double q)
	{
		if (v.empty())
			return 0;
		size_t idx = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
		std::nth_element(v.begin(), v.begin() + static_cast<long>(idx), v.end());
		return v[idx];
	}

	void report()
	{
		double secs = std::chrono::duration<double>(end_ - start_).count();
		std::vector<double> lat = totals_.latencies_ms;
		double mean = 0;
		for (double l : lat)
			mean += l;
		if (!lat.empty())
			mean /= static_cast<double>(lat.size());
		double p50 = percentile(lat, 0.50);
		double p99 = percentile(lat, 0.99);
		double mx = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
		std::printf("%s: target=%s:%u connections=%u sessions=%lu ok=%lu login_failed=%lu"
			    " errors=%lu timeouts=%lu secs=%.3f sessions_per_sec=%.1f"
			    " mean_latency_ms=%.2f p50_latency_ms=%.2f p99_latency_ms=%.2f"
			    " max_latency_ms=%.2f\n",
			    opt_.label.c_str(), opt_.host.c_str(), opt_.port, opt_.connections,
			    totals_.started, totals_.ok, totals_.login_failed, totals_.errors,
			    totals_.timeouts, secs, secs > 0 ? static_cast<double>(totals_.ok) / secs : 0.0,
			    mean, p50, p99, mx);
		if (!totals_.first_error.empty())
			std::fprintf(stderr, "%s: first error: %s\n", opt_.label.c_str(),
				     totals_.first_error.c_str());
		std::fflush(stdout);
	}

	Options opt_;
	sockaddr_in addr_{};
	std::vector<Slot> slots_;
	Totals totals_;
	unsigned long user_seq_ = 0;
	Clock::time_point start_, end_, stop_starting_at_;
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
