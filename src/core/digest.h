// MD5 and CRC-32 as the stock director uses them for user hashes, vhost points
// and the SYNC hosts_hash; HMAC-SHA256 for the authenticated ring. No I/O here.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace director::core {

std::array<uint8_t, 16> md5_digest(std::string_view data);

// The first four digest bytes read big-endian: the value of a vhost point and,
// after the 0 -> 1 substitution, of a user hash.
uint32_t md5_prefix_be32(std::string_view data);

// Standard reflected CRC-32 (zlib's crc32()) continued from `crc`.
uint32_t crc32_update(uint32_t crc, const void *data, size_t size);

// HMAC-SHA256 (RFC 2104 with SHA-256) of `data` under `key`; nullopt only if
// libcrypto fails (out of memory).
std::optional<std::array<uint8_t, 32>> hmac_sha256(std::string_view key, std::string_view data);

// Compares two equally long byte strings in time independent of where they
// differ (for proofs an attacker may probe).
bool equal_constant_time(const uint8_t *a, const uint8_t *b, size_t size);

} // namespace director::core
