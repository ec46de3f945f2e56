// The authenticated ring: a mutual HMAC-SHA256 challenge-response between two
// of our directors that share director_ring_secret_file. Owns the wire form of
// the offer and the proof, and one connection's authentication state. No I/O,
// no clock and no randomness here: nonces come from the caller.
//
// The exchange. Stock 2.3 ignores VERSION fields after the minor version (it
// reads three), so a director with a secret appends an offer to its VERSION:
//
//   VERSION <TAB> director <TAB> 1 <TAB> 9 <TAB> AUTH-HMAC-SHA256 <TAB> <nonce>
//
// where <nonce> is 32 random bytes in lowercase hex, fresh per connection. Both
// sides send VERSION at once, so each learns the other's nonce first thing.
// A peer whose VERSION carries no offer (stock, or ours without a secret) is
// refused; a RING-AUTH line goes only to a peer that offered, so stock never
// sees one.
//
//   connector (dialled out)                  acceptor (our ring listener)
//   VERSION+offer, ME                        VERSION+offer, ME
//   on the acceptor's VERSION:
//     RING-AUTH <proof_c>
//                                            on VERSION, ME and RING-AUTH:
//                                              checks proof_c, then
//                                              RING-AUTH <proof_a>
//   checks proof_a
//   then the stock handshake continues (DIRECTOR lines, host list, users,
//   OPTIONS, DONE); nothing else is sent or accepted before.
//
// proof = HMAC-SHA256(secret, "dovecot-director ring-auth v1" LF role LF
//                     connector ip:port LF acceptor ip:port LF
//                     connector nonce LF acceptor nonce LF)
// with role "connector" or "acceptor". The connector's ip:port is the one its
// ME names (the acceptor checks the IP against the socket), the acceptor's is
// the address the connector dialled. Both nonces make a recorded proof useless
// on any later connection; the role keeps a proof from being reflected back
// to its sender; the addresses keep a proof made for one pair of directors
// from being used between another pair. The connector proves first, so an
// acceptor never answers a stranger with a proof.
//
// This authenticates the peer at the start of a connection; it does not
// protect the lines that follow against someone who can alter the TCP stream.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ip-addr.h"
#include "result.h"

namespace director::core {

constexpr std::string_view ring_auth_mechanism = "AUTH-HMAC-SHA256";
constexpr std::string_view ring_auth_command = "RING-AUTH";
constexpr size_t ring_auth_nonce_bytes = 32;
constexpr size_t ring_auth_proof_bytes = 32;
// A secret shorter than this is refused at startup: it could be guessed
// offline from one recorded handshake.
constexpr size_t ring_secret_min_bytes = 16;
constexpr size_t ring_secret_max_bytes = 1024;

using RingAuthNonce = std::array<uint8_t, ring_auth_nonce_bytes>;
using RingAuthProof = std::array<uint8_t, ring_auth_proof_bytes>;

enum class RingAuthRole { connector, acceptor };

// A director's ring identity as it appears in ME and director_servers.
struct RingEndpoint {
	IpAddr ip;
	uint16_t port = 0;
};

// The contents of director_ring_secret_file -> the secret: one trailing LF
// (or CRLF) is dropped, so `echo` and `openssl rand -hex` output both work.
// Errors: shorter than ring_secret_min_bytes, longer than
// ring_secret_max_bytes, or a NUL, CR or LF left inside.
Result<std::string> parse_ring_secret(std::string_view file_data);

// "AUTH-HMAC-SHA256 <TAB> <nonce hex>": the fields our VERSION line carries
// after the minor version.
std::string format_ring_auth_offer(const RingAuthNonce &nonce);

// The offer in a peer's raw VERSION line (without LF). nullopt: no offer (a
// stock director, or ours without a secret; also an offer of a mechanism we
// do not know). Error: our mechanism with a missing or malformed nonce.
Result<std::optional<RingAuthNonce>> parse_ring_auth_offer(std::string_view version_line);

// True when `line` is a RING-AUTH line (well-formed or not).
bool is_ring_auth_line(std::string_view line);
// "RING-AUTH <TAB> <proof hex>" -> the proof; error on anything else.
Result<RingAuthProof> parse_ring_auth_line(std::string_view line);
std::string format_ring_auth_line(const RingAuthProof &proof);

// The proof `role` sends for this pair of endpoints and nonces; nullopt only
// if libcrypto fails.
std::optional<RingAuthProof> ring_auth_proof(std::string_view secret, RingAuthRole role,
					     const RingEndpoint &connector,
					     const RingEndpoint &acceptor,
					     const RingAuthNonce &connector_nonce,
					     const RingAuthNonce &acceptor_nonce);

// Commands a peer may send before it has proved the secret: the handshake
// lines that carry the offer and the identity, and the keep-alives that the
// ring sends on every connection (PING, PONG) or on leaving (QUIT). Anything
// else from an unproved peer closes the connection.
bool ring_auth_allowed_before_proof(std::string_view command_name);

// One connection's authentication. The ring link feeds it the peer's VERSION
// line, the peer's ME identity and RING-AUTH lines in the order they arrive,
// and sends what a step returns. Once failed() it stays failed: the link
// closes the connection with error() as the reason.
class RingAuth {
public:
	enum class State { waiting_version, waiting_me, waiting_proof, proved, failed };

	// What the link does after an input: send `send` (a line without LF)
	// if non-empty; close with `error` if non-empty; carry on with the
	// stock handshake if `proved` became true in this step.
	struct Step {
		std::string send;
		std::string error;
		bool proved = false;
	};

	// `secret` must outlive this object (the director owns it). A connector
	// knows the acceptor it dialled (`peer`); an acceptor learns the
	// connector from ME (peer = nullopt). `nonce` must be fresh random bytes.
	RingAuth(const std::string &secret, RingAuthRole role, const RingEndpoint &self,
		 std::optional<RingEndpoint> peer, const RingAuthNonce &nonce);

	// The fields to append to our VERSION line.
	std::string offer() const { return format_ring_auth_offer(our_nonce_); }

	// The peer's raw VERSION line.
	Step peer_version(std::string_view line);
	// The identity in the peer's ME. For a connector it must be the endpoint
	// it dialled (the ring link checks that as stock does); for an acceptor
	// it becomes the connector endpoint of the proofs.
	Step peer_me(const RingEndpoint &peer);
	// A RING-AUTH line from the peer.
	Step peer_proof(std::string_view line);

	State state() const { return state_; }
	bool proved() const { return state_ == State::proved; }
	bool failed() const { return state_ == State::failed; }
	RingAuthRole role() const { return role_; }
	// Where we are, for disconnect log lines.
	std::string_view stage_name() const;

private:
	Step failure(std::string error);
	std::optional<RingAuthProof> proof_for(RingAuthRole role) const;

	const std::string &secret_;
	RingAuthRole role_;
	RingEndpoint self_;
	std::optional<RingEndpoint> peer_;
	RingAuthNonce our_nonce_;
	RingAuthNonce peer_nonce_{};
	bool version_seen_ = false;
	State state_ = State::waiting_version;
};

} // namespace director::core
