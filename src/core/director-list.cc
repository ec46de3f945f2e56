// DirectorList (see director-list.h). No I/O here.
#include "director-list.h"

#include <algorithm>

namespace director::core {

namespace {

bool ring_less(const DirectorHost &a, const IpAddr &ip, uint16_t port)
{
	int c = a.ip.compare(ip);
	return c != 0 ? c < 0 : a.port < port;
}

} // namespace

std::string DirectorList::key(const IpAddr &ip, uint16_t port)
{
	std::string k(reinterpret_cast<const char *>(ip.bytes()), ip.size());
	k += char(port >> 8);
	k += char(port & 0xff);
	return k;
}

DirectorHost *DirectorList::find(const IpAddr &ip, uint16_t port) const
{
	auto it = index_.find(key(ip, port));
	return it == index_.end() ? nullptr : it->second;
}

DirectorHost *DirectorList::find_any(const IpAddr &ip, std::optional<uint16_t> port) const
{
	if (port)
		return find(ip, *port);
	auto pos = std::lower_bound(dirs_.begin(), dirs_.end(), ip,
				    [](const std::unique_ptr<DirectorHost> &a, const IpAddr &b) {
					    return a->ip.compare(b) < 0;
				    });
	return pos != dirs_.end() && (*pos)->ip == ip ? pos->get() : nullptr;
}

bool DirectorList::listed(const IpAddr &ip) const
{
	auto pos = std::lower_bound(dirs_.begin(), dirs_.end(), ip,
				    [](const std::unique_ptr<DirectorHost> &a, const IpAddr &b) {
					    return a->ip.compare(b) < 0;
				    });
	for (; pos != dirs_.end() && (*pos)->ip == ip; ++pos) {
		if (!(*pos)->removed)
			return true;
	}
	return false;
}

DirectorHost *DirectorList::add(const IpAddr &ip, uint16_t port)
{
	if (full() || find(ip, port) != nullptr)
		return nullptr;
	auto h = std::make_unique<DirectorHost>();
	h->ip = ip;
	h->port = port;
	DirectorHost *raw = h.get();
	auto pos = std::lower_bound(dirs_.begin(), dirs_.end(), raw,
				    [](const std::unique_ptr<DirectorHost> &a, const DirectorHost *b) {
					    return ring_less(*a, b->ip, b->port);
				    });
	dirs_.insert(pos, std::move(h));
	index_.emplace(key(ip, port), raw);
	return raw;
}

size_t DirectorList::position(const DirectorHost *h) const
{
	auto pos = std::lower_bound(dirs_.begin(), dirs_.end(), h,
				    [](const std::unique_ptr<DirectorHost> &a, const DirectorHost *b) {
					    return ring_less(*a, b->ip, b->port);
				    });
	return pos != dirs_.end() && pos->get() == h ? size_t(pos - dirs_.begin()) : 0;
}

int DirectorList::cmp_to_self(const DirectorHost *a, const DirectorHost *b) const
{
	size_t n = dirs_.size(), s = position(self_);
	size_t ra = (position(a) + n - s) % n, rb = (position(b) + n - s) % n;
	return ra < rb ? 1 : ra > rb ? -1 : 0;
}

DirectorHost *DirectorList::after_self(size_t i) const
{
	size_t n = dirs_.size(), s = position(self_);
	return dirs_[(s + i) % n].get();
}

DirectorHost *DirectorList::preferred_right() const
{
	for (size_t i = 1; i < dirs_.size(); i++) {
		DirectorHost *h = after_self(i);
		if (!h->removed)
			return h;
	}
	return nullptr;
}

bool DirectorList::others() const
{
	for (const auto &d : dirs_) {
		if (!d->self && !d->removed)
			return true;
	}
	return false;
}

} // namespace director::core
