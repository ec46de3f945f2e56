// MD5 and HMAC-SHA256 through OpenSSL's libcrypto; a table-driven CRC-32.
// No I/O here.
#include "digest.h"

// The one-shot MD5 functions are deprecated in OpenSSL 3 in favour of EVP,
// which costs an allocation per call; the director hashes on every login.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>

namespace director::core {

std::array<uint8_t, 16> md5_digest(std::string_view data)
{
	std::array<uint8_t, 16> out;
	MD5_CTX ctx;
	MD5_Init(&ctx);
	MD5_Update(&ctx, data.data(), data.size());
	MD5_Final(out.data(), &ctx);
	return out;
}

uint32_t md5_prefix_be32(std::string_view data)
{
	std::array<uint8_t, 16> d = md5_digest(data);
	return uint32_t(d[0]) << 24 | uint32_t(d[1]) << 16 | uint32_t(d[2]) << 8 | uint32_t(d[3]);
}

namespace {

struct Crc32Table {
	uint32_t v[256];
	constexpr Crc32Table() : v()
	{
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			v[i] = c;
		}
	}
};
constexpr Crc32Table crc32_table;

} // namespace

uint32_t crc32_update(uint32_t crc, const void *data, size_t size)
{
	const uint8_t *p = static_cast<const uint8_t *>(data);
	crc = ~crc;
	for (size_t i = 0; i < size; i++)
		crc = crc32_table.v[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

std::optional<std::array<uint8_t, 32>> hmac_sha256(std::string_view key, std::string_view data)
{
	std::array<uint8_t, 32> out{};
	unsigned int len = 0;
	// HMAC() fails only when out of memory: SHA-256 always exists.
	if (HMAC(EVP_sha256(), key.data(), int(key.size()),
		 reinterpret_cast<const unsigned char *>(data.data()), data.size(), out.data(),
		 &len) == nullptr ||
	    len != out.size())
		return std::nullopt;
	return out;
}

bool equal_constant_time(const uint8_t *a, const uint8_t *b, size_t size)
{
	return CRYPTO_memcmp(a, b, size) == 0;
}

} // namespace director::core
