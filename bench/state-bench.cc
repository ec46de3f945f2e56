// Benchmark of the director state file at 1 M and 10 M users: the incremental write
// through the real StateFileWriter in a lib-dovecot ioloop (total time, the longest
// ioloop turn, the final sync), the blocking shutdown write, and the load (read, parse
// and refill a UserTable).
//
//   state-bench [--users N[,N...]] [--dir DIR] [--step-bytes B]
//
// Defaults: --users 1000000,10000000, --dir /var/tmp (a real disk, not tmpfs, so the
// sync figures mean something).
#include "adapter/dovecot.h"
#include "adapter/state-writer.h"
#include "core/state-file.h"
#include "core/user-table.h"

extern "C" {
#include "ioloop.h"
}

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace director;
using namespace director::core;

namespace {

constexpr unsigned host_count = 10;

inline uint32_t user_hash_of(uint32_t i)
{
	i ^= i >> 16;
	i *= 0x85ebca6bu;
	i ^= i >> 13;
	i *= 0xc2b2ae35u;
	i ^= i >> 16;
	return i == 0 ? 1 : i;
}

double ms_since(std::chrono::steady_clock::time_point t0)
{
	return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
		.count();
}

// CPU time of this process (the machine may be shared: wall time alone misleads).
double cpu_ms()
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

StateHeader make_header()
{
	StateHeader h;
	StateIdentity id;
	id.username_hash = "%Lu";
	h.identity = id.fingerprint();
	h.written_at = 1795343916;
	h.tags = {"", "blue"};
	for (unsigned i = 0; i < host_count; i++) {
		StateHost host;
		host.ip = IpAddr::v4(10, 0, 0, uint8_t(i + 1));
		host.vhost_count = 100;
		host.tag = i < 2 ? 1 : 0;
		h.hosts.push_back(host);
	}
	return h;
}

// What the director's source does: walk the expiry list, encode, hand out pieces.
class TableSource : public adapter::StateChunkSource {
public:
	TableSource(const UserTable &t, const StateHeader &h) : t_(t), enc_(h), u_(t.oldest()) {}
	bool next_chunk(std::string &out, size_t max_bytes) override
	{
		while (u_ != no_user && enc_.pending_bytes() < max_bytes) {
			StateUser su;
			su.user_hash = t_.user_hash(u_);
			su.timestamp = t_.timestamp(u_);
			su.host = t_.host(u_);
			su.tag = t_.tag(u_);
			su.weak = t_.weak(u_);
			enc_.add_user(su);
			u_ = t_.newer(u_);
		}
		out += enc_.take();
		if (u_ != no_user)
			return false;
		out += enc_.finish();
		return true;
	}

private:
	const UserTable &t_;
	StateEncoder enc_;
	UserIndex u_;
};

// The director's tables keep their ring digests up to date (user-digest.h), and
// so do these: a key per host, as the director makes from each host's IP.
uint64_t host_digest_key(HostId host)
{
	return user_digest_mix64(uint64_t{host} + 1);
}

void bench(size_t n, const std::string &dir, size_t step_bytes, struct ioloop *loop,
	   struct event *ev)
{
	StateHeader header = make_header();
	auto table = std::make_unique<UserTable>();
	for (uint32_t i = 0; i < n; i++) {
		HostId host = HostId(i % host_count);
		table->insert(user_hash_of(i), host < 2 ? 1 : 0, host, 1795340000 + i / 1000);
	}

	adapter::StateFileLocation loc;
	loc.dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
	if (loc.dir_fd < 0) {
		perror(dir.c_str());
		exit(1);
	}
	loc.name = "state-bench.state";
	loc.path = dir + "/" + loc.name;
	adapter::StateFileWriter writer(ev, loc);
	writer.step_bytes = step_bytes;

	// Incremental write, as the periodic snapshot runs.
	adapter::StateWriteStats stats;
	bool ok = false, done = false;
	writer.start(std::make_unique<TableSource>(*table, header),
		     [&](bool r, const adapter::StateWriteStats &s) {
			     ok = r;
			     stats = s;
			     done = true;
			     io_loop_stop(loop);
		     });
	io_loop_run(loop);
	if (!done || !ok) {
		fprintf(stderr, "incremental write failed\n");
		exit(1);
	}
	printf("%9zu users  file %7.1f MB\n", n, double(stats.bytes) / 1e6);
	printf("  incremental write: %7.1f ms total, %4u turns, longest turn %5.2f ms, "
	       "final sync+rename %6.1f ms\n",
	       double(stats.total_usecs) / 1000, stats.steps,
	       double(stats.max_step_usecs) / 1000, double(stats.sync_usecs) / 1000);

	// Blocking write, as at a clean shutdown.
	TableSource now(*table, header);
	adapter::StateWriteStats now_stats;
	auto t0 = std::chrono::steady_clock::now();
	if (!writer.write_now(now, &now_stats)) {
		fprintf(stderr, "write_now failed\n");
		exit(1);
	}
	printf("  shutdown write:    %7.1f ms\n", ms_since(t0));
	table.reset();

	// Load: read, parse (checksum and every record), refill a table.
	double load_cpu0 = cpu_ms();
	t0 = std::chrono::steady_clock::now();
	adapter::StateFileBytes data;
	std::string error;
	if (writer.read(data, error) != 1) {
		fprintf(stderr, "read failed: %s\n", error.c_str());
		exit(1);
	}
	double read_ms = ms_since(t0), read_cpu_ms = cpu_ms() - load_cpu0;
	double parse_cpu0 = cpu_ms();
	t0 = std::chrono::steady_clock::now();
	auto file = StateFile::parse(data.view(), header.identity);
	if (!file.ok()) {
		fprintf(stderr, "parse failed: %s\n", file.error().c_str());
		exit(1);
	}
	double parse_ms = ms_since(t0), parse_cpu_ms = cpu_ms() - parse_cpu0;
	// The table as the director's restore fills it: one bulk load.
	t0 = std::chrono::steady_clock::now();
	double cpu0 = cpu_ms();
	UserTable restored;
	restored.maintain_digests(host_digest_key);
	restored.load_begin(file->user_count());
	for (uint64_t i = 0; i < file->user_count(); i++) {
		StateUser u = file->user(i);
		restored.load_add(u.user_hash, u.tag, u.host, u.timestamp);
	}
	double add_ms = ms_since(t0);
	restored.load_end();
	double fill_ms = ms_since(t0), fill_cpu_ms = cpu_ms() - cpu0;
	if (restored.size() != n) {
		fprintf(stderr, "restored %zu users of %zu\n", restored.size(), n);
		exit(1);
	}
	printf("  load:              %7.1f ms (read %.1f, parse+verify %.1f, table %.1f = "
	       "%.1f add + %.1f index)\n"
	       "  load CPU time:     %7.1f ms (read %.1f, parse+verify %.1f, table %.1f)\n",
	       read_ms + parse_ms + fill_ms, read_ms, parse_ms, fill_ms, add_ms,
	       fill_ms - add_ms, read_cpu_ms + parse_cpu_ms + fill_cpu_ms, read_cpu_ms,
	       parse_cpu_ms, fill_cpu_ms);

	// For comparison: the same table filled by one insert() per user.
	t0 = std::chrono::steady_clock::now();
	cpu0 = cpu_ms();
	UserTable inserted;
	inserted.maintain_digests(host_digest_key);
	for (uint64_t i = 0; i < file->user_count(); i++) {
		StateUser u = file->user(i);
		inserted.insert(u.user_hash, u.tag, u.host, u.timestamp);
	}
	printf("  (table by per-user insert(): %.1f ms, CPU %.1f ms)\n", ms_since(t0),
	       cpu_ms() - cpu0);
	unlink(loc.path.c_str());
}

} // namespace

int main(int argc, char **argv)
{
	std::vector<size_t> sizes = {1000000, 10000000};
	std::string dir = "/var/tmp";
	size_t step_bytes = adapter::StateFileWriter(nullptr, {}).step_bytes;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--users" && i + 1 < argc) {
			sizes.clear();
			std::string list = argv[++i];
			size_t pos = 0;
			while (pos <= list.size()) {
				size_t comma = list.find(',', pos);
				if (comma == std::string::npos)
					comma = list.size();
				sizes.push_back(std::strtoull(list.substr(pos, comma - pos).c_str(),
							      nullptr, 10));
				pos = comma + 1;
			}
		} else if (a == "--dir" && i + 1 < argc) {
			dir = argv[++i];
		} else if (a == "--step-bytes" && i + 1 < argc) {
			step_bytes = std::strtoull(argv[++i], nullptr, 10);
		} else {
			fprintf(stderr, "usage: state-bench [--users N[,N...]] [--dir DIR] "
					"[--step-bytes B]\n");
			return 2;
		}
	}
	lib_init();
	struct ioloop *loop = io_loop_create();
	struct event *ev = event_create(nullptr);
	for (size_t n : sizes)
		bench(n, dir, step_bytes, loop, ev);
	event_unref(&ev);
	io_loop_destroy(&loop);
	lib_deinit();
	return 0;
}
