// The director state file: the on-disk snapshot of the user table, the host list as the
// ring last agreed it, the director list and our sequence numbers. Encodes it in chunks
// and parses it strictly (a file is accepted whole or refused with a reason). No I/O here.
//
// Layout, all integers little-endian:
//
//   "DIRSTATE" u32 version u32 header_length   header_length bytes of header:
//       identity[16]  i64 written_at  u32 sync_seq  u32 last_seq
//       u32 tag count,  per tag:  u16 length, bytes (tag 0 is the empty tag)
//       u32 host count, per host: str ip, str hostname, u16 tag, u32 vhost_count,
//                                 u8 down, i64 last_updown_change
//       u32 director count, per director: str ip, u16 port
//   user records, 12 bytes each:  u32 user_hash  u32 timestamp  u16 host  u16 tag | flags
//   "DIREND\0\0" u64 user count  u32 CRC-32C of every byte before this field
//
// (str = u16 length + bytes.) The user count is only known at the end, because the user
// table keeps changing while a snapshot is streamed out over several event-loop turns.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ip-addr.h"
#include "result.h"

namespace director::core {

constexpr uint32_t state_file_version = 1;
constexpr size_t state_user_record_size = 12;
// A user record's tag is 12 bits; the bits above are flags.
constexpr uint16_t state_user_tag_mask = 0x0fff;
constexpr uint16_t state_user_flag_weak = 0x1000;
// Bounds a parser enforces (a file past them is refused as corrupt).
constexpr size_t state_max_header_bytes = 64 * 1024 * 1024;
constexpr size_t state_max_string_bytes = 1024;

// CRC-32C (Castagnoli, reflected 0x82F63B78, pre- and post-inverted) continued from `crc`;
// 0 starts a new checksum. Slicing-by-8, about 1.5 GB/s.
uint32_t crc32c_update(uint32_t crc, const void *data, size_t size);

// What a state file belongs to. A file written under another identity is refused.
struct StateIdentity {
	// director_mail_servers as parsed: every configured host with its tag.
	struct ConfigHost {
		IpAddr ip;
		std::string tag;
	};
	struct Director {
		IpAddr ip;
		uint16_t port = 0;
	};
	std::vector<ConfigHost> mail_servers;
	std::vector<Director> director_servers; // empty for a standalone director
	Director self;
	std::string username_hash; // director_username_hash: user hashes depend on it

	// MD5 of a canonical encoding (lists sorted, so the order in the settings does not
	// matter).
	std::array<uint8_t, 16> fingerprint() const;
};

struct StateHost {
	IpAddr ip;
	std::string hostname;
	uint16_t tag = 0; // index into StateHeader::tags
	uint32_t vhost_count = 0;
	bool down = false;
	int64_t last_updown_change = 0;
};

struct StateDirector {
	IpAddr ip;
	uint16_t port = 0;
};

// Everything but the users.
struct StateHeader {
	std::array<uint8_t, 16> identity{};
	int64_t written_at = 0; // unix time the snapshot was taken
	uint32_t sync_seq = 0;
	uint32_t last_seq = 0;
	std::vector<std::string> tags{std::string()}; // tags[0] is the empty tag
	std::vector<StateHost> hosts;
	std::vector<StateDirector> directors;
};

struct StateUser {
	uint32_t user_hash = 0;
	uint32_t timestamp = 0;
	uint16_t host = 0; // index into StateHeader::hosts
	uint16_t tag = 0;  // index into StateHeader::tags
	bool weak = false;
};

// Produces a state file in pieces: the header at construction, then users as the caller
// adds them, then the trailer. take() hands out what is buffered so far (and folds it into
// the checksum), so a writer can write a few thousand users per event-loop turn.
// The caller keeps StateUser::host/tag within the header's lists (asserted).
class StateEncoder {
public:
	explicit StateEncoder(const StateHeader &header);

	void add_user(const StateUser &user);
	uint64_t user_count() const { return users_; }
	// Bytes buffered and not yet taken.
	size_t pending_bytes() const { return buf_.size(); }
	// Moves the buffered bytes out.
	std::string take();
	// Appends the trailer and returns the remaining bytes. The encoder is spent afterwards.
	std::string finish();

private:
	std::string buf_;
	uint32_t crc_ = 0;
	uint64_t users_ = 0;
	size_t host_count_, tag_count_;
	bool finished_ = false;
};

// Encodes a whole snapshot at once (tests, the clean-shutdown write).
std::string encode_state_file(const StateHeader &header, const std::vector<StateUser> &users);

// A state file that passed every check: magic, version, length, checksum, identity and
// every record's fields. Holds a view of the bytes; they must outlive it.
class StateFile {
public:
	// Checks everything before returning; the error names the reason (truncated, not a
	// state file, version, checksum, another configuration, a bad record).
	static Result<StateFile> parse(std::string_view data,
				       const std::array<uint8_t, 16> &expected_identity);

	const StateHeader &header() const { return header_; }
	uint64_t user_count() const { return user_count_; }
	// Record i < user_count(), in file order, decoded in place (parse() checked it).
	StateUser user(uint64_t i) const
	{
		const auto *p = reinterpret_cast<const uint8_t *>(records_.data()) +
				i * state_user_record_size;
		StateUser u;
		u.user_hash = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
			      uint32_t(p[3]) << 24;
		u.timestamp = uint32_t(p[4]) | uint32_t(p[5]) << 8 | uint32_t(p[6]) << 16 |
			      uint32_t(p[7]) << 24;
		u.host = uint16_t(p[8] | p[9] << 8);
		auto tag_flags = uint16_t(p[10] | p[11] << 8);
		u.tag = tag_flags & state_user_tag_mask;
		u.weak = (tag_flags & state_user_flag_weak) != 0;
		return u;
	}

private:
	StateHeader header_;
	std::string_view records_;
	uint64_t user_count_ = 0;
};

} // namespace director::core
