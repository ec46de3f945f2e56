// libFuzzer target: the authenticated ring handshake lines (ring-auth). The first
// byte picks our role and whether the harness finally sends the right proof; the
// rest is LF-separated lines from the peer: VERSION (with or without an offer),
// ME, RING-AUTH or anything else. Checks: codecs round-trip, every failure has a
// message, a failed session stays failed, and a session is proved only by the
// proof the peer must send for exactly these endpoints and nonces.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ring-auth.h"
#include "ring-protocol.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view line)
{
	fprintf(stderr, "fuzz-ring-auth: %s\n  line: '%.*s'\n", what, int(line.size()),
		line.data());
	abort();
}

const std::string secret = "fuzz-secret-0123456789";

void check_codecs(std::string_view line)
{
	auto offer = parse_ring_auth_offer(line);
	if (!offer.ok() && offer.error().empty())
		fail("offer error without a message", line);
	if (offer.ok() && offer->has_value()) {
		std::string again = "VERSION\tdirector\t1\t9\t" + format_ring_auth_offer(**offer);
		auto r = parse_ring_auth_offer(again);
		if (!r.ok() || !r->has_value() || **r != **offer)
			fail("offer does not round-trip", line);
	}
	auto proof = parse_ring_auth_line(line);
	if (!proof.ok() && proof.error().empty())
		fail("RING-AUTH error without a message", line);
	if (proof.ok()) {
		if (!is_ring_auth_line(line))
			fail("parsed RING-AUTH that is_ring_auth_line() rejects", line);
		auto r = parse_ring_auth_line(format_ring_auth_line(*proof));
		if (!r.ok() || *r != *proof)
			fail("RING-AUTH does not round-trip", line);
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool connector = (data[0] & 1) != 0;
	bool send_right_proof = (data[0] & 2) != 0;
	std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);

	RingEndpoint self{IpAddr::v4(127, 0, 0, 2), 9090};
	RingEndpoint dialled{IpAddr::v4(127, 0, 0, 3), 9090};
	RingAuthNonce our_nonce{};
	our_nonce[0] = 0x5a;
	RingAuth auth(secret, connector ? RingAuthRole::connector : RingAuthRole::acceptor, self,
		      connector ? std::optional<RingEndpoint>(dialled) : std::nullopt, our_nonce);

	std::optional<RingAuthNonce> peer_nonce;
	std::optional<RingEndpoint> peer_me;
	RingParseContext pctx = RingParseContext::fresh(!connector);
	size_t pos = 0;
	while (pos <= rest.size()) {
		size_t lf = rest.find('\n', pos);
		std::string_view line = rest.substr(pos, lf == std::string_view::npos ? rest.npos
										     : lf - pos);
		pos = lf == std::string_view::npos ? rest.size() + 1 : lf + 1;
		check_codecs(line);
		bool was_failed = auth.failed();
		RingAuth::Step step;
		if (line.rfind("VERSION", 0) == 0) {
			auto offer = parse_ring_auth_offer(line);
			if (offer.ok() && offer->has_value() && !peer_nonce)
				peer_nonce = **offer;
			step = auth.peer_version(line);
			pctx.version_received = true;
		} else if (line.rfind("ME\t", 0) == 0) {
			auto me = parse_ring_line(line, pctx);
			if (!me.ok())
				continue;
			pctx.me_received = true;
			RingEndpoint ep{me->ip, me->port};
			bool first = auth.state() == RingAuth::State::waiting_me;
			step = auth.peer_me(ep);
			if (first && step.error.empty())
				peer_me = ep;
		} else if (is_ring_auth_line(line)) {
			step = auth.peer_proof(line);
		} else {
			continue;
		}
		if (was_failed && step.error.empty())
			fail("a failed session accepted input", line);
		if (auth.failed() && step.error.empty())
			fail("failed without a message", line);
		if (step.proved) {
			// Only the right proof for these endpoints and nonces.
			if (!peer_nonce)
				fail("proved without the peer's nonce", line);
			RingEndpoint c = connector ? self : peer_me.value_or(RingEndpoint{});
			RingEndpoint a = connector ? dialled : self;
			auto want = ring_auth_proof(secret,
						    connector ? RingAuthRole::acceptor
							      : RingAuthRole::connector,
						    c, a, connector ? our_nonce : *peer_nonce,
						    connector ? *peer_nonce : our_nonce);
			auto got = parse_ring_auth_line(line);
			if (!want || !got.ok() || *got != *want)
				fail("proved by something other than the right proof", line);
		}
	}
	if (send_right_proof && peer_nonce &&
	    auth.state() == RingAuth::State::waiting_proof && (connector || peer_me)) {
		RingEndpoint c = connector ? self : *peer_me;
		RingEndpoint a = connector ? dialled : self;
		auto proof = ring_auth_proof(secret,
					     connector ? RingAuthRole::acceptor : RingAuthRole::connector,
					     c, a, connector ? our_nonce : *peer_nonce,
					     connector ? *peer_nonce : our_nonce);
		RingAuth::Step step = auth.peer_proof(format_ring_auth_line(*proof));
		if (!step.proved || !auth.proved())
			fail("the right proof was refused", step.error);
		if (connector != step.send.empty())
			fail("the acceptor must answer with its proof, the connector with nothing",
			     step.send);
	}
	return 0;
}
