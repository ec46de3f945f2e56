// Check suite for adapter/state-writer: chunked writes across ioloop turns, atomic
// replacement (an abandoned or failed write keeps the previous file), reading back.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <check.h>

#include "adapter/dovecot.h"
#include "adapter/state-writer.h"

extern "C" {
#include "ioloop.h"
}

using director::adapter::StateChunkSource;
using director::adapter::StateFileBytes;
using director::adapter::StateFileLocation;
using director::adapter::StateFileWriter;
using director::adapter::StateWriteStats;

namespace {

struct ioloop *loop;
struct event *ev;
std::string dir;

void setup()
{
	lib_init();
	loop = io_loop_create();
	ev = event_create(nullptr);
	char tmpl[] = "/tmp/check-state-writer.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	dir = tmpl;
}

void teardown()
{
	std::string cmd = "rm -rf '" + dir + "'";
	ck_assert_int_eq(system(cmd.c_str()), 0);
	event_unref(&ev);
	io_loop_destroy(&loop);
	lib_deinit();
}

StateFileLocation location()
{
	StateFileLocation loc;
	loc.dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(loc.dir_fd, 0);
	loc.name = "director.state";
	loc.path = dir + "/director.state";
	return loc;
}

// `chunks` pieces of `size` bytes of the letter `fill`.
class FixedSource : public StateChunkSource {
public:
	FixedSource(unsigned chunks, size_t size, char fill)
		: left_(chunks), size_(size), fill_(fill) {}
	bool next_chunk(std::string &out, size_t) override
	{
		out.append(size_, fill_);
		source_calls++;
		return --left_ == 0;
	}
	static unsigned source_calls;

private:
	unsigned left_;
	size_t size_;
	char fill_;
};

unsigned FixedSource::source_calls = 0;

std::string read_file(const std::string &path)
{
	std::string data;
	FILE *f = fopen(path.c_str(), "rb");
	if (f == nullptr)
		return "<missing>";
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		data.append(buf, n);
	fclose(f);
	return data;
}

unsigned turns;

void stop_loop(void *)
{
	io_loop_stop(loop);
}

// Runs the ioloop until the timeouts that are due now have run once.
void run_one_turn()
{
	struct timeout *stop = timeout_add_short(0, stop_loop, nullptr);
	io_loop_run(loop);
	timeout_remove(&stop);
}

} // namespace

START_TEST(test_state_writer_writes_in_chunks_across_ioloop_turns)
{
	StateFileWriter w(ev, location());
	bool finished = false, result = false;
	StateWriteStats stats;
	FixedSource::source_calls = 0;
	ck_assert(w.start(std::make_unique<FixedSource>(5, 1000, 'a'), [&](bool ok, const StateWriteStats &s) {
		finished = true;
		result = ok;
		stats = s;
		io_loop_stop(loop);
	}));
	ck_assert(w.writing());
	// A second write is refused while the first runs.
	ck_assert(!w.start(std::make_unique<FixedSource>(1, 1, 'z'), nullptr));
	// Nothing is written before the ioloop runs.
	ck_assert_uint_eq(FixedSource::source_calls, 0);
	// One piece per ioloop turn: run the loop one turn at a time.
	unsigned iterations = 0;
	// At most one piece per turn (which timeout of a turn runs first is the
	// ioloop's choice, so a turn may also bring none).
	while (FixedSource::source_calls < 5 && iterations < 100) {
		run_one_turn();
		iterations++;
		ck_assert_uint_le(FixedSource::source_calls, iterations);
	}
	// Five pieces written; the sync thread reports through the ioloop.
	if (!finished) {
		struct timeout *deadline = timeout_add(10000, stop_loop, nullptr);
		io_loop_run(loop);
		timeout_remove(&deadline);
	}
	ck_assert(finished);
	ck_assert(result);
	ck_assert(!w.writing());
	ck_assert_uint_eq(stats.steps, 5);
	ck_assert_uint_eq(stats.bytes, 5000);
	ck_assert_uint_ge(iterations, 5);
	ck_assert(read_file(dir + "/director.state") == std::string(5000, 'a'));
	ck_assert(access((dir + "/director.state.tmp").c_str(), F_OK) != 0);

	StateFileBytes data;
	std::string error;
	ck_assert_int_eq(w.read(data, error), 1);
	ck_assert(data.view() == std::string(5000, 'a'));
}
END_TEST

START_TEST(test_state_writer_abandoned_write_keeps_previous_file)
{
	StateFileWriter w(ev, location());
	FixedSource first(2, 100, 'a');
	ck_assert(w.write_now(first));
	ck_assert(w.start(std::make_unique<FixedSource>(1000, 100, 'b'), nullptr));
	// Let a few turns run, then give up half way (what a killed director leaves is the
	// temp file at most; the state file itself is untouched until the rename).
	turns = 0;
	struct timeout *to = timeout_add_short(0, [](void *) {
		if (++turns == 3)
			io_loop_stop(loop);
	}, nullptr);
	io_loop_run(loop);
	timeout_remove(&to);
	ck_assert(w.writing());
	ck_assert(read_file(dir + "/director.state") == std::string(200, 'a'));
	ck_assert(access((dir + "/director.state.tmp").c_str(), F_OK) == 0);
	w.abort();
	ck_assert(!w.writing());
	ck_assert(access((dir + "/director.state.tmp").c_str(), F_OK) != 0);
	ck_assert(read_file(dir + "/director.state") == std::string(200, 'a'));
}
END_TEST

START_TEST(test_state_writer_failed_write_keeps_previous_file)
{
	StateFileWriter w(ev, location());
	FixedSource first(1, 10, 'a');
	ck_assert(w.write_now(first));
	// A directory named like the temp file makes open() fail.
	ck_assert_int_eq(mkdir((dir + "/director.state.tmp").c_str(), 0700), 0);
	FixedSource second(1, 10, 'b');
	ck_assert(!w.write_now(second));
	ck_assert(read_file(dir + "/director.state") == std::string(10, 'a'));
}
END_TEST

START_TEST(test_state_writer_read_tells_missing_from_unreadable)
{
	StateFileWriter w(ev, location());
	StateFileBytes data;
	std::string error;
	ck_assert_int_eq(w.read(data, error), 0);
	ck_assert_int_eq(mkdir((dir + "/director.state").c_str(), 0700), 0);
	ck_assert_int_eq(w.read(data, error), -1);
	ck_assert_msg(!error.empty(), "no reason");
}
END_TEST

START_TEST(test_state_writer_write_now_replaces_a_running_write)
{
	StateFileWriter w(ev, location());
	bool called = false;
	ck_assert(w.start(std::make_unique<FixedSource>(100, 10, 'a'),
			  [&](bool, const StateWriteStats &) { called = true; }));
	FixedSource now(3, 10, 'c');
	StateWriteStats stats;
	ck_assert(w.write_now(now, &stats));
	ck_assert(!w.writing());
	ck_assert(!called);
	ck_assert_uint_eq(stats.bytes, 30);
	ck_assert(read_file(dir + "/director.state") == std::string(30, 'c'));
}
END_TEST

int main()
{
	Suite *s = suite_create("state-writer");
	TCase *tc = tcase_create("writes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_state_writer_writes_in_chunks_across_ioloop_turns);
	tcase_add_test(tc, test_state_writer_abandoned_write_keeps_previous_file);
	tcase_add_test(tc, test_state_writer_failed_write_keeps_previous_file);
	tcase_add_test(tc, test_state_writer_read_tells_missing_from_unreadable);
	tcase_add_test(tc, test_state_writer_write_now_replaces_a_running_write);
	suite_add_tcase(s, tc);
	SRunner *runner = srunner_create(s);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
