// Check suite for adapter::ProgramRunner against a unix socket served in the
// same ioloop: a flush socket that answers, one that accepts and never
// answers, and destroying a runner mid-run.
#include "adapter-test.h"

#include <cstdio>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "adapter/handles.h"
#include "adapter/program-runner.h"

using director::adapter::IoHandle;
using director::adapter::ProgramRunner;
using adapter_test::run_until;

namespace {

// A listening unix socket in a fresh directory; accepts clients and, when
// `answer` is set, replies "+" once the request (ended by an empty line)
// arrived, then closes.
struct FlushSocket {
	std::string dir, path;
	int listen_fd = -1;
	int client_fd = -1;
	bool answer;
	bool client_saw_eof = false;
	std::string request;
	IoHandle accept_io, client_io;

	explicit FlushSocket(bool answer_) : answer(answer_)
	{
		char tmpl[] = "/tmp/check-program-runner.XXXXXX";
		ck_assert_ptr_nonnull(mkdtemp(tmpl));
		dir = tmpl;
		path = dir + "/flush";
		listen_fd = net_listen_unix(path.c_str(), 16);
		ck_assert_int_ge(listen_fd, 0);
		accept_io.read(listen_fd, [this]() { accept_client(); });
	}
	~FlushSocket()
	{
		accept_io.reset();
		client_io.reset();
		if (client_fd != -1)
			close(client_fd);
		close(listen_fd);
		unlink(path.c_str());
		rmdir(dir.c_str());
	}
	void accept_client()
	{
		int fd = net_accept(listen_fd, nullptr, nullptr);
		if (fd < 0)
			return;
		ck_assert_int_eq(client_fd, -1);
		client_fd = fd;
		net_set_nonblock(fd, TRUE);
		client_io.read(fd, [this]() { client_input(); });
	}
	void client_input()
	{
		char buf[1024];
		ssize_t n = ::read(client_fd, buf, sizeof(buf));
		if (n == 0) {
			client_saw_eof = true;
			client_io.reset();
			return;
		}
		if (n < 0)
			return;
		request.append(buf, size_t(n));
		if (answer && request.find("\n\n") != std::string::npos) {
			ck_assert_int_eq(write(client_fd, "+\n", 2), 2);
			client_io.reset();
			close(client_fd);
			client_fd = -1;
			answer = false;
		}
	}
};

struct Result {
	bool called = false;
	int calls = 0;
	bool ok = false;
	int status = 0;
};

ProgramRunner::Callback record(Result &r)
{
	return [&r](bool ok, int status) {
		r.called = true;
		r.calls++;
		r.ok = ok;
		r.status = status;
	};
}

} // namespace

START_TEST(test_program_runner_reports_a_socket_that_answers)
{
	FlushSocket sock(true);
	ProgramRunner runner;
	Result res;
	std::string error;
	ck_assert(runner.start(director::adapter::director_root_event(), "unix:" + sock.path,
			       {"10.0.0.1", "12345"}, 1000, 5000, record(res), error));
	ck_assert(run_until([&]() { return res.called; }, 5000));
	ck_assert(res.ok);
	ck_assert_msg(sock.request.find("10.0.0.1\n12345\n") != std::string::npos, "request: %s",
		      sock.request.c_str());
}
END_TEST

START_TEST(test_program_runner_gives_up_on_a_socket_that_never_answers)
{
	// The socket accepts and reads, and never replies: the run must end at
	// its time limit, with the connection closed (no descriptor kept).
	FlushSocket sock(false);
	ProgramRunner runner;
	Result res;
	std::string error;
	ck_assert(runner.start(director::adapter::director_root_event(), "unix:" + sock.path,
			       {"10.0.0.1", "12345"}, 1000, 300, record(res), error));
	ck_assert_msg(run_until([&]() { return res.called; }, 5000),
		      "no result from a flush socket that never answers");
	ck_assert(!res.ok);
	ck_assert_int_eq(res.calls, 1);
	ck_assert(!runner.running());
	ck_assert_msg(run_until([&]() { return sock.client_saw_eof; }, 2000),
		      "the program client kept its connection");
	// No second report later.
	(void)run_until([]() { return false; }, 400);
	ck_assert_int_eq(res.calls, 1);
}
END_TEST

START_TEST(test_program_runner_destroyed_mid_run_closes_the_connection)
{
	FlushSocket sock(false);
	Result res;
	std::string error;
	{
		ProgramRunner runner;
		ck_assert(runner.start(director::adapter::director_root_event(),
				       "unix:" + sock.path, {"10.0.0.1", "12345"}, 1000, 5000,
				       record(res), error));
		ck_assert(run_until([&]() { return !sock.request.empty(); }, 5000));
	}
	ck_assert(run_until([&]() { return sock.client_saw_eof; }, 2000));
	ck_assert(!res.called);
}
END_TEST

START_TEST(test_program_runner_unreachable_socket_fails)
{
	ProgramRunner runner;
	Result res;
	std::string error;
	bool started = runner.start(director::adapter::director_root_event(),
				    "unix:/nonexistent/dir/flush", {"10.0.0.1", "1"}, 1000, 5000,
				    record(res), error);
	if (started)
		ck_assert(run_until([&]() { return res.called; }, 5000));
	ck_assert(!started || !res.ok);
}
END_TEST

int main()
{
	Suite *s = suite_create("program-runner");
	TCase *tc = adapter_test::tcase("flush socket");
	tcase_add_test(tc, test_program_runner_reports_a_socket_that_answers);
	tcase_add_test(tc, test_program_runner_gives_up_on_a_socket_that_never_answers);
	tcase_add_test(tc, test_program_runner_destroyed_mid_run_closes_the_connection);
	tcase_add_test(tc, test_program_runner_unreachable_socket_fails);
	suite_add_tcase(s, tc);
	return adapter_test::run_suite(s);
}
