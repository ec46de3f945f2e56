// One user's share of a bucket digest (user-digest.h), shared by the user table,
// which keeps the digests up to date as users change, and the digest code, which
// can also add them up from scratch. No I/O here.
#pragma once

#include <cstdint>

namespace director::core {

// splitmix64's finaliser: every input bit reaches every output bit.
inline uint64_t user_digest_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

// The digest entry of a user on the host whose key (user_digest_host_key()) is
// `host_key`.
inline uint64_t user_digest_entry(uint32_t user_hash, uint64_t host_key, bool weak)
{
	return user_digest_mix64((uint64_t(user_hash) << 1 | (weak ? 1 : 0)) ^ host_key) ^
	       user_digest_mix64(host_key + user_hash);
}

} // namespace director::core
