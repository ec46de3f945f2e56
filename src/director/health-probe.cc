// HealthRound: one host's health probes over non-blocking TCP on the ioloop.
// The dialog itself (what to send, what is a good answer) is the core's
// HealthDialog; this file only connects, reads lines and enforces timeouts.
#include <cerrno>
#include <cstring>

#include "adapter/dovecot.h"
#include "director/health.h"

namespace director {

namespace {
// Banners and replies are short; a longer line is a broken server.
constexpr size_t probe_max_line_bytes = 8192;
} // namespace

HealthRound::HealthRound(const core::HealthConfig &config, const adapter::TlsClientContext *tls,
			 const core::IpAddr &ip, std::vector<core::HealthProbe> probes,
			 std::optional<core::IpAddr> source, Done done)
	: config_(config), tls_(tls), ip_(ip), probes_(std::move(probes)), source_(source),
	  done_(std::move(done))
{
	defer_.once(0, [this]() { start_probe(); });
}

HealthRound::~HealthRound() = default;

std::string HealthRound::probe_name() const
{
	const core::HealthProbe &p = probes_[next_];
	return std::string(core::health_protocol_name(p.protocol)) + ":" + std::to_string(p.port);
}

void HealthRound::start_probe()
{
	if (next_ >= probes_.size()) {
		Done done = std::move(done_);
		done(true, "ok");
		return;
	}
	probe_over_ = false;
	dialog_.emplace(probes_[next_].protocol, config_);
	struct ip_addr dest, src;
	if (net_addr2ip(ip_.to_string().c_str(), &dest) < 0) {
		end_probe(false, "bad address");
		return;
	}
	bool have_src = source_ && net_addr2ip(source_->to_string().c_str(), &src) == 0;
	int fd = net_connect_ip(&dest, probes_[next_].port, have_src ? &src : nullptr);
	if (fd == -1) {
		end_probe(false, std::string("connect() failed: ") + strerror(errno));
		return;
	}
	stream_ = std::make_unique<adapter::Stream>(fd, probe_max_line_bytes);
	stream_->on_connected([this](const std::string &error) { connected(error); });
	timeout_.once(unsigned(config_.timeout_msecs), [this]() {
		end_probe(false, "timed out after " + std::to_string(config_.timeout_msecs) +
					 " msecs" + (stream_ && stream_->bytes_read() == 0
							     ? " waiting for the banner"
							     : ""));
	});
}

void HealthRound::connected(const std::string &error)
{
	if (!error.empty()) {
		end_probe(false, "connect() failed: " + error);
		return;
	}
	if (core::health_protocol_tls(probes_[next_].protocol)) {
		std::string tls_error;
		if (tls_ == nullptr || !stream_->start_tls_client(*tls_, ip_.to_string(), tls_error)) {
			end_probe(false, "TLS setup failed: " + tls_error);
			return;
		}
	}
	stream_->watch([this]() { input(); });
}

void HealthRound::input()
{
	if (probe_over_)
		return;
	adapter::Stream::ReadResult r = stream_->read();
	std::string_view line;
	while (!probe_over_ && stream_->next_line(line)) {
		if (!line.empty() && line.back() == '\r')
			line.remove_suffix(1);
		core::HealthDialog::Step step = dialog_->line(line);
		if (!step.send.empty())
			stream_->send(step.send);
		if (step.done) {
			stream_->flush();
			end_probe(step.ok, step.reason);
		}
	}
	if (probe_over_)
		return;
	switch (r) {
	case adapter::Stream::ReadResult::data:
	case adapter::Stream::ReadResult::nothing:
		break;
	case adapter::Stream::ReadResult::read_full:
		end_probe(false, "reply line too long");
		break;
	case adapter::Stream::ReadResult::eof:
	case adapter::Stream::ReadResult::error:
		end_probe(false, "connection closed (" + stream_->read_error() + ")");
		break;
	}
}

void HealthRound::end_probe(bool ok, std::string reason)
{
	if (probe_over_)
		return;
	probe_over_ = true;
	timeout_.reset();
	if (stream_)
		stream_->pause();
	std::string why = ok ? std::string() : probe_name() + ": " + reason;
	defer_.once(0, [this, ok, why]() {
		stream_.reset();
		if (!ok) {
			Done done = std::move(done_);
			done(false, why);
			return;
		}
		next_++;
		start_probe();
	});
}

} // namespace director
