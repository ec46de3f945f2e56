// RingLink (see ring-link.h). No I/O here.
#include "ring-link.h"

#include <algorithm>

#include <cstring>

namespace director::core {

namespace {

// Longer than any address text (IPv6 with an embedded IPv4 takes 45).
constexpr size_t ip_text_max = 64;

// Writes `v` in decimal at `p` and returns the end.
char *append_decimal(char *p, uint32_t v)
{
	char tmp[10];
	size_t n = 0;
	do {
		tmp[n++] = char('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

} // namespace

RingLink::RingLink(RingConnId id, bool incoming, const IpAddr &remote, Now now)
	: pctx(RingParseContext::fresh(incoming)), remote_ip(remote), created(now.mono),
	  last_input(now.mono), id_(id), incoming_(incoming),
	  state_(incoming ? State::handshaking : State::connecting)
{
}

RingLink::~RingLink()
{
	stop_user_stream();
}

void RingLink::set_connected(Now now)
{
	if (state_ == State::connecting)
		state_ = State::handshaking;
	last_input = now.mono;
}

void RingLink::send(const RingCommand &cmd, unsigned ring_min_version, Effects &fx)
{
	std::string line = format_ring_command(cmd, {pctx.peer_minor, ring_min_version});
	line += '\n';
	fx.ring_sends.push_back({id_, std::move(line)});
}

void RingLink::ping(Now now, unsigned ring_min_version, Effects &fx)
{
	if (ping_pending || !connected())
		return;
	RingCommand cmd;
	cmd.kind = RingCommandKind::ping;
	cmd.timestamp = now.wall;
	cmd.buffer_bytes = 0;
	send(cmd, ring_min_version, fx);
	ping_pending = true;
	ping_sent_at = now.mono;
}

bool RingLink::pong(Now now)
{
	if (!ping_pending)
		return false;
	ping_pending = false;
	last_ping_msecs = uint32_t((now.mono - ping_sent_at) * 1000);
	return true;
}

void RingLink::start_resend_stream(UserTable &users)
{
	std::vector<Listed> list;
	if (const std::vector<UserIndex> *marked = users.resend_marked()) {
		// The table listed them: no walk.
		for (UserIndex u : *marked) {
			if (users.live(u) && users.resend(u))
				list.push_back({u, users.user_hash(u), users.tag(u)});
		}
		start_listed_stream_(users, std::move(list));
	} else if (pick_users_(users, [&users](UserIndex u, uint32_t) { return users.resend(u); },
			       list)) {
		start_listed_stream_(users, std::move(list));
	} else {
		start_user_stream(users);
	}
	resend_ = true;
	stream_as_updates_ = true;
}

void RingLink::start_user_stream(UserTable &users)
{
	stop_user_stream();
	resend_ = false;
	stream_users_ = &users;
	stream_cursor_ = users.open_cursor();
}

void RingLink::start_user_stream(UserTable &users, const UserDigestBuckets &buckets)
{
	std::vector<Listed> list;
	// No buckets (a restored director meeting a running ring): nothing to pick.
	if (buckets.count() == 0 ||
	    pick_users_(users, [&](UserIndex, uint32_t hash) { return buckets.contains_user(hash); },
			list)) {
		start_listed_stream_(users, std::move(list));
	} else {
		start_user_stream(users);
		stream_filter_ = buckets;
	}
}

template <typename Pick>
bool RingLink::pick_users_(const UserTable &users, Pick &&pick, std::vector<Listed> &list)
{
	size_t max = std::max(listed_stream_min_cap, users.size() / listed_stream_max_share);
	bool fits = true;
	users.for_each_hash([&](UserIndex u, uint32_t hash) {
		if (!fits || !pick(u, hash))
			return;
		if (list.size() == max) {
			fits = false;
			return;
		}
		list.push_back({u, hash, users.tag(u)});
	});
	if (!fits)
		std::vector<Listed>().swap(list);
	return fits;
}

void RingLink::start_listed_stream_(UserTable &users, std::vector<Listed> list)
{
	stop_user_stream();
	resend_ = false;
	// Oldest first, as the expiry list would give them: a stock receiver of
	// a resend places each user by walking back from its newest one.
	std::sort(list.begin(), list.end(), [&users](const Listed &a, const Listed &b) {
		uint32_t ta = users.timestamp(a.u), tb = users.timestamp(b.u);
		return ta != tb ? ta < tb : a.u < b.u;
	});
	// A user the table listed twice (marked, erased, its entry reused and
	// marked again) goes once.
	list.erase(std::unique(list.begin(), list.end(),
			       [](const Listed &a, const Listed &b) { return a.u == b.u; }),
		   list.end());
	stream_users_ = &users;
	stream_listed_ = true;
	stream_list_ = std::move(list);
	stream_list_pos_ = 0;
}

UserIndex RingLink::next_stream_user_(UserTable &users)
{
	if (!stream_listed_)
		return users.cursor_next(stream_cursor_);
	while (stream_list_pos_ < stream_list_.size()) {
		const Listed &l = stream_list_[stream_list_pos_++];
		if (users.live(l.u) && users.user_hash(l.u) == l.user_hash && users.tag(l.u) == l.tag)
			return l.u;
	}
	return no_user;
}

void RingLink::stop_user_stream()
{
	if (stream_users_ != nullptr && !stream_listed_)
		stream_users_->close_cursor(stream_cursor_);
	stream_users_ = nullptr;
	stream_listed_ = false;
	std::vector<Listed>().swap(stream_list_);
	stream_list_pos_ = 0;
	stream_as_updates_ = false;
	stream_as_repair_ = false;
	stream_filter_ = UserDigestBuckets();
	want_drain = false;
}

bool RingLink::continue_user_stream(const HostList &hosts, Now now, Effects &fx)
{
	if (stream_users_ == nullptr)
		return true;
	UserTable &users = *stream_users_;
	want_drain = false;
	std::string batch;
	batch.reserve(ring_handshake_users_per_batch * 40);
	// Written by hand rather than through format_ring_command(): a million of these go
	// out when a director joins. Each line is built in a small buffer and appended once.
	std::string_view cmd = stream_as_repair_ ? "USER-DIGEST\tU\t"
			       : !stream_as_updates_ && pctx.peer_minor >= ring_minor_handshake_u
				       ? "U\t"
				       : "USER\t";
	size_t n = 0;
	if (send_ip_generation_ != hosts.ids_generation()) {
		send_ip_text_.clear();
		send_ip_generation_ = hosts.ids_generation();
	}
	// "USER-DIGEST\tU\t" + 10 digits + tab + address + tab + 10 digits + "\tw\n"
	char line[14 + 10 + 1 + ip_text_max + 1 + 10 + 3];
	while (n < ring_handshake_users_per_batch) {
		UserIndex u = next_stream_user_(users);
		if (u == no_user)
			break;
		if (!stream_filter_.empty() && !stream_filter_.contains_user(users.user_hash(u)))
			continue;
		if (stream_as_repair_) {
			if (users.weak(u))
				continue;
		} else if (!users.resend(u)) {
			if (resend_)
				continue;
		} else {
			users.set_resend(u, false);
		}
		HostId host = users.host(u);
		if (send_ip_text_.size() <= host)
			send_ip_text_.resize(host + 1);
		if (send_ip_text_[host].empty())
			send_ip_text_[host] = hosts.get(host).ip.to_string();
		const std::string &ip = send_ip_text_[host];
		if (ip.size() > ip_text_max)
			continue; // cannot happen: IpAddr text is at most 45 bytes
		char *p = line;
		std::memcpy(p, cmd.data(), cmd.size());
		p += cmd.size();
		p = append_decimal(p, users.user_hash(u));
		*p++ = '\t';
		std::memcpy(p, ip.data(), ip.size());
		p += ip.size();
		*p++ = '\t';
		p = append_decimal(p, users.timestamp(u));
		if (users.weak(u) && !stream_as_updates_ && !stream_as_repair_) {
			*p++ = '\t';
			*p++ = 'w';
		}
		*p++ = '\n';
		batch.append(line, size_t(p - line));
		if (stream_as_repair_)
			repair_sent++;
		else
			users_sent++;
		n++;
	}
	if (!batch.empty())
		fx.ring_sends.push_back({id_, std::move(batch)});
	last_output = now.mono;
	if (stream_listed_ ? stream_list_pos_ < stream_list_.size()
			   : !users.cursor_done(stream_cursor_)) {
		want_drain = true;
		return false;
	}
	stop_user_stream();
	return true;
}

} // namespace director::core
