// libFuzzer target: the state file parser. The first byte picks the mode: even = the
// bytes as they are; odd = first stamp the expected identity and a correct checksum
// into them, so the fuzzer gets past the checksum to the header and record checks.
// Whatever parses must re-encode to a file that parses to the same snapshot, and a
// file that is refused must have a reason.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "state-file.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what)
{
	fprintf(stderr, "fuzz-state-file: %s\n", what);
	abort();
}

std::array<uint8_t, 16> expected_identity()
{
	StateIdentity id;
	id.mail_servers = {{*IpAddr::parse("10.0.0.1"), ""}, {*IpAddr::parse("10.0.0.2"), "t"}};
	id.self = {*IpAddr::parse("127.0.0.1"), 0};
	id.username_hash = "%Lu";
	return id.fingerprint();
}

std::string reencode(const StateFile &f)
{
	StateEncoder enc(f.header());
	for (uint64_t i = 0; i < f.user_count(); i++)
		enc.add_user(f.user(i));
	std::string out = enc.take();
	return out + enc.finish();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	static const std::array<uint8_t, 16> identity = expected_identity();
	std::string file(reinterpret_cast<const char *>(data) + 1, size - 1);
	if ((data[0] & 1) != 0 && file.size() >= 36) {
		std::memcpy(&file[16], identity.data(), identity.size());
		uint32_t crc = crc32c_update(0, file.data(), file.size() - 4);
		for (int i = 0; i < 4; i++)
			file[file.size() - 4 + i] = char((crc >> (8 * i)) & 0xff);
	}
	auto r = StateFile::parse(file, identity);
	if (!r.ok()) {
		if (r.error().empty())
			fail("refused without a reason");
		return 0;
	}
	std::string again = reencode(*r);
	auto r2 = StateFile::parse(again, identity);
	if (!r2.ok())
		fail("a re-encoded file was refused");
	if (reencode(*r2) != again)
		fail("re-encoding is not stable");
	if (r2->user_count() != r->user_count())
		fail("user count changed");
	for (uint64_t i = 0; i < r->user_count(); i++) {
		StateUser a = r->user(i), b = r2->user(i);
		if (a.user_hash != b.user_hash || a.timestamp != b.timestamp || a.host != b.host ||
		    a.tag != b.tag || a.weak != b.weak)
			fail("a user record changed");
	}
	return 0;
}
