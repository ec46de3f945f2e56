// MD5 and CRC-32 as the stock director uses them for user hashes, vhost points
// and the SYNC hosts_hash. No I/O here.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace director::core {

std::array<uint8_t, 16> md5_digest(std::string_view data);

// The first four digest bytes read big-endian: the value of a vhost point and,
// after the 0 -> 1 substitution, of a user hash.
uint32_t md5_prefix_be32(std::string_view data);

// Standard reflected CRC-32 (zlib's crc32()) continued from `crc`.
uint32_t crc32_update(uint32_t crc, const void *data, size_t size);

} // namespace director::core
