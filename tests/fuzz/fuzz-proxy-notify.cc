// libFuzzer target: login/proxy-notify input. The bytes a login process writes to the
// FIFO go through the LineReader with the notify limit, in chunks, and each line through
// proxy_notify_user() into Director::notify_alive(), as notify-connection.cc does. A
// line starting with 0x01 is instead a login lookup of the rest of the line, so that
// notified users exist. Checks: a notify never adds, removes or moves a user; it
// refreshes (in every tag) the user that hashes like the line up to its first NUL,
// if the director holds one; a standalone director sends nothing for it; an
// over-long line is dropped (skip_line, as notify-connection.cc reads) and the
// lines after it still count. Any violation aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config-values.h"
#include "director.h"
#include "line-reader.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view line)
{
	fprintf(stderr, "fuzz-proxy-notify: %s\n  line: '%.*s'\n", what, int(line.size()),
		line.data());
	abort();
}

struct NullLog : LogSink {
	void log(LogLevel, const std::string &message) override
	{
		if (message.empty())
			abort();
	}
};

const char *const hash_formats[] = {"%Lu", "%u", "%Ln", "%Ld", "%n@%d", "%1.3Hu", "%Lu", "%Lu"};
const uint32_t expire_secs = 900;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t c = data[0];
	DirectorConfig cfg;
	cfg.user_expire_secs = expire_secs;
	cfg.username_hash = *UsernameHash::parse(hash_formats[c & 7]);
	size_t chunk = 1 + ((c >> 3) & 31);
	NullLog log;
	Director dir(cfg, log);
	dir.add_config_host(*IpAddr::parse("10.0.0.1"), "", "");
	dir.add_config_host(*IpAddr::parse("10.0.0.2"), "", "a");
	int64_t now = 1700000000;
	dir.start_alone(now);

	std::string_view stream(reinterpret_cast<const char *>(data) + 1, size - 1);
	LineReader reader(notify_max_line_bytes, LineReader::OnTooLong::skip_line);
	RequestId next_request = 1;
	std::string line;
	for (size_t off = 0; off < stream.size(); off += chunk) {
		reader.feed(stream.substr(off, chunk));
		for (;;) {
			LineReader::Status st = reader.next_line(line);
			if (st == LineReader::Status::need_more)
				break;
			if (st == LineReader::Status::too_long) {
				if (reader.failed())
					fail("an over-long line stopped a skip_line reader", line);
				continue;
			}
			if (line.size() + 1 > notify_max_line_bytes)
				fail("a line over the notify limit was returned", line);
			now++;
			Effects fx;
			if (!line.empty() && line[0] == '\x01') {
				std::string_view user = std::string_view(line).substr(1);
				dir.lookup(next_request++, user, (c & 0x80) != 0 ? "a" : "", now, fx);
				if (fx.lookups.size() != 1 || !fx.lookups[0].host)
					fail("a standalone lookup with hosts was not answered at once", line);
				continue;
			}
			std::string_view user = proxy_notify_user(line);
			if (user.size() > line.size() || line.compare(0, user.size(), user) != 0 ||
			    (user.size() < line.size() && line[user.size()] != '\0'))
				fail("proxy_notify_user() is not the line up to its first NUL", line);
			uint32_t hash = dir.user_hash(user);
			UserLookup before[2] = {dir.user_lookup(hash, "", now), dir.user_lookup(hash, "a", now)};
			size_t count = dir.user_count();
			// An expired user not yet swept by a tick is revived, as stock does.
			bool held = false;
			for (const UserListEntry &u : dir.user_list(std::nullopt))
				held |= u.user_hash == hash;
			dir.notify_alive(user, now, fx);
			if (!fx.empty())
				fail("a standalone notify produced effects", line);
			if (dir.user_count() != count)
				fail("a notify changed the number of users", line);
			const char *tags[2] = {"", "a"};
			for (int t = 0; t < 2; t++) {
				UserLookup after = dir.user_lookup(hash, tags[t], now);
				if (before[t].current && before[t].current != after.current)
					fail("a notify changed where a user is", line);
				if (!before[t].current && after.current && !held)
					fail("a notify created a user", line);
				if (after.current && after.expire_time != now + expire_secs)
					fail("a notified user was not refreshed", line);
			}
		}
	}
	return 0;
}
