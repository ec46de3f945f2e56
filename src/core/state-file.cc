// The director state file format: encoder and strict parser. No I/O here.
#include "state-file.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>

#include "digest.h"

namespace director::core {

namespace {

constexpr char file_magic[8] = {'D', 'I', 'R', 'S', 'T', 'A', 'T', 'E'};
constexpr char trailer_magic[8] = {'D', 'I', 'R', 'E', 'N', 'D', '\0', '\0'};
constexpr size_t prefix_size = 8 + 4 + 4;
constexpr size_t trailer_size = 8 + 8 + 4;

[[noreturn]] void misuse(const char *what)
{
	std::fprintf(stderr, "Panic: StateEncoder: %s\n", what);
	std::abort();
}

// --- CRC-32C, slicing-by-8 -----------------------------------------------------------------

struct Crc32cTables {
	uint32_t t[8][256];
	constexpr Crc32cTables() : t()
	{
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) != 0 ? 0x82f63b78u ^ (c >> 1) : c >> 1;
			t[0][i] = c;
		}
		for (uint32_t i = 0; i < 256; i++)
			for (int s = 1; s < 8; s++)
				t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
	}
};
constexpr Crc32cTables crc32c_tables;

// --- little-endian building blocks -----------------------------------------------------------

void put_u16(std::string &out, uint16_t v)
{
	char b[2] = {char(v & 0xff), char(v >> 8)};
	out.append(b, 2);
}

void put_u32(std::string &out, uint32_t v)
{
	char b[4];
	for (int i = 0; i < 4; i++)
		b[i] = char((v >> (8 * i)) & 0xff);
	out.append(b, 4);
}

void put_u64(std::string &out, uint64_t v)
{
	char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = char((v >> (8 * i)) & 0xff);
	out.append(b, 8);
}

void put_str(std::string &out, std::string_view s)
{
	if (s.size() > state_max_string_bytes)
		misuse("string longer than state_max_string_bytes");
	put_u16(out, uint16_t(s.size()));
	out.append(s.data(), s.size());
}

uint16_t get_u16(const char *p)
{
	const auto *b = reinterpret_cast<const uint8_t *>(p);
	return uint16_t(b[0] | b[1] << 8);
}

uint32_t get_u32(const char *p)
{
	const auto *b = reinterpret_cast<const uint8_t *>(p);
	return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

uint64_t get_u64(const char *p)
{
	return uint64_t(get_u32(p)) | uint64_t(get_u32(p + 4)) << 32;
}

// Reads the header section; every read is bounds-checked and a short read is an error.
class Reader {
public:
	explicit Reader(std::string_view data) : data_(data) {}
	bool failed() const { return failed_; }
	bool at_end() const { return pos_ == data_.size(); }

	uint8_t u8()
	{
		const char *p = take(1);
		return p != nullptr ? uint8_t(*p) : 0;
	}
	uint16_t u16()
	{
		const char *p = take(2);
		return p != nullptr ? get_u16(p) : 0;
	}
	uint32_t u32()
	{
		const char *p = take(4);
		return p != nullptr ? get_u32(p) : 0;
	}
	uint64_t u64()
	{
		const char *p = take(8);
		return p != nullptr ? get_u64(p) : 0;
	}
	std::string str()
	{
		uint16_t len = u16();
		if (len > state_max_string_bytes) {
			failed_ = true;
			return {};
		}
		const char *p = take(len);
		return p != nullptr ? std::string(p, len) : std::string();
	}
	// A count of items of at least min_item_bytes each: refused when the rest of the
	// header could not hold them, so a corrupt count never makes us allocate.
	uint32_t count(size_t min_item_bytes)
	{
		uint32_t n = u32();
		if (!failed_ && uint64_t(n) * min_item_bytes > data_.size() - pos_)
			failed_ = true;
		return failed_ ? 0 : n;
	}

private:
	const char *take(size_t n)
	{
		if (failed_ || data_.size() - pos_ < n) {
			failed_ = true;
			return nullptr;
		}
		const char *p = data_.data() + pos_;
		pos_ += n;
		return p;
	}

	std::string_view data_;
	size_t pos_ = 0;
	bool failed_ = false;
};

std::string encode_header(const StateHeader &h)
{
	std::string body;
	body.append(reinterpret_cast<const char *>(h.identity.data()), h.identity.size());
	put_u64(body, uint64_t(h.written_at));
	put_u32(body, h.sync_seq);
	put_u32(body, h.last_seq);
	if (h.tags.empty() || !h.tags[0].empty())
		misuse("tags[0] must be the empty tag");
	if (h.tags.size() > size_t(state_user_tag_mask) + 1)
		misuse("too many tags");
	put_u32(body, uint32_t(h.tags.size()));
	for (const std::string &t : h.tags)
		put_str(body, t);
	if (h.hosts.size() > 0xffff)
		misuse("too many hosts");
	put_u32(body, uint32_t(h.hosts.size()));
	for (const StateHost &host : h.hosts) {
		if (host.tag >= h.tags.size())
			misuse("host tag out of range");
		put_str(body, host.ip.to_string());
		put_str(body, host.hostname);
		put_u16(body, host.tag);
		put_u32(body, host.vhost_count);
		body.push_back(host.down ? 1 : 0);
		put_u64(body, uint64_t(host.last_updown_change));
	}
	put_u32(body, uint32_t(h.directors.size()));
	for (const StateDirector &d : h.directors) {
		put_str(body, d.ip.to_string());
		put_u16(body, d.port);
	}

	std::string out(file_magic, sizeof(file_magic));
	put_u32(out, state_file_version);
	put_u32(out, uint32_t(body.size()));
	out += body;
	return out;
}

Result<StateHeader> parse_header(std::string_view body)
{
	Reader r(body);
	StateHeader h;
	h.tags.clear();
	for (uint8_t &b : h.identity)
		b = r.u8();
	h.written_at = int64_t(r.u64());
	h.sync_seq = r.u32();
	h.last_seq = r.u32();

	uint32_t ntags = r.count(2);
	if (!r.failed() && (ntags == 0 || ntags > uint32_t(state_user_tag_mask) + 1))
		return make_error("corrupt header: bad tag count " + std::to_string(ntags));
	for (uint32_t i = 0; i < ntags && !r.failed(); i++)
		h.tags.push_back(r.str());
	if (!r.failed() && !h.tags[0].empty())
		return make_error("corrupt header: the first tag is not the empty tag");

	uint32_t nhosts = r.count(2 + 2 + 2 + 4 + 1 + 8);
	if (!r.failed() && nhosts > 0xffff)
		return make_error("corrupt header: bad host count " + std::to_string(nhosts));
	for (uint32_t i = 0; i < nhosts && !r.failed(); i++) {
		StateHost host;
		std::string ip = r.str();
		host.hostname = r.str();
		host.tag = r.u16();
		host.vhost_count = r.u32();
		uint8_t down = r.u8();
		host.last_updown_change = int64_t(r.u64());
		if (r.failed())
			break;
		auto addr = IpAddr::parse(ip);
		if (!addr)
			return make_error("corrupt header: host " + std::to_string(i) +
					  " has no valid address");
		host.ip = *addr;
		if (host.tag >= h.tags.size() || down > 1)
			return make_error("corrupt header: host " + ip + " has a bad tag or state");
		host.down = down != 0;
		h.hosts.push_back(std::move(host));
	}

	uint32_t ndirs = r.count(2 + 2);
	for (uint32_t i = 0; i < ndirs && !r.failed(); i++) {
		StateDirector d;
		std::string ip = r.str();
		d.port = r.u16();
		if (r.failed())
			break;
		auto addr = IpAddr::parse(ip);
		if (!addr)
			return make_error("corrupt header: director " + std::to_string(i) +
					  " has no valid address");
		d.ip = *addr;
		h.directors.push_back(d);
	}
	if (r.failed())
		return make_error("corrupt header: a field runs past the header's end");
	if (!r.at_end())
		return make_error("corrupt header: unexpected bytes after the director list");
	return h;
}

void append_record(std::string &out, const StateUser &u)
{
	char b[state_user_record_size];
	for (int i = 0; i < 4; i++) {
		b[i] = char((u.user_hash >> (8 * i)) & 0xff);
		b[4 + i] = char((u.timestamp >> (8 * i)) & 0xff);
	}
	uint16_t tag_flags = uint16_t(u.tag | (u.weak ? state_user_flag_weak : 0));
	b[8] = char(u.host & 0xff);
	b[9] = char(u.host >> 8);
	b[10] = char(tag_flags & 0xff);
	b[11] = char(tag_flags >> 8);
	out.append(b, sizeof(b));
}

} // namespace

uint32_t crc32c_update(uint32_t crc, const void *data, size_t size)
{
	const auto *p = static_cast<const uint8_t *>(data);
	const auto &t = crc32c_tables.t;
	crc = ~crc;
	while (size >= 8) {
		uint32_t lo = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
				     uint32_t(p[3]) << 24);
		crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^
		      t[4][lo >> 24] ^ t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
		p += 8;
		size -= 8;
	}
	while (size-- > 0)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

std::array<uint8_t, 16> StateIdentity::fingerprint() const
{
	std::vector<std::pair<IpAddr, std::string>> hosts;
	for (const ConfigHost &h : mail_servers)
		hosts.emplace_back(h.ip, h.tag);
	std::sort(hosts.begin(), hosts.end());
	hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
	std::vector<std::pair<IpAddr, uint16_t>> dirs;
	for (const Director &d : director_servers)
		dirs.emplace_back(d.ip, d.port);
	std::sort(dirs.begin(), dirs.end());
	dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());

	// Length-prefixed fields, so no two different identities encode alike.
	std::string canon = "director-state-identity\n";
	auto field = [&canon](std::string_view s) {
		canon += std::to_string(s.size());
		canon += ':';
		canon.append(s.data(), s.size());
	};
	field("mail_servers");
	for (const auto &[ip, tag] : hosts) {
		field(ip.to_string());
		field(tag);
	}
	field("director_servers");
	for (const auto &[ip, port] : dirs) {
		field(ip.to_string());
		field(std::to_string(port));
	}
	field("self");
	field(self.ip.to_string());
	field(std::to_string(self.port));
	field("username_hash");
	field(username_hash);
	return md5_digest(canon);
}

StateEncoder::StateEncoder(const StateHeader &header)
    : buf_(encode_header(header)), host_count_(header.hosts.size()),
      tag_count_(header.tags.size())
{
}

void StateEncoder::add_user(const StateUser &user)
{
	if (finished_)
		misuse("add_user after finish");
	if (user.host >= host_count_ || user.tag >= tag_count_)
		misuse("user host or tag out of range");
	append_record(buf_, user);
	users_++;
}

std::string StateEncoder::take()
{
	crc_ = crc32c_update(crc_, buf_.data(), buf_.size());
	std::string out;
	out.swap(buf_);
	return out;
}

std::string StateEncoder::finish()
{
	if (finished_)
		misuse("finish twice");
	buf_.append(trailer_magic, sizeof(trailer_magic));
	put_u64(buf_, users_);
	crc_ = crc32c_update(crc_, buf_.data(), buf_.size());
	put_u32(buf_, crc_);
	finished_ = true;
	std::string out;
	out.swap(buf_);
	return out;
}

std::string encode_state_file(const StateHeader &header, const std::vector<StateUser> &users)
{
	StateEncoder enc(header);
	for (const StateUser &u : users)
		enc.add_user(u);
	std::string out = enc.take();
	out += enc.finish();
	return out;
}

Result<StateFile> StateFile::parse(std::string_view data,
				   const std::array<uint8_t, 16> &expected_identity)
{
	if (data.empty())
		return make_error("empty file");
	if (data.size() < sizeof(file_magic) ||
	    std::memcmp(data.data(), file_magic, sizeof(file_magic)) != 0)
		return make_error("not a director state file (bad magic)");
	if (data.size() < prefix_size + trailer_size)
		return make_error("truncated (" + std::to_string(data.size()) + " bytes)");
	uint32_t version = get_u32(data.data() + 8);
	if (version != state_file_version)
		return make_error("unsupported version " + std::to_string(version) +
				  " (this director reads version " +
				  std::to_string(state_file_version) + ")");
	uint64_t header_len = get_u32(data.data() + 12);
	if (header_len > state_max_header_bytes ||
	    data.size() < prefix_size + header_len + trailer_size)
		return make_error("truncated (" + std::to_string(data.size()) +
				  " bytes, header alone needs " +
				  std::to_string(prefix_size + header_len + trailer_size) + ")");

	const char *trailer = data.data() + data.size() - trailer_size;
	if (std::memcmp(trailer, trailer_magic, sizeof(trailer_magic)) != 0)
		return make_error("truncated or corrupt (no end marker)");
	uint64_t user_count = get_u64(trailer + 8);
	size_t records_len = data.size() - prefix_size - header_len - trailer_size;
	if (records_len % state_user_record_size != 0 ||
	    records_len / state_user_record_size != user_count)
		return make_error("truncated or corrupt (" + std::to_string(records_len) +
				  " bytes of users for a count of " + std::to_string(user_count) +
				  ")");
	uint32_t stored_crc = get_u32(trailer + 16);
	uint32_t crc = crc32c_update(0, data.data(), data.size() - 4);
	if (crc != stored_crc)
		return make_error("checksum mismatch (corrupt file)");

	Result<StateHeader> header = parse_header(data.substr(prefix_size, header_len));
	if (!header)
		return make_error(header.error());
	if (header->identity != expected_identity)
		return make_error("written for another configuration (director_mail_servers, "
				  "director_servers, this director's address or "
				  "director_username_hash differ)");

	StateFile f;
	f.header_ = std::move(header).value();
	f.records_ = data.substr(prefix_size + header_len, records_len);
	f.user_count_ = user_count;
	size_t nhosts = f.header_.hosts.size(), ntags = f.header_.tags.size();
	for (uint64_t i = 0; i < user_count; i++) {
		const char *p = f.records_.data() + i * state_user_record_size;
		uint16_t host = get_u16(p + 8), tag_flags = get_u16(p + 10);
		uint16_t tag = tag_flags & state_user_tag_mask;
		if (host >= nhosts || tag >= ntags ||
		    (tag_flags & ~(state_user_tag_mask | state_user_flag_weak)) != 0)
			return make_error("corrupt user record " + std::to_string(i) +
					  " (host, tag or flags out of range)");
		if (get_u32(p) == 0)
			return make_error("corrupt user record " + std::to_string(i) +
					  " (user hash 0)");
	}
	return f;
}

} // namespace director::core
