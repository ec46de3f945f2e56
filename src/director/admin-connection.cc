// director-admin listener: moves doveadm's lines into a core::AdminSession
// (core/admin-session.h, which holds the protocol and the dispatch) and its
// replies out, and decides when to read.
//
// A command that must wait (reset-users, a queued kick, a pre-sync command)
// stops reading until its reply is sent, and so does a client that does not
// read its replies (once more than admin_output_high_water bytes are queued),
// so its memory stays bounded. USER-LIST (doveadm director map) is written as
// the output drains, a chunk at a time, over a user table cursor: a big table
// neither blocks the process nor sits in memory as one reply. A client that
// stops reading for admin_output_stall_msecs, or sends nothing while nothing
// is pending for admin_idle_timeout_msecs, is disconnected: it must not hold
// a slot for good. Bad input is logged and the connection is closed without a
// reply, as stock does.
#include <string>
#include <optional>

#include "adapter/dovecot.h"
#include "adapter/stream.h"
#include "core/line-reader.h"
#include "core/admin-protocol.h"
#include "core/admin-session.h"
#include "director/health.h"
#include "director/service.h"

namespace director {

namespace {

// The stock line limit (core/line-reader.h, which splits the lines).
using core::admin_max_line_bytes;
// Queued reply bytes above which no further command is read, and below
// which reading starts again. One reply may exceed it (USER-LIST of a big
// table); what is bounded is the backlog of replies nobody reads.
constexpr size_t admin_output_high_water = 1024 * 1024;
constexpr size_t admin_output_low_water = 64 * 1024;
// USER-LIST lines are formatted until this much output is queued, then
// again once it drained below admin_output_low_water.
constexpr size_t user_list_chunk_bytes = 64 * 1024;
// A client whose queued replies made no progress for this long is gone or
// stuck; stock keeps it (and its memory) forever.
constexpr unsigned admin_output_stall_msecs = 60 * 1000;
// doveadm opens a connection per command; one that sends nothing while no
// reply is pending is dropped after this long (stock: never).
constexpr unsigned admin_idle_timeout_msecs = 15 * 60 * 1000;

class AdminConnection : public Connection,
			public AdminWaiter,
			private core::AdminSessionPort {
public:
	AdminConnection(DirectorService &service, int fd)
		: Connection(service), stream_(fd, admin_max_line_bytes),
		  session_(service.core(), id(), *this)
	{
		stream_.send(core::AdminSession::greeting());
		stream_.watch([this]() { input(); });
		arm_idle_timeout();
	}

	void admin_done(core::AdminResult result) override
	{
		session_.reply_later(result);
		after_command();
	}

	void admin_resume() override
	{
		if (!session_.waiting_for_sync())
			return;
		core::Effects fx;
		// What the core decided before an exception is still carried out.
		service_.run_batch(fx, [&]() { session_.resume(service_.now(), fx); });
		after_command();
	}

private:
	// core::AdminSessionPort
	void admin_send(std::string_view data) override { stream_.send(data); }

	std::optional<std::string> admin_health_list() override
	{
		// Only while health checks run; otherwise an unknown command.
		if (service_.health() == nullptr)
			return std::nullopt;
		return service_.health()->list_reply();
	}

	void admin_ring_counters(core::RingConnId conn,
				 core::DirectorListConnection &c) override
	{
		if (RingTransport *t = service_.ring_transport(conn)) {
			c.bytes_read = t->bytes_read();
			c.bytes_sent = t->bytes_sent();
			c.bytes_buffered = t->bytes_buffered();
			c.peak_bytes_buffered = t->peak_buffered();
		}
	}

	void input()
	{
		arm_idle_timeout();
		auto r = stream_.read();
		if (r == adapter::Stream::ReadResult::read_full) {
			e_error(service_.event(),
				"doveadm sent more than %zu bytes in a line, disconnecting",
				admin_max_line_bytes);
			close();
			return;
		}
		std::string_view line;
		while (!closed() && !stream_.paused() && stream_.next_line(line))
			handle_line(line);
		if (!closed() && (r == adapter::Stream::ReadResult::eof ||
				  r == adapter::Stream::ReadResult::error))
			close();
	}

	void handle_line(std::string_view line)
	{
		core::Status st;
		core::Effects fx;
		service_.run_batch(fx, [&]() { st = session_.input_line(line, service_.now(), fx); });
		if (!st.ok()) {
			e_error(service_.event(), "%s", st.error().c_str());
			close();
			return;
		}
		if (session_.listing()) {
			watch_output_progress();
			continue_user_list();
			return;
		}
		after_command();
	}

	// After a reply was queued (or a command became pending).
	void after_command()
	{
		throttle_if_unread();
		update_reading();
		arm_idle_timeout();
	}

	bool busy() const { return !session_.reading() || output_throttled_; }

	// Reads commands only while none is pending and the client keeps up
	// with the replies.
	void update_reading()
	{
		if (busy())
			stream_.pause();
		else
			stream_.resume();
	}

	// The idle timeout runs only while nothing is pending on our side.
	void arm_idle_timeout()
	{
		if (closed() || busy()) {
			idle_timer_.reset();
			return;
		}
		idle_timer_.once(admin_idle_timeout_msecs, [this]() {
			e_error(service_.event(),
				"doveadm client sent nothing for %u secs, disconnecting",
				admin_idle_timeout_msecs / 1000);
			close();
		});
	}

	// While replies wait for the client to read them: disconnect it when
	// none of them was written for admin_output_stall_msecs.
	void watch_output_progress()
	{
		if (stall_timer_.active())
			return;
		stall_bytes_sent_ = stream_.bytes_sent();
		stall_timer_.repeat(admin_output_stall_msecs, [this]() {
			if (!output_throttled_ && !session_.listing()) {
				stall_timer_.reset();
				return;
			}
			if (stream_.bytes_sent() != stall_bytes_sent_) {
				stall_bytes_sent_ = stream_.bytes_sent();
				return;
			}
			e_error(service_.event(),
				"doveadm client read none of its %zu bytes of replies for %u secs, "
				"disconnecting",
				stream_.output_buffered(), admin_output_stall_msecs / 1000);
			stall_timer_.reset();
			close();
		});
	}

	void throttle_if_unread()
	{
		if (output_throttled_ || stream_.output_buffered() <= admin_output_high_water)
			return;
		output_throttled_ = true;
		update_reading();
		arm_idle_timeout();
		watch_output_progress();
		stream_.on_drained(admin_output_low_water, [this]() {
			output_throttled_ = false;
			update_reading();
			arm_idle_timeout();
		});
	}

	// USER-LIST: queues a chunk, then continues once it drained; the
	// session ends the reply with the empty line.
	void continue_user_list()
	{
		if (session_.continue_user_list(user_list_chunk_bytes)) {
			after_command();
			return;
		}
		update_reading();
		arm_idle_timeout();
		stream_.on_drained(admin_output_low_water, [this]() { continue_user_list(); });
	}

	adapter::Stream stream_;
	core::AdminSession session_;
	bool output_throttled_ = false; // replies are not being read
	adapter::TimeoutHandle idle_timer_;
	adapter::TimeoutHandle stall_timer_;
	uint64_t stall_bytes_sent_ = 0;
};

} // namespace

std::unique_ptr<Connection> make_admin_connection(DirectorService &service, int fd)
{
	return std::make_unique<AdminConnection>(service, fd);
}

} // namespace director
