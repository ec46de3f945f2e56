// Bucketed user-table digests (see user-digest.h). No I/O here.
#include "user-digest.h"

#include <algorithm>
#include <array>

#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

namespace {

// Lower-case hex digit values, 16 for anything else.
constexpr std::array<uint8_t, 256> hex_values = [] {
	std::array<uint8_t, 256> t{};
	for (auto &v : t)
		v = 16;
	for (int i = 0; i < 10; i++)
		t['0' + i] = uint8_t(i);
	for (int i = 0; i < 6; i++)
		t['a' + i] = uint8_t(10 + i);
	return t;
}();

std::optional<uint64_t> parse_hex64(std::string_view s)
{
	if (s.size() != 16)
		return std::nullopt;
	uint64_t v = 0;
	unsigned bad = 0;
	for (char ch : s) {
		unsigned d = hex_values[uint8_t(ch)];
		bad |= d;
		v = (v << 4) | (d & 15);
	}
	if ((bad & 16) != 0)
		return std::nullopt;
	return v;
}

void append_hex64(std::string &out, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	for (int shift = 60; shift >= 0; shift -= 4)
		out += hex[(v >> shift) & 15];
}

} // namespace

// A table keeps its digests at the bits of its handshakes' sub-buckets, at most
// at the most bits a handshake uses.
static_assert(UserTable::digest_max_bits == user_digest_max_bits &&
		      UserTable::digest_min_bits == user_digest_min_bits + user_digest_refine_bits &&
		      UserTable::digest_users_per_bucket << user_digest_refine_bits ==
			      user_digest_users_per_bucket,
	      "the table's digests follow the handshake's buckets");

unsigned user_digest_bits_for(size_t users)
{
	unsigned bits = user_digest_min_bits;
	while (bits < user_digest_max_bits &&
	       (size_t{1} << bits) * user_digest_users_per_bucket < users)
		bits++;
	return bits;
}

uint64_t user_digest_host_key(const IpAddr &ip)
{
	// FNV-1a over the family and the address bytes, then mixed.
	uint64_t h = 0xcbf29ce484222325ULL;
	auto add = [&h](uint8_t b) {
		h ^= b;
		h *= 0x100000001b3ULL;
	};
	add(uint8_t(ip.family()));
	for (size_t i = 0; i < ip.size(); i++)
		add(ip.bytes()[i]);
	return user_digest_mix64(h);
}

namespace {

// Calls add(user hash, digest entry) for every user `want(user hash)` accepts.
template <typename Want, typename Add>
void for_each_digest_entry(const UserTable &users, const HostList &hosts, Want &&want, Add &&add)
{
	std::vector<std::optional<uint64_t>> keys;
	users.for_each_hash([&](UserIndex u, uint32_t hash) {
		if (!want(hash))
			return;
		HostId host = users.host(u);
		if (keys.size() <= host)
			keys.resize(size_t(host) + 1);
		if (!keys[host])
			keys[host] = user_digest_host_key(hosts.get(host).ip);
		add(hash, user_digest_entry(hash, *keys[host], users.weak(u)));
	});
}

// The sum of the table's kept digests [first, first + n).
uint64_t fine_digest_sum(const uint64_t *fine, size_t first, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = first; i < first + n; i++)
		sum += fine[i];
	return sum;
}

} // namespace

std::vector<uint64_t> user_table_digests(const UserTable &users, const HostList &hosts,
					 unsigned bits)
{
	const uint64_t *fine = users.fine_digests();
	if (fine == nullptr || bits > users.digest_bits())
		return user_table_digests_walked(users, hosts, bits);
	const size_t span = size_t{1} << (users.digest_bits() - bits);
	std::vector<uint64_t> digests(size_t{1} << bits);
	for (size_t b = 0; b < digests.size(); b++)
		digests[b] = fine_digest_sum(fine, b * span, span);
	return digests;
}

std::vector<uint64_t> user_table_sub_digests(const UserTable &users, const HostList &hosts,
					     const UserDigestBuckets &named)
{
	const uint64_t *fine = users.fine_digests();
	const unsigned sub_bits = named.bits() + user_digest_refine_bits;
	if (fine == nullptr || sub_bits > users.digest_bits())
		return user_table_sub_digests_walked(users, hosts, named);
	const size_t per_bucket = size_t{1} << user_digest_refine_bits;
	const size_t span = size_t{1} << (users.digest_bits() - sub_bits);
	std::vector<uint64_t> sub;
	sub.reserve(named.count() * per_bucket);
	for (size_t w = 0; w < named.words().size(); w++) {
		for (uint64_t bits = named.words()[w]; bits != 0; bits &= bits - 1) {
			size_t b = w * 64 + size_t(__builtin_ctzll(bits));
			for (size_t i = 0; i < per_bucket; i++)
				sub.push_back(fine_digest_sum(fine, (b * per_bucket + i) * span, span));
		}
	}
	return sub;
}

std::vector<uint64_t> user_table_digests_walked(const UserTable &users, const HostList &hosts,
						unsigned bits)
{
	std::vector<uint64_t> digests(size_t{1} << bits, 0);
	for_each_digest_entry(
		users, hosts, [](uint32_t) { return true; },
		[&](uint32_t hash, uint64_t entry) { digests[user_digest_bucket(hash, bits)] += entry; });
	return digests;
}

std::vector<uint64_t> user_table_sub_digests_walked(const UserTable &users, const HostList &hosts,
						    const UserDigestBuckets &named)
{
	// A named bucket's rank: the named buckets before it.
	const std::vector<uint64_t> &words = named.words();
	std::vector<uint32_t> before(words.size());
	uint32_t n = 0;
	for (size_t w = 0; w < words.size(); w++) {
		before[w] = n;
		n += uint32_t(__builtin_popcountll(words[w]));
	}
	const unsigned fine_bits = named.bits() + user_digest_refine_bits;
	const uint32_t sub_mask = (uint32_t{1} << user_digest_refine_bits) - 1;
	std::vector<uint64_t> sub(size_t{n} << user_digest_refine_bits, 0);
	for_each_digest_entry(
		users, hosts, [&](uint32_t hash) { return named.contains_user(hash); },
		[&](uint32_t hash, uint64_t entry) {
			uint32_t b = user_digest_bucket(hash, named.bits());
			uint64_t below = words[b >> 6] & ((uint64_t{1} << (b & 63)) - 1);
			uint32_t rank = before[b >> 6] + uint32_t(__builtin_popcountll(below));
			uint32_t f = user_digest_bucket(hash, fine_bits);
			sub[(size_t{rank} << user_digest_refine_bits) | (f & sub_mask)] += entry;
		});
	return sub;
}

UserDigestBuckets::UserDigestBuckets(unsigned bits)
	: bits_(bits), words_(((size_t{1} << bits) + 63) / 64, 0)
{
}

size_t UserDigestBuckets::count() const
{
	size_t n = 0;
	for (uint64_t w : words_)
		n += size_t(__builtin_popcountll(w));
	return n;
}

UserDigestBuckets user_digest_diff(const std::vector<uint64_t> &a, const std::vector<uint64_t> &b,
				   unsigned bits)
{
	UserDigestBuckets diff(bits);
	for (size_t i = 0; i < diff.buckets(); i++) {
		if (i >= a.size() || i >= b.size() || a[i] != b[i])
			diff.add(uint32_t(i));
	}
	return diff;
}

bool ring_version_offers(std::string_view version_line, std::string_view offer)
{
	std::vector<std::string> f = split_c_fields(version_line);
	if (f.empty() || f[0] != "VERSION")
		return false;
	for (size_t i = 4; i < f.size(); i++) {
		if (f[i] == offer)
			return true;
	}
	return false;
}

bool is_user_digest_line(std::string_view line)
{
	return line.substr(0, line.find('\t')) == user_digest_command;
}

namespace {

std::string digest_prefix()
{
	return std::string(user_digest_command) + "\t";
}

// `header`, the D lines of `digests`, END.
std::vector<std::string> digest_block(std::string header, unsigned bits,
				      const std::vector<uint64_t> &digests)
{
	std::string prefix = digest_prefix();
	std::vector<std::string> lines;
	lines.push_back(prefix + header);
	for (size_t first = 0; bits != 0 && first < digests.size(); first += user_digest_per_line) {
		std::string l = prefix + "D\t" + std::to_string(first);
		for (size_t i = first; i < digests.size() && i < first + user_digest_per_line; i++) {
			l += '\t';
			append_hex64(l, digests[i]);
		}
		lines.push_back(std::move(l));
	}
	lines.push_back(prefix + "END");
	return lines;
}

// `header`, the B lines of `set` (without the all-zero ones when `sparse`), END.
std::vector<std::string> bitmap_block(const std::string &header, const UserDigestBuckets &set,
				      bool sparse)
{
	std::string prefix = digest_prefix();
	std::vector<std::string> lines;
	lines.push_back(prefix + header + "\t" + std::to_string(set.bits()) + "\t" +
			std::to_string(set.count()));
	const size_t words_per_line = user_digest_bitmap_per_line / 64;
	const std::vector<uint64_t> &w = set.words();
	for (size_t first = 0; first < w.size(); first += words_per_line) {
		size_t end = std::min(w.size(), first + words_per_line);
		if (sparse && std::all_of(w.begin() + first, w.begin() + end,
					  [](uint64_t v) { return v == 0; }))
			continue;
		std::string l = prefix + "B\t" + std::to_string(first * 64);
		for (size_t i = first; i < end; i++) {
			l += '\t';
			append_hex64(l, w[i]);
		}
		lines.push_back(std::move(l));
	}
	lines.push_back(prefix + "END");
	return lines;
}

} // namespace

std::vector<std::string> format_user_digests(unsigned bits, size_t users,
					     const std::vector<uint64_t> &digests, bool ring_running)
{
	return digest_block("BEGIN\t" + std::to_string(bits) + "\t" + std::to_string(users) +
				    (ring_running ? "\t1" : "\t0"),
			    bits, digests);
}

std::vector<std::string> format_user_digest_check(unsigned bits, size_t users,
						  const std::vector<uint64_t> &digests)
{
	return digest_block("CHECK\t" + std::to_string(bits) + "\t" + std::to_string(users), bits,
			    digests);
}

std::vector<std::string> format_user_digest_delta(const UserDigestBuckets &send, bool sparse)
{
	return bitmap_block("DELTA", send, sparse);
}

std::vector<std::string> format_user_digest_refine(const UserDigestBuckets &refine)
{
	return bitmap_block("REFINE", refine, true);
}

std::vector<std::string> format_user_digest_sub(const UserDigestBuckets &refine, size_t users,
						const std::vector<uint64_t> &sub)
{
	std::string prefix = digest_prefix();
	unsigned fine_bits = refine.bits() + user_digest_refine_bits;
	const size_t per_bucket = size_t{1} << user_digest_refine_bits;
	std::vector<std::string> lines;
	lines.push_back(prefix + "SUB\t" + std::to_string(fine_bits) + "\t" +
			std::to_string(users));
	size_t next = 0; // in `sub`
	for (size_t b = 0; b < refine.buckets() && next + per_bucket <= sub.size(); b++) {
		if (!refine.contains(uint32_t(b)))
			continue;
		std::string l = prefix + "D\t" + std::to_string(b * per_bucket);
		for (size_t i = 0; i < per_bucket; i++) {
			l += '\t';
			append_hex64(l, sub[next++]);
		}
		lines.push_back(std::move(l));
	}
	lines.push_back(prefix + "END");
	return lines;
}

std::string format_user_digest_full()
{
	return std::string(user_digest_command) + "\tFULL";
}

Result<bool> UserDigestReader::line(std::string_view line)
{
	if (done_)
		return make_error("USER-DIGEST after its END");
	// Split in place: these lines carry only words, numbers and hex digits
	// (nothing tab-escaped), and a digest block has hundreds of them.
	std::vector<std::string_view> &f = fields_;
	f.clear();
	for (size_t start = 0;;) {
		size_t tab = line.find('\t', start);
		f.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
		if (tab == std::string_view::npos)
			break;
		start = tab + 1;
	}
	if (f.size() < 2 || f[0] != user_digest_command)
		return make_error("not a USER-DIGEST line");
	const std::string what(f[1].substr(0, 16));
	if (what == "BEGIN" || what == "DELTA" || what == "CHECK" || what == "REFINE" ||
	    what == "SUB") {
		bool begin = what == "BEGIN";
		Kind kind = begin		 ? Kind::digests
			    : what == "CHECK"	 ? Kind::check
			    : what == "SUB"	 ? Kind::sub
			    : what == "REFINE" ? Kind::refine
					       : Kind::delta;
		if (kind_ != Kind::none || f.size() != (begin ? 5 : 4) ||
		    (begin && f[4] != "0" && f[4] != "1"))
			return make_error("unexpected USER-DIGEST " + what);
		auto bits = parse_stock_uint32(f[2]);
		auto n = parse_stock_uint32(f[3]);
		bool none = begin && bits && *bits == 0;
		unsigned min_bits = kind == Kind::sub
					    ? user_digest_min_bits + user_digest_refine_bits
					    : user_digest_min_bits;
		unsigned max_bits = kind == Kind::check ? user_digest_check_max_bits
				    : kind == Kind::sub || kind == Kind::delta
					    ? user_digest_fine_max_bits
					    : user_digest_max_bits;
		if (!bits || !n || (!none && (*bits < min_bits || *bits > max_bits)))
			return make_error("USER-DIGEST " + what + " with bad values " +
					  quote_for_log(line));
		kind_ = kind;
		bits_ = *bits;
		if (kind == Kind::digests || kind == Kind::check) {
			peer_users_ = *n;
			peer_ring_running_ = begin && f[4] == "1";
			digests_.assign(bits_ == 0 ? 0 : size_t{1} << bits_, 0);
		} else if (kind == Kind::sub) {
			peer_users_ = *n;
			digests_.clear(); // packed, in the order they come
			buckets_ = UserDigestBuckets(bits_);
		} else {
			announced_ = *n;
			buckets_ = UserDigestBuckets(bits_);
		}
		return false;
	}
	if (what == "FULL") {
		if (kind_ != Kind::none || f.size() != 2)
			return make_error("unexpected USER-DIGEST FULL");
		kind_ = Kind::full;
		done_ = true;
		return true;
	}
	bool bitmap = kind_ == Kind::delta || kind_ == Kind::refine;
	if (what == "D" || what == "B") {
		bool d = what == "D";
		bool digest_block = kind_ == Kind::digests || kind_ == Kind::check || kind_ == Kind::sub;
		if ((d ? !digest_block : !bitmap) || f.size() < 4)
			return make_error("unexpected USER-DIGEST " + what);
		auto first = parse_stock_uint32(f[2]);
		size_t total = !d			? buckets_.words().size() * 64
			       : kind_ == Kind::sub ? buckets_.buckets()
						    : digests_.size();
		size_t per_field = d ? 1 : 64;
		// Sub-bucket digests and bitmaps may skip ahead (over buckets not
		// named, or all zero); full digest blocks may not.
		bool may_skip = kind_ == Kind::sub || !d;
		if (!first || (may_skip ? *first < next_ : *first != next_) ||
		    *first % per_field != 0 || *first + (f.size() - 3) * per_field > total)
			return make_error("USER-DIGEST " + what + " out of order or too long: " +
					  quote_for_log(line));
		next_ = *first;
		for (size_t i = 3; i < f.size(); i++) {
			auto v = parse_hex64(f[i]);
			if (!v)
				return make_error("USER-DIGEST " + what + " with a bad value " +
						  quote_for_log(f[i], 20));
			if (d && kind_ == Kind::sub) {
				digests_.push_back(*v);
				buckets_.add(uint32_t(next_));
			} else if (d) {
				digests_[next_] = *v;
			} else {
				buckets_.words()[next_ / 64] = *v;
			}
			next_ += per_field;
		}
		return false;
	}
	if (what == "END") {
		bool dense = kind_ == Kind::digests || kind_ == Kind::check;
		if (f.size() != 2 || (!dense && !bitmap && kind_ != Kind::sub) ||
		    (dense && next_ != digests_.size()))
			return make_error("USER-DIGEST END before all buckets arrived");
		if (bitmap) {
			if (buckets_.bits() < 6) {
				// Bits past the last bucket must be clear.
				uint64_t mask = ~uint64_t{0} << buckets_.buckets();
				if (buckets_.words()[0] & mask)
					return make_error("USER-DIGEST bitmap names buckets past its end");
			}
			if (buckets_.count() != announced_)
				return make_error("USER-DIGEST " +
						  std::string(kind_ == Kind::refine ? "REFINE" : "DELTA") +
						  " announced " + std::to_string(announced_) +
						  " buckets but named " +
						  std::to_string(buckets_.count()));
		}
		done_ = true;
		return true;
	}
	return make_error("unknown USER-DIGEST line " + quote_for_log(line));
}

std::string format_user_digest_repair(size_t differing, size_t buckets)
{
	return digest_prefix() + "REPAIR\t" + std::to_string(differing) + "\t" +
	       std::to_string(buckets);
}

std::string format_user_digest_repaired(size_t users_sent)
{
	return digest_prefix() + "REPAIRED\t" + std::to_string(users_sent);
}

std::string format_user_digest_busy()
{
	return digest_prefix() + "BUSY";
}

bool is_user_digest_check_line(std::string_view line)
{
	size_t tab = line.find('\t');
	if (tab == std::string_view::npos)
		return false;
	std::string_view what = line.substr(tab + 1);
	what = what.substr(0, what.find('\t'));
	return what == "CHECK" || what == "D" || what == "END";
}

Result<UserDigestReply> parse_user_digest_reply(std::string_view line)
{
	std::vector<std::string> f = split_c_fields(line);
	if (f.size() < 2 || f[0] != user_digest_command)
		return make_error("not a USER-DIGEST line");
	const std::string &what = f[1];
	UserDigestReply r{};
	if (what == "BUSY" && f.size() == 2) {
		r.kind = UserDigestReply::Kind::busy;
		return r;
	}
	if (what == "REPAIR" && f.size() == 4) {
		auto n = parse_stock_uint32(f[2]);
		auto of = parse_stock_uint32(f[3]);
		if (n && of && *n <= *of && *of <= (size_t{1} << user_digest_check_max_bits)) {
			r.kind = UserDigestReply::Kind::repair;
			r.count = *n;
			r.buckets = *of;
			return r;
		}
	} else if (what == "REPAIRED" && f.size() == 3) {
		if (auto n = parse_stock_uint32(f[2])) {
			r.kind = UserDigestReply::Kind::repaired;
			r.count = *n;
			return r;
		}
	} else if (what == "U" && f.size() == 5) {
		auto hash = parse_stock_uint32(f[2]);
		auto ip = parse_stock_ip(f[3]);
		auto ts = parse_stock_uint32(f[4]);
		if (hash && ip && ts) {
			r.kind = UserDigestReply::Kind::user;
			r.user_hash = *hash;
			r.ip = *ip;
			r.timestamp = *ts;
			return r;
		}
	}
	return make_error("bad USER-DIGEST answer " + quote_for_log(line));
}

} // namespace director::core
