// Bucketed user-table digests, exchanged only between our directors. No I/O here.
//
// The user table is split into 2^bits buckets by the top bits of the user hash.
// A bucket's digest is the sum (mod 2^64) of a 64-bit mix of (user hash, mail host
// IP, weak flag) over its users. Timestamps are left out on purpose: directors
// disagree on them in normal operation (each refreshes a user on its own logins,
// and the handshake keeps the newer of two), while where a user goes depends only
// on its host and weak flag. A sum, not XOR, so two equal entries do not cancel.
// Two directors whose bucket digests match hold the same users on the same hosts
// in that bucket (up to a 2^-64 collision per bucket).
//
// Negotiation: both sides of a ring connection append `USER-DIGEST` to their
// VERSION line (stock reads three fields and ignores the rest, as it does the
// ring authentication offer). USER-DIGEST lines go only to a peer that offered.
//
// Rejoin in O(changes). The acceptor of a connection (the joining director, whose
// left dials it) that restored a table and is not yet part of a ring answers the
// connector's VERSION with its bucket digests:
//
//   acceptor -> connector   USER-DIGEST BEGIN <bits> <users> <ring running: 0|1>
//                           USER-DIGEST D <first bucket> <16 hex digits>...  (48 a line)
//                           USER-DIGEST END
//   (bits 0: "no table, send everything"; no D lines follow.)
//
// "ring running" is the acceptor's HOST-HAND-START flag, early: a connector that
// restored a table and waits to learn whether the ring kept running (ring.h,
// hold_user_streams()) learns it here from its right, and sends that right none
// of its stale users, instead of waiting for its left. Such a connector also
// says so in its VERSION (`USER-DIGEST-RESTORED`): an acceptor whose ring is
// running then answers `BEGIN 0 <users> 1` and END without computing any
// digests, since that connector will send it no users whatever they say.
//
// The connector sends its host list at once but holds its user stream until END.
// Then it compares with its own digests and answers, before its users:
//
//   connector -> acceptor   USER-DIGEST FULL                      (send everything)
//   or                      USER-DIGEST DELTA <bits> <buckets that differ>
//                           USER-DIGEST B <first bucket> <hex bitmap, 2048 buckets>...
//                           USER-DIGEST END
//
// and streams only the users of differing buckets. When the acceptor joins the
// connector's running ring (it would replace its users with the connector's),
// it keeps its users of the equal buckets and replaces only the differing ones.
//
// Refinement, only when both VERSIONs offered `USER-DIGEST-REFINE`. A changed
// user costs the users of its bucket (about 32), so instead of a DELTA the
// connector may first name the buckets that differ and ask for their digests
// at 3 more bits (8 sub-buckets of about 4 users each):
//
//   connector -> acceptor   USER-DIGEST REFINE <bits> <buckets that differ>
//                           USER-DIGEST B <first bucket> <hex bitmap>...  (lines
//                           that would be all zero are left out)
//                           USER-DIGEST END
//   acceptor -> connector   USER-DIGEST SUB <bits + 3> <users>
//                           USER-DIGEST D <first sub-bucket> <8 hex digests>  (one a
//                           named bucket, in order)
//                           USER-DIGEST END
//
// and the connector answers with a DELTA at bits + 3 (sparse like REFINE),
// then streams the users of the sub-buckets that differ. The SUB block must
// carry exactly the sub-buckets of the named buckets. A director's table keeps
// its digests at the sub-buckets' bits as users change
// (UserTable::maintain_digests(), up to user_digest_max_bits), so both the
// bucket digests and the sub-bucket ones are sums of kept digests, with no
// pass over the users (at 1 M users such a pass cost 4-13 ms on each side for
// each of the two rounds); past the kept bits they come from a pass that adds
// up only the users of the named buckets. A connector asks only when at most a
// quarter of the buckets differ.
//
// Checks after the handshake, only with a peer whose VERSION also offered
// `USER-DIGEST-CHECK`. A director checks its table against its left's: a line
// lost or skipped anywhere leaves a difference that nothing else in the
// protocol would ever find. The right asks, on its left connection:
//
//   right -> left   USER-DIGEST CHECK <bits> <users>
//                   USER-DIGEST D <first bucket> <16 hex digits>...  (as above)
//                   USER-DIGEST END
//
// and the left compares with its own table as it stands when END arrives
// (everything it sent before is already in the right's table, so what differs
// is a real divergence or a change the right made that is still on its way
// round) and answers:
//
//   left -> right   USER-DIGEST BUSY                       (streaming users: ask later)
//   or              USER-DIGEST REPAIR <buckets that differ> <buckets>
//                   USER-DIGEST U <user hash> <host IP> <timestamp>...   (their users)
//                   USER-DIGEST REPAIRED <users sent>
//
// The right applies each U line as a USER update from its left: the newest
// timestamp wins, a conflict goes to the lower IP as on the ring, and what
// changes goes on to its right as a plain USER. Nothing is deleted: a user
// only the right has reaches the left through the checks further round.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host-list.h"
#include "ip-addr.h"
#include "result.h"
#include "user-digest-entry.h"
#include "user-table.h"

namespace director::core {

constexpr std::string_view user_digest_offer = "USER-DIGEST";
constexpr std::string_view user_digest_check_offer = "USER-DIGEST-CHECK";
constexpr std::string_view user_digest_restored_offer = "USER-DIGEST-RESTORED";
constexpr std::string_view user_digest_refine_offer = "USER-DIGEST-REFINE";
constexpr std::string_view user_digest_command = "USER-DIGEST";
constexpr unsigned user_digest_min_bits = 4;
constexpr unsigned user_digest_max_bits = 18;
// About this many users a bucket: a changed user costs the users of its bucket,
// a bucket costs 17 bytes of digest.
constexpr size_t user_digest_users_per_bucket = 32;
constexpr size_t user_digest_per_line = 48;
constexpr size_t user_digest_bitmap_per_line = 2048;
// Checks after the handshake use at most this many bits (1.1 MB of digests).
constexpr unsigned user_digest_check_max_bits = 16;
// A refinement splits a bucket into 2^this many sub-buckets.
constexpr unsigned user_digest_refine_bits = 3;
constexpr unsigned user_digest_fine_max_bits = user_digest_max_bits + user_digest_refine_bits;
// A connector refines only when at most 1/this of the buckets differ.
constexpr size_t user_digest_refine_max_share = 4;

class UserDigestBuckets;

// The bucket count (as bits) for a table of `users`.
unsigned user_digest_bits_for(size_t users);

inline uint32_t user_digest_bucket(uint32_t user_hash, unsigned bits)
{
	return bits == 0 ? 0 : user_hash >> (32 - bits);
}

uint64_t user_digest_host_key(const IpAddr &ip);

// Every bucket's digest of `users` (hosts resolved through `hosts`): sums of the
// digests the table keeps (UserTable::maintain_digests()) when it keeps them at
// no fewer bits, else a pass over every user (user_table_digests_walked()).
std::vector<uint64_t> user_table_digests(const UserTable &users, const HostList &hosts,
					 unsigned bits);
// The sub-bucket digests (at named.bits() + user_digest_refine_bits) of the
// named buckets only, packed: the k-th named bucket's 8 sub-buckets at
// [8k, 8k + 8); from the table's kept digests as above.
std::vector<uint64_t> user_table_sub_digests(const UserTable &users, const HostList &hosts,
					     const UserDigestBuckets &named);
// The same two from a pass over every user, whatever the table keeps.
std::vector<uint64_t> user_table_digests_walked(const UserTable &users, const HostList &hosts,
						unsigned bits);
std::vector<uint64_t> user_table_sub_digests_walked(const UserTable &users, const HostList &hosts,
						    const UserDigestBuckets &named);

// A set of buckets.
class UserDigestBuckets {
public:
	UserDigestBuckets() = default;
	explicit UserDigestBuckets(unsigned bits);
	unsigned bits() const { return bits_; }
	size_t buckets() const { return size_t{1} << bits_; }
	bool empty() const { return words_.empty(); }
	bool contains(uint32_t bucket) const
	{
		return (words_[bucket >> 6] >> (bucket & 63)) & 1;
	}
	bool contains_user(uint32_t user_hash) const
	{
		return contains(user_digest_bucket(user_hash, bits_));
	}
	void add(uint32_t bucket) { words_[bucket >> 6] |= uint64_t{1} << (bucket & 63); }
	size_t count() const;
	const std::vector<uint64_t> &words() const { return words_; }
	std::vector<uint64_t> &words() { return words_; }

private:
	unsigned bits_ = 0;
	std::vector<uint64_t> words_;
};

// The buckets where two digest vectors (of the same size) differ.
UserDigestBuckets user_digest_diff(const std::vector<uint64_t> &a, const std::vector<uint64_t> &b,
				   unsigned bits);

// Wire form (each line without LF).
// Whether a VERSION line carries `offer` among the fields stock ignores.
bool ring_version_offers(std::string_view version_line, std::string_view offer);
inline bool user_digest_version_offered(std::string_view version_line)
{
	return ring_version_offers(version_line, user_digest_offer);
}
bool is_user_digest_line(std::string_view line);
std::vector<std::string> format_user_digests(unsigned bits, size_t users,
					     const std::vector<uint64_t> &digests,
					     bool ring_running = false);
// `sparse`: all-zero B lines left out (only to a peer that offered
// USER-DIGEST-REFINE, whose reader accepts that).
std::vector<std::string> format_user_digest_delta(const UserDigestBuckets &send,
						  bool sparse = false);
std::vector<std::string> format_user_digest_refine(const UserDigestBuckets &refine);
// The SUB block of `sub` (packed as user_table_sub_digests() makes them) for
// the buckets of `refine`.
std::vector<std::string> format_user_digest_sub(const UserDigestBuckets &refine, size_t users,
						const std::vector<uint64_t> &sub);
std::string format_user_digest_full();
std::vector<std::string> format_user_digest_check(unsigned bits, size_t users,
						  const std::vector<uint64_t> &digests);

// Reads one peer's USER-DIGEST lines, any one block (BEGIN, DELTA, FULL,
// CHECK, REFINE or SUB). done() once END (or FULL) arrived.
class UserDigestReader {
public:
	enum class Kind { none, digests, full, delta, check, refine, sub };
	// An error means a malformed or out-of-order line: drop the connection.
	Result<bool> line(std::string_view line);
	bool done() const { return done_; }
	Kind kind() const { return kind_; }
	unsigned bits() const { return bits_; }
	size_t peer_users() const { return peer_users_; }
	bool peer_ring_running() const { return peer_ring_running_; }
	const std::vector<uint64_t> &digests() const { return digests_; }
	// DELTA, REFINE: the buckets named; SUB: the sub-buckets whose digests came
	// (their digests() packed in sub-bucket order, not indexed by bucket).
	const UserDigestBuckets &buckets() const { return buckets_; }

private:
	Kind kind_ = Kind::none;
	bool done_ = false;
	unsigned bits_ = 0;
	size_t peer_users_ = 0;
	bool peer_ring_running_ = false;
	size_t announced_ = 0; // DELTA: the count of differing buckets
	size_t next_ = 0;      // the next bucket a D or B line must start at
	std::vector<uint64_t> digests_;
	UserDigestBuckets buckets_;
	std::vector<std::string_view> fields_; // of the current line, kept for its capacity
};

// The left's answer to a CHECK, a line at a time.
struct UserDigestReply {
	enum class Kind { busy, repair, user, repaired };
	Kind kind;
	size_t count = 0;   // repair: buckets that differ; repaired: users sent
	size_t buckets = 0; // repair: of how many
	uint32_t user_hash = 0;
	IpAddr ip;
	int64_t timestamp = 0;
};
Result<UserDigestReply> parse_user_digest_reply(std::string_view line);
std::string format_user_digest_repair(size_t differing, size_t buckets);
std::string format_user_digest_repaired(size_t users_sent);
std::string format_user_digest_busy();
// Whether the line is a CHECK block's (CHECK, D or END from a right) rather than
// an answer (BUSY, REPAIR, U, REPAIRED from a left).
bool is_user_digest_check_line(std::string_view line);

} // namespace director::core
