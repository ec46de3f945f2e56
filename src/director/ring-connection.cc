// The ring listener and outgoing ring connections: TCP transport for the
// core's ring state machine (core/director-ring.cc). Each line read goes to
// Director::ring_line(); what the core wants sent comes back as Effects.
#include <string>

#include "adapter/dovecot.h"
#include "adapter/stream.h"
#include "core/line-reader.h"
#include "core/ring-protocol.h"
#include "director/service.h"

namespace director {

namespace {

// The stock line limit (core/line-reader.h, which splits the lines).
using core::ring_max_line_bytes;
// What one read() of a ring connection takes at most (the lines in it are
// still held to the line limit).
constexpr size_t ring_read_bytes = 64 * 1024;
// Handshake users are sent in batches; the next batch waits until the
// output buffer is below this.
constexpr size_t ring_output_low_water_bytes = 128 * 1024;

class RingConnection : public Connection, public RingTransport {
public:
	RingConnection(DirectorService &service, int fd, core::RingConnId ring_id, bool outgoing)
		: Connection(service), ring_id_(ring_id), stream_(fd, ring_max_line_bytes, adapter::Stream::Framing::lines,
					  ring_read_bytes)
	{
		counted_as_client_ = !outgoing;
		outgoing_ = outgoing;
		started_usecs_ = DirectorService::now_usecs();
		if (outgoing) {
			stream_.on_connected([this](const std::string &error) { connected(error); });
		} else {
			peer_ = peer_of(fd);
			connected_usecs = started_usecs_;
			stream_.watch([this]() { input(); });
		}
	}

	// For the ring events: the other end, which side opened it, since when.
	const std::string &peer() const override { return peer_; }
	bool outgoing() const override { return outgoing_; }
	int64_t started_usecs() const override { return started_usecs_; }
	void set_peer(std::string peer) { peer_ = std::move(peer); }

	core::RingConnId ring_id() const override { return ring_id_; }

	void ring_send(std::string_view data) override
	{
		if (closed())
			return;
		if (batching_ && !corked_) {
			// The first output of a batch corks (one setsockopt); a
			// batch that sends nothing on this connection costs none.
			stream_.cork();
			corked_ = true;
		}
		stream_.send(data);
		last_output_ = service_.now().mono;
		if (stream_.output_buffered() > service_.settings().output_buffer_size) {
			e_error(service_.event(),
				"director(%s): Output buffer full (%zu bytes), disconnecting",
				name().c_str(), stream_.output_buffered());
			lost("Output buffer full");
		}
	}

	void ring_close() override
	{
		stream_.flush();
		close();
	}

	void ring_wait_drain() override
	{
		stream_.on_drained(ring_output_low_water_bytes, [this]() {
			core::Effects fx;
			service_.core().ring_drained(ring_id_, service_.now(), fx);
			service_.run_effects(fx);
		});
	}

	// Corking is lazy: cork() only marks a batch, and the socket is corked
	// by its first ring_send(). A joining director reads the handshake in
	// thousands of batches that send nothing back.
	void cork() override { batching_ = true; }
	void uncork() override
	{
		batching_ = false;
		peak_buffered_ = std::max(peak_buffered_, stream_.output_buffered());
		if (corked_) {
			corked_ = false;
			stream_.uncork();
		}
	}

	uint64_t bytes_read() const override { return stream_.bytes_read(); }
	uint64_t bytes_sent() const override { return stream_.bytes_sent(); }
	size_t bytes_buffered() const override { return stream_.output_buffered(); }
	size_t peak_buffered() const override { return peak_buffered_; }

private:
	std::string name() const { return "ring connection " + std::to_string(ring_id_); }

	void connected(const std::string &error)
	{
		if (!error.empty()) {
			lost("connect() failed: " + error);
			return;
		}
		stream_.watch([this]() { input(); });
		connected_usecs = DirectorService::now_usecs();
		core::Effects fx;
		service_.core().ring_connected(ring_id_, service_.now(), fx);
		service_.run_effects(fx);
	}

	void input()
	{
		auto r = stream_.read();
		if (r == adapter::Stream::ReadResult::read_full) {
			e_error(service_.event(), "director(%s): Director sent us more than %zu bytes",
				name().c_str(), ring_max_line_bytes);
			lost("Too long input line");
			return;
		}
		core::Effects fx;
		core::Now now = service_.now();
		// Lines of one read are handled as one batch, with the output of
		// every connection collected into as few writes as possible. An
		// exception must not leave the ring corked.
		service_.cork_ring();
		try {
			service_.run_batch(fx, [&]() {
				std::string_view line;
				while (!closed() && stream_.next_line(line)) {
					service_.count_ring_line();
					service_.core().ring_line(ring_id_, line, now, fx);
				}
			});
		} catch (...) {
			service_.uncork_ring();
			throw;
		}
		service_.uncork_ring();
		if (closed())
			return;
		if (r == adapter::Stream::ReadResult::eof)
			lost("EOF");
		else if (r == adapter::Stream::ReadResult::error)
			lost(stream_.read_error());
	}

	// The connection died under us: tell the core, then close.
	void lost(const std::string &reason)
	{
		if (closed())
			return;
		service_.ring_event_disconnected(*this, reason);
		close();
		core::Effects fx;
		service_.core().ring_closed(ring_id_, reason, service_.now(), fx);
		service_.run_effects(fx);
	}

	static std::string peer_of(int fd)
	{
		struct ip_addr ip;
		in_port_t port = 0;
		if (net_getpeername(fd, &ip, &port) < 0)
			return "";
		return std::string(net_ip2addr(&ip)) + ":" + std::to_string(port);
	}

	core::RingConnId ring_id_;
	std::string peer_;
	bool outgoing_ = false;
	int64_t started_usecs_ = 0;
	adapter::Stream stream_;
	int64_t last_output_ = 0;
	size_t peak_buffered_ = 0;
	bool batching_ = false; // between cork() and uncork()
	bool corked_ = false; // the stream is corked (by the batch's first send)
};

} // namespace

std::unique_ptr<Connection> make_ring_connection(DirectorService &service, int fd,
						 core::RingConnId ring_id, bool outgoing,
						 const std::string &peer)
{
	auto c = std::make_unique<RingConnection>(service, fd, ring_id, outgoing);
	if (outgoing)
		c->set_peer(peer);
	return c;
}

int connect_ring(const core::IpAddr &ip, uint16_t port, const core::IpAddr &source)
{
	struct ip_addr dest, src;
	if (net_addr2ip(ip.to_string().c_str(), &dest) < 0 ||
	    net_addr2ip(source.to_string().c_str(), &src) < 0)
		return -1;
	return net_connect_ip(&dest, port, &src);
}

} // namespace director
