// RingLink: one TCP connection to another director, as the ring sees it: its handshake
// state, the user stream of an outgoing handshake, pings and counters. Owned by Ring;
// the adapter knows it only by RingConnId. No I/O here: lines leave as Effects.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "director-list.h"
#include "director-types.h"
#include "host-list.h"
#include "ring-auth.h"
#include "ring-protocol.h"
#include "user-digest.h"
#include "user-table.h"

namespace director::core {

class RingLink {
public:
	enum class State {
		connecting,  // outgoing: TCP connect under way
		handshaking, // VERSION, ME, host list, users and DONE being exchanged
		handshaked,  // DONE both ways: ring commands flow
		closing,     // closed by us or the peer; swept on the next tick
	};

	RingLink(RingConnId id, bool incoming, const IpAddr &remote, Now now);
	~RingLink();
	RingLink(const RingLink &) = delete;
	RingLink &operator=(const RingLink &) = delete;

	RingConnId id() const { return id_; }
	bool incoming() const { return incoming_; }
	State state() const { return state_; }
	bool connected() const { return state_ == State::handshaking || state_ == State::handshaked; }
	bool handshaked() const { return state_ == State::handshaked; }
	bool closing() const { return state_ == State::closing; }
	void set_connected(Now now);
	void set_handshaked() { state_ = State::handshaked; pctx.handshake_done = true; }
	void set_closing() { stop_user_stream(); state_ = State::closing; }

	// The peer's name for log lines: ip:port once known, else its IP.
	std::string who() const { return host ? host->name() : remote_ip.to_string(); }
	unsigned peer_minor() const { return pctx.peer_minor; }
	bool ignoring_host_list() const { return ignore_host_list; }

	// Queues a command for the peer, formatted for its version and the ring's.
	void send(const RingCommand &cmd, unsigned ring_min_version, Effects &fx);
	// Sends PING unless one is outstanding.
	void ping(Now now, unsigned ring_min_version, Effects &fx);
	// A PONG arrived: false when none was expected.
	bool pong(Now now);

	// The user stream of an outgoing handshake: every user of `users`, in batches
	// of ring_handshake_users_per_batch, each sent when the output has drained. The
	// table owns the stream's cursor, so users erased, refreshed or re-sorted meanwhile
	// are never skipped.
	void start_user_stream(UserTable &users);
	// The same, limited to the users of `buckets` (a delta join, user-digest.h).
	// When they are few (at most an eighth of the table), they are picked in
	// one pass over the table's slab (UserTable::for_each, several times faster
	// than walking the expiry list) and sent in timestamp order. A user erased
	// meanwhile is skipped; one added meanwhile is not met (during a delta
	// handshake it is where a user added to an equal bucket is: the digest
	// checks after the handshake find both). More of them walk the expiry list
	// batch by batch, as the whole-table stream does: no list of millions to
	// build and sort in one go.
	void start_user_stream(UserTable &users, const UserDigestBuckets &buckets);
	// Like the handshake stream, but after the handshake: only users marked resend,
	// as USER commands, which peers refresh and pass on only when new to them.
	// Few of them are picked beforehand, as for a delta stream (a user marked or
	// changed later goes round as any ring update does), from the table's list
	// of them (UserTable::resend_marked()) without a walk of the slab; after a
	// full join, when the whole table is marked, the expiry list is walked.
	void start_resend_stream(UserTable &users);
	bool resending() const { return resend_; }
	// The same stream on a handshaked link, as plain USER updates (with timestamps),
	// which the peer applies and forwards around the ring: how a restored table
	// reaches the directors that do not get it in a handshake.
	void start_user_push(UserTable &users)
	{
		start_user_stream(users);
		stream_as_updates_ = true;
	}
	// The left's answer to a digest check: the users of `buckets` as
	// USER-DIGEST U lines (weak users are left out: their conflict is still
	// being settled on the ring).
	void start_repair_stream(UserTable &users, const UserDigestBuckets &buckets)
	{
		start_user_stream(users, buckets);
		stream_as_repair_ = true;
		repair_sent = 0;
	}
	bool repairing() const { return stream_as_repair_; }
	// Sends the next batch; true when the last user has been sent.
	bool continue_user_stream(const HostList &hosts, Now now, Effects &fx);
	bool sending_users() const { return stream_users_ != nullptr; }
	void stop_user_stream();

	// Set by the ring; read by the ring and the handler.
	RingParseContext pctx;
	DirectorHost *host = nullptr; // known after ME (incoming), at connect (outgoing)
	IpAddr remote_ip;
	bool ignore_host_list = false;
	bool handshake_sent = false; // outgoing: host list, users and DONE queued
	bool done_received = false;
	bool synced = false;
	bool verifying_left = false;
	bool connect_sent = false;
	// Times in this link are Now::mono seconds.
	int64_t connect_sent_at = 0;
	int64_t close_at = 0; // after an ignored CONNECT
	unsigned users_received = 0;
	unsigned users_sent = 0;
	bool want_drain = false;
	bool users_unsorted = false;
	// Users this incoming handshake added or changed (marked resend in the table).
	unsigned users_to_resend = 0;
	int64_t created = 0;
	int64_t last_input = 0;
	int64_t last_output = 0;
	bool ping_pending = false;
	int64_t ping_sent_at = 0;
	uint32_t last_ping_msecs = 0;
	// handshake fast path: the last U line's host, by text
	std::string hs_ip_text;
	std::optional<IpAddr> hs_ip;

	// Ring security (ring-security.cc). What the peer sends before its
	// handshake finished changes nothing until DONE: commands wait here,
	// handshake users in a compact form (12 bytes each), and the incoming
	// ME's consequences for our left wait too.
	struct DeferredUser {
		uint32_t user_hash;
		uint32_t timestamp;
		uint32_t ip_index; // into deferred_user_ips
		bool weak;
	};
	struct DeferredCommand {
		RingCommand cmd;
		size_t users_before; // deferred_users that arrived before it
	};
	bool me_effects_pending = false;
	std::vector<DeferredCommand> deferred;
	std::vector<DeferredUser> deferred_users;
	std::vector<IpAddr> deferred_user_ips;
	bool applying_handshake = false; // the held handshake lines are being applied
	// With director_ring_secret_file: the peer's proof. Until it is proved only
	// VERSION, ME, RING-AUTH, PING, PONG and QUIT pass.
	std::optional<RingAuth> auth;
	bool directors_pending = false; // connector: our DIRECTOR lines wait for the proof

	// User-table digests (user-digest.h), only with a peer that offered them.
	bool digest_peer = false;      // its VERSION offered USER-DIGEST
	bool digest_peer_restored = false; // ... and USER-DIGEST-RESTORED
	bool digest_peer_refine = false;   // ... and USER-DIGEST-REFINE
	bool digests_sent = false;     // acceptor: our bucket digests went out
	bool awaiting_digests = false; // connector: the user stream waits for them
	bool stream_held = false;      // connector: held by a state restore (ring.h)
	bool send_no_users = false;    // connector: restored, and the peer's ring kept running
	UserDigestReader digest_in;    // what the peer sent (its current block)
	unsigned digest_bits_sent = 0; // acceptor: the bits of our BEGIN
	bool sub_sent = false;         // acceptor: answered a REFINE
	UserDigestBuckets refined;     // connector: our REFINE, until the SUB answers it
	size_t delta_buckets = 0;      // buckets a delta join replaced or sent
	size_t delta_kept = 0;         // acceptor: users of equal buckets kept
	bool delta_joined = false;     // acceptor: joined the connector's ring with a delta

	// Digest checks after the handshake (user-digest.h), only with a peer
	// that offered them. The checking side is the right of this link.
	bool digest_check_peer = false; // its VERSION offered USER-DIGEST-CHECK
	UserDigestReader check_in;      // left: the right's CHECK block
	size_t repair_sent = 0;         // left: U lines of the current answer
	struct DigestCheck {
		int64_t sent_at = 0;          // Now::mono
		uint64_t host_erasures = 0;   // UserTable::host_erasures() when sent
		size_t buckets = 0;
		size_t differing = 0;
		size_t received = 0;
		size_t changed = 0;
		bool answered = false;        // REPAIR arrived
	};
	std::optional<DigestCheck> check; // right: our CHECK awaits its answer

private:
	RingConnId id_;
	bool incoming_;
	State state_;
	UserTable *stream_users_ = nullptr;
	UserTable::Cursor stream_cursor_ = 0; // unless stream_listed_
	// A stream over users picked beforehand (start_user_stream() with buckets,
	// start_resend_stream()): each with its hash and tag, so that an index
	// erased and handed to another user meanwhile is recognised and skipped.
	struct Listed {
		UserIndex u;
		uint32_t user_hash;
		TagId tag;
	};
	bool stream_listed_ = false;
	std::vector<Listed> stream_list_;
	size_t stream_list_pos_ = 0;
	// A picked stream is used for at most 1/listed_stream_max_share of the
	// table (and always for up to listed_stream_min_cap users).
	static constexpr size_t listed_stream_max_share = 8;
	static constexpr size_t listed_stream_min_cap = 4096;
	// The users `pick(user, its hash)` accepts into `list`, or false (and `list` empty) when
	// they are too many for a picked stream.
	template <typename Pick>
	static bool pick_users_(const UserTable &users, Pick &&pick, std::vector<Listed> &list);
	void start_listed_stream_(UserTable &users, std::vector<Listed> list);
	UserIndex next_stream_user_(UserTable &users);
	bool resend_ = false;
	bool stream_as_updates_ = false;
	bool stream_as_repair_ = false;
	UserDigestBuckets stream_filter_; // a walked delta stream's buckets; empty: every user
	// handshake sending: host id -> address text, valid for one generation of host ids
	std::vector<std::string> send_ip_text_;
	uint64_t send_ip_generation_ = 0;
};

} // namespace director::core
