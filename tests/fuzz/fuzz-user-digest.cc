// libFuzzer target: USER-DIGEST lines from a peer (user-digest.h), LF-separated,
// fed to one UserDigestReader, and each to the parser of a check's answers.
// Checks: every error has a message; nothing is accepted after the block ended;
// a finished block formats back to lines that read to the same values; an
// answer that parses formats back to itself (U lines: to the same values); the
// VERSION offer checks never throw.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "user-digest.h"

using namespace director::core;

namespace {

[[noreturn]] void fail(const char *what, std::string_view line)
{
	fprintf(stderr, "fuzz-user-digest: %s\n  line: '%.*s'\n", what, int(line.size()),
		line.data());
	abort();
}

void check_round_trip(const UserDigestReader &r)
{
	std::vector<std::string> lines;
	switch (r.kind()) {
	case UserDigestReader::Kind::digests:
		lines = format_user_digests(r.bits(), r.peer_users(), r.digests(),
					    r.peer_ring_running());
		break;
	case UserDigestReader::Kind::delta:
		lines = format_user_digest_delta(r.buckets());
		break;
	case UserDigestReader::Kind::full:
		lines = {format_user_digest_full()};
		break;
	case UserDigestReader::Kind::check:
		lines = format_user_digest_check(r.bits(), r.peer_users(), r.digests());
		break;
	case UserDigestReader::Kind::refine:
		lines = format_user_digest_refine(r.buckets());
		break;
	case UserDigestReader::Kind::sub: {
		// Formats back only when it carries whole buckets (a ring drops a
		// SUB that does not).
		UserDigestBuckets named(r.bits() - user_digest_refine_bits);
		for (size_t f = 0; f < r.buckets().buckets(); f++) {
			if (r.buckets().contains(uint32_t(f)))
				named.add(uint32_t(f >> user_digest_refine_bits));
		}
		if (named.count() << user_digest_refine_bits != r.buckets().count())
			return;
		lines = format_user_digest_sub(named, r.peer_users(), r.digests());
		break;
	}
	case UserDigestReader::Kind::none:
		fail("done without a kind", "");
	}
	UserDigestReader again;
	for (const std::string &l : lines) {
		if (l.size() >= 1024)
			fail("formatted line over 1024 bytes", l);
		auto res = again.line(l);
		if (!res.ok())
			fail("formatted line does not parse", l);
	}
	if (!again.done() || again.kind() != r.kind() || again.bits() != r.bits() ||
	    again.digests() != r.digests() || again.buckets().words() != r.buckets().words() ||
	    again.peer_users() != r.peer_users() ||
	    again.peer_ring_running() != r.peer_ring_running())
		fail("block does not round-trip", lines.front());
}

void check_answer(std::string_view line)
{
	auto a = parse_user_digest_reply(line);
	if (!a.ok()) {
		if (a.error().empty())
			fail("answer error without a message", line);
		return;
	}
	std::string again;
	switch (a->kind) {
	case UserDigestReply::Kind::busy:
		again = format_user_digest_busy();
		break;
	case UserDigestReply::Kind::repair:
		again = format_user_digest_repair(a->count, a->buckets);
		break;
	case UserDigestReply::Kind::repaired:
		again = format_user_digest_repaired(a->count);
		break;
	case UserDigestReply::Kind::user:
		again = "USER-DIGEST\tU\t" + std::to_string(a->user_hash) + "\t" +
			a->ip.to_string() + "\t" + std::to_string(a->timestamp);
		break;
	}
	auto b = parse_user_digest_reply(again);
	if (!b.ok() || b->kind != a->kind || b->count != a->count || b->buckets != a->buckets ||
	    b->user_hash != a->user_hash || !(b->ip == a->ip) || b->timestamp != a->timestamp)
		fail("answer does not round-trip", line);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view in(reinterpret_cast<const char *>(data), size);
	UserDigestReader r;
	bool failed = false;
	while (!in.empty()) {
		size_t lf = in.find('\n');
		std::string_view line = in.substr(0, lf);
		in = lf == std::string_view::npos ? std::string_view() : in.substr(lf + 1);
		(void)user_digest_version_offered(line);
		(void)is_user_digest_line(line);
		(void)is_user_digest_check_line(line);
		(void)ring_version_offers(line, user_digest_check_offer);
		(void)ring_version_offers(line, user_digest_refine_offer);
		check_answer(line);
		bool was_done = r.done();
		auto res = r.line(line);
		if (!res.ok()) {
			if (res.error().empty())
				fail("error without a message", line);
			failed = true;
			break; // the connection is dropped
		}
		if (was_done)
			fail("accepted a line after the block ended", line);
	}
	if (!failed && r.done())
		check_round_trip(r);
	return 0;
}
