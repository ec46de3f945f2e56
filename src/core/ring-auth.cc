// The authenticated ring handshake (see ring-auth.h). No I/O, clock or
// randomness here.
#include "ring-auth.h"

#include "digest.h"
#include "tab-escape.h"

namespace director::core {

namespace {

constexpr std::string_view proof_label = "dovecot-director ring-auth v1";

std::string to_hex(const uint8_t *data, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	std::string out;
	out.reserve(size * 2);
	for (size_t i = 0; i < size; i++) {
		out += digits[data[i] >> 4];
		out += digits[data[i] & 0xf];
	}
	return out;
}

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

// Exactly N bytes as 2N hex digits.
template <size_t N> std::optional<std::array<uint8_t, N>> from_hex(std::string_view text)
{
	if (text.size() != N * 2)
		return std::nullopt;
	std::array<uint8_t, N> out{};
	for (size_t i = 0; i < N; i++) {
		int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return std::nullopt;
		out[i] = uint8_t(hi << 4 | lo);
	}
	return out;
}

std::string endpoint_text(const RingEndpoint &e)
{
	return e.ip.to_string() + ":" + std::to_string(e.port);
}

} // namespace

Result<std::string> parse_ring_secret(std::string_view data)
{
	if (!data.empty() && data.back() == '\n') {
		data.remove_suffix(1);
		if (!data.empty() && data.back() == '\r')
			data.remove_suffix(1);
	}
	if (data.size() < ring_secret_min_bytes) {
		return make_error("the secret is " + std::to_string(data.size()) +
				  " bytes, it must be at least " +
				  std::to_string(ring_secret_min_bytes));
	}
	if (data.size() > ring_secret_max_bytes) {
		return make_error("the secret is longer than " +
				  std::to_string(ring_secret_max_bytes) + " bytes");
	}
	if (data.find_first_of(std::string_view("\0\r\n", 3)) != std::string_view::npos)
		return make_error("the secret must be a single line without NUL bytes");
	return std::string(data);
}

std::string format_ring_auth_offer(const RingAuthNonce &nonce)
{
	return std::string(ring_auth_mechanism) + "\t" + to_hex(nonce.data(), nonce.size());
}

Result<std::optional<RingAuthNonce>> parse_ring_auth_offer(std::string_view version_line)
{
	// VERSION director <major> <minor> [<mechanism> <nonce>]; the same split
	// stock uses, so what we read is what stock would ignore.
	std::vector<std::string> f = split_c_fields(version_line);
	if (f.size() < 5 || f[0] != "VERSION" || f[4] != ring_auth_mechanism)
		return std::optional<RingAuthNonce>();
	if (f.size() < 6)
		return make_error("ring authentication offer without a nonce");
	auto nonce = from_hex<ring_auth_nonce_bytes>(f[5]);
	if (!nonce)
		return make_error("ring authentication offer with a bad nonce " + quote_for_log(f[5]));
	return std::optional<RingAuthNonce>(*nonce);
}

bool is_ring_auth_line(std::string_view line)
{
	return line.substr(0, line.find('\t')) == ring_auth_command;
}

Result<RingAuthProof> parse_ring_auth_line(std::string_view line)
{
	// The command name is matched as sent, before unescaping, as
	// is_ring_auth_line() does: "\001RING-AUTH" is not RING-AUTH.
	if (!is_ring_auth_line(line))
		return make_error("not a RING-AUTH line");
	std::vector<std::string> f = split_c_fields(line);
	if (f.size() != 2)
		return make_error("RING-AUTH needs exactly one field");
	auto proof = from_hex<ring_auth_proof_bytes>(f[1]);
	if (!proof)
		return make_error("RING-AUTH with a malformed proof " + quote_for_log(f[1]));
	return *proof;
}

std::string format_ring_auth_line(const RingAuthProof &proof)
{
	return std::string(ring_auth_command) + "\t" + to_hex(proof.data(), proof.size());
}

std::optional<RingAuthProof> ring_auth_proof(std::string_view secret, RingAuthRole role,
					     const RingEndpoint &connector,
					     const RingEndpoint &acceptor,
					     const RingAuthNonce &connector_nonce,
					     const RingAuthNonce &acceptor_nonce)
{
	std::string msg(proof_label);
	msg += '\n';
	msg += role == RingAuthRole::connector ? "connector" : "acceptor";
	msg += '\n';
	msg += endpoint_text(connector);
	msg += '\n';
	msg += endpoint_text(acceptor);
	msg += '\n';
	msg += to_hex(connector_nonce.data(), connector_nonce.size());
	msg += '\n';
	msg += to_hex(acceptor_nonce.data(), acceptor_nonce.size());
	msg += '\n';
	return hmac_sha256(secret, msg);
}

bool ring_auth_allowed_before_proof(std::string_view name)
{
	return name == "VERSION" || name == "ME" || name == ring_auth_command || name == "PING" ||
	       name == "PONG" || name == "QUIT";
}

// ---------------------------------------------------------------- RingAuth

RingAuth::RingAuth(const std::string &secret, RingAuthRole role, const RingEndpoint &self,
		   std::optional<RingEndpoint> peer, const RingAuthNonce &nonce)
	: secret_(secret), role_(role), self_(self), peer_(std::move(peer)), our_nonce_(nonce)
{
}

std::string_view RingAuth::stage_name() const
{
	switch (state_) {
	case State::waiting_version:
		return "waiting for the peer's VERSION";
	case State::waiting_me:
		return "waiting for the peer's ME";
	case State::waiting_proof:
		return "waiting for the peer's RING-AUTH";
	case State::proved:
		return "authenticated";
	case State::failed:
		return "authentication failed";
	}
	return "";
}

RingAuth::Step RingAuth::failure(std::string error)
{
	state_ = State::failed;
	Step s;
	s.error = std::move(error);
	return s;
}

std::optional<RingAuthProof> RingAuth::proof_for(RingAuthRole role) const
{
	const RingEndpoint &connector = role_ == RingAuthRole::connector ? self_ : *peer_;
	const RingEndpoint &acceptor = role_ == RingAuthRole::acceptor ? self_ : *peer_;
	const RingAuthNonce &cn = role_ == RingAuthRole::connector ? our_nonce_ : peer_nonce_;
	const RingAuthNonce &an = role_ == RingAuthRole::acceptor ? our_nonce_ : peer_nonce_;
	return ring_auth_proof(secret_, role, connector, acceptor, cn, an);
}

RingAuth::Step RingAuth::peer_version(std::string_view line)
{
	if (state_ == State::failed)
		return failure("ring authentication already failed");
	if (version_seen_)
		return failure("duplicate VERSION during ring authentication");
	version_seen_ = true;
	auto offer = parse_ring_auth_offer(line);
	if (!offer.ok())
		return failure(offer.error());
	if (!offer->has_value()) {
		return failure("peer did not offer ring authentication (a stock director, or "
			    "director_ring_secret_file is not set there)");
	}
	peer_nonce_ = **offer;
	if (equal_constant_time(peer_nonce_.data(), our_nonce_.data(), peer_nonce_.size()))
		return failure("peer sent our own nonce back");
	if (role_ == RingAuthRole::acceptor) {
		state_ = State::waiting_me;
		return Step{};
	}
	// The connector proves first; it knows whom it dialled.
	auto proof = proof_for(RingAuthRole::connector);
	if (!proof)
		return failure("computing the ring authentication proof failed");
	state_ = State::waiting_proof;
	Step s;
	s.send = format_ring_auth_line(*proof);
	return s;
}

RingAuth::Step RingAuth::peer_me(const RingEndpoint &peer)
{
	if (state_ == State::failed)
		return failure("ring authentication already failed");
	if (role_ == RingAuthRole::connector) {
		if (peer.ip != peer_->ip || peer.port != peer_->port) {
			return failure("peer says it is " + endpoint_text(peer) + ", we dialled " +
				    endpoint_text(*peer_));
		}
		return Step{};
	}
	if (state_ != State::waiting_me)
		return failure("ME out of order during ring authentication");
	peer_ = peer;
	state_ = State::waiting_proof;
	return Step{};
}

RingAuth::Step RingAuth::peer_proof(std::string_view line)
{
	if (state_ == State::failed)
		return failure("ring authentication already failed");
	if (state_ != State::waiting_proof) {
		return failure(std::string("RING-AUTH while ") + std::string(stage_name()));
	}
	auto theirs = parse_ring_auth_line(line);
	if (!theirs.ok())
		return failure(theirs.error());
	RingAuthRole peer_role =
		role_ == RingAuthRole::connector ? RingAuthRole::acceptor : RingAuthRole::connector;
	auto expected = proof_for(peer_role);
	if (!expected)
		return failure("computing the ring authentication proof failed");
	if (!equal_constant_time(expected->data(), theirs->data(), expected->size()))
		return failure("wrong ring authentication proof (a different director_ring_secret_file?)");
	Step s;
	if (role_ == RingAuthRole::acceptor) {
		auto ours = proof_for(RingAuthRole::acceptor);
		if (!ours)
			return failure("computing the ring authentication proof failed");
		s.send = format_ring_auth_line(*ours);
	}
	state_ = State::proved;
	s.proved = true;
	return s;
}

} // namespace director::core
