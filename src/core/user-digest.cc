// Bucketed user-table digests (see user-digest.h). No I/O here.
#include "user-digest.h"

#include "config-values.h"
#include "tab-escape.h"

namespace director::core {

namespace {

uint64_t mix64(uint64_t x)
{
	// splitmix64's finaliser: every input bit reaches every output bit.
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

std::optional<uint64_t> parse_hex64(std::string_view s)
{
	if (s.size() != 16)
		return std::nullopt;
	uint64_t v = 0;
	for (char ch : s) {
		unsigned d;
		if (ch >= '0' && ch <= '9')
			d = unsigned(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = unsigned(ch - 'a' + 10);
		else
			return std::nullopt;
		v = (v << 4) | d;
	}
	return v;
}

void append_hex64(std::string &out, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	for (int shift = 60; shift >= 0; shift -= 4)
		out += hex[(v >> shift) & 15];
}

} // namespace

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
	return mix64(h);
}

uint64_t user_digest_entry(uint32_t user_hash, uint64_t host_key, bool weak)
{
	return mix64((uint64_t(user_hash) << 1 | (weak ? 1 : 0)) ^ host_key) ^
	       mix64(host_key + user_hash);
}

std::vector<uint64_t> user_table_digests(const UserTable &users, const HostList &hosts,
					 unsigned bits)
{
	std::vector<uint64_t> digests(size_t{1} << bits, 0);
	std::vector<std::optional<uint64_t>> keys;
	users.for_each([&](UserIndex u) {
		HostId host = users.host(u);
		if (keys.size() <= host)
			keys.resize(size_t(host) + 1);
		if (!keys[host])
			keys[host] = user_digest_host_key(hosts.get(host).ip);
		uint32_t hash = users.user_hash(u);
		digests[user_digest_bucket(hash, bits)] +=
			user_digest_entry(hash, *keys[host], users.weak(u));
	});
	return digests;
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

std::vector<std::string> format_user_digest_delta(const UserDigestBuckets &send)
{
	std::string prefix = digest_prefix();
	std::vector<std::string> lines;
	lines.push_back(prefix + "DELTA\t" + std::to_string(send.bits()) + "\t" +
			std::to_string(send.count()));
	const size_t words_per_line = user_digest_bitmap_per_line / 64;
	const std::vector<uint64_t> &w = send.words();
	for (size_t first = 0; first < w.size(); first += words_per_line) {
		std::string l = prefix + "B\t" + std::to_string(first * 64);
		for (size_t i = first; i < w.size() && i < first + words_per_line; i++) {
			l += '\t';
			append_hex64(l, w[i]);
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
	std::vector<std::string> f = split_c_fields(line);
	if (f.size() < 2 || f[0] != user_digest_command)
		return make_error("not a USER-DIGEST line");
	const std::string &what = f[1];
	if (what == "BEGIN" || what == "DELTA" || what == "CHECK") {
		bool begin = what == "BEGIN";
		bool check = what == "CHECK";
		if (kind_ != Kind::none || f.size() != (begin ? 5 : 4) ||
		    (begin && f[4] != "0" && f[4] != "1"))
			return make_error("unexpected USER-DIGEST " + what);
		auto bits = parse_stock_uint32(f[2]);
		auto n = parse_stock_uint32(f[3]);
		bool none = begin && bits && *bits == 0;
		unsigned max_bits = check ? user_digest_check_max_bits : user_digest_max_bits;
		if (!bits || !n || (!none && (*bits < user_digest_min_bits || *bits > max_bits)))
			return make_error("USER-DIGEST " + what + " with bad values " +
					  quote_for_log(line));
		bits_ = *bits;
		if (begin || check) {
			kind_ = check ? Kind::check : Kind::digests;
			peer_users_ = *n;
			peer_ring_running_ = begin && f[4] == "1";
			digests_.assign(bits_ == 0 ? 0 : size_t{1} << bits_, 0);
		} else {
			kind_ = Kind::delta;
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
	if (what == "D" || what == "B") {
		bool d = what == "D";
		bool digest_block = kind_ == Kind::digests || kind_ == Kind::check;
		if ((d ? !digest_block : kind_ != Kind::delta) || f.size() < 4)
			return make_error("unexpected USER-DIGEST " + what);
		auto first = parse_stock_uint32(f[2]);
		size_t total = d ? digests_.size() : buckets_.words().size() * 64;
		size_t per_field = d ? 1 : 64;
		if (!first || *first != next_ || next_ + (f.size() - 3) * per_field > total)
			return make_error("USER-DIGEST " + what + " out of order or too long: " +
					  quote_for_log(line));
		for (size_t i = 3; i < f.size(); i++) {
			auto v = parse_hex64(f[i]);
			if (!v)
				return make_error("USER-DIGEST " + what + " with a bad value " +
						  quote_for_log(f[i], 20));
			if (d)
				digests_[next_] = *v;
			else
				buckets_.words()[next_ / 64] = *v;
			next_ += per_field;
		}
		return false;
	}
	if (what == "END") {
		size_t total = kind_ == Kind::digests || kind_ == Kind::check ? digests_.size()
			       : kind_ == Kind::delta  ? buckets_.words().size() * 64
						       : SIZE_MAX;
		if (f.size() != 2 || next_ != total)
			return make_error("USER-DIGEST END before all buckets arrived");
		if (kind_ == Kind::delta) {
			if (buckets_.bits() < 6) {
				// Bits past the last bucket must be clear.
				uint64_t mask = ~uint64_t{0} << buckets_.buckets();
				if (buckets_.words()[0] & mask)
					return make_error("USER-DIGEST bitmap names buckets past its end");
			}
			if (buckets_.count() != announced_)
				return make_error("USER-DIGEST DELTA announced " +
						  std::to_string(announced_) + " buckets but named " +
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
