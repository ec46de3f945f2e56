// Host bookkeeping, tag names, lazy per-tag rings and hosts_hash. No I/O here.
#include "host-list.h"

#include <algorithm>

#include "digest.h"

namespace director::core {

HostList::HostList() : tag_names_{std::string()} {}

std::optional<HostId> HostList::add(const IpAddr &ip, std::string_view tag, unsigned vhost_count)
{
	HostId id;
	if (!free_ids_.empty()) {
		id = free_ids_.back();
		free_ids_.pop_back();
	} else {
		if (slots_.size() >= invalid_host)
			return std::nullopt;
		id = static_cast<HostId>(slots_.size());
		slots_.emplace_back();
	}
	MailHost host;
	host.ip = ip;
	host.tag = tag_id(tag);
	host.vhost_count = vhost_count;
	slots_[id] = std::move(host);
	count_++;
	ids_generation_++;
	invalidate_rings();
	return id;
}

void HostList::remove(HostId id)
{
	slots_[id].reset();
	free_ids_.push_back(id);
	count_--;
	ids_generation_++;
	invalidate_rings();
}

HostId HostList::find(const IpAddr &ip) const
{
	for (size_t i = 0; i < slots_.size(); i++) {
		if (slots_[i] && slots_[i]->ip == ip)
			return static_cast<HostId>(i);
	}
	return invalid_host;
}

void HostList::set_vhost_count(HostId id, unsigned vhost_count)
{
	slots_[id]->vhost_count = vhost_count;
	invalidate_rings();
}

void HostList::set_down(HostId id, bool down, int64_t timestamp)
{
	if (slots_[id]->down == down)
		return;
	slots_[id]->down = down;
	slots_[id]->last_updown_change = timestamp;
	invalidate_rings();
}

void HostList::set_tag(HostId id, std::string_view tag)
{
	slots_[id]->tag = tag_id(tag);
	invalidate_rings();
}

void HostList::set_hostname(HostId id, std::string_view hostname)
{
	slots_[id]->hostname = std::string(hostname);
}

void HostList::set_desynced(HostId id, bool desynced)
{
	slots_[id]->desynced = desynced;
}

void HostList::clear_desynced()
{
	for (auto &slot : slots_) {
		if (slot)
			slot->desynced = false;
	}
}

std::vector<HostId> HostList::sorted_ids() const
{
	std::vector<HostId> ids;
	ids.reserve(count_);
	for (size_t i = 0; i < slots_.size(); i++) {
		if (slots_[i])
			ids.push_back(static_cast<HostId>(i));
	}
	std::sort(ids.begin(), ids.end(),
		  [this](HostId a, HostId b) { return slots_[a]->ip < slots_[b]->ip; });
	return ids;
}

TagId HostList::tag_id(std::string_view name)
{
	if (auto found = find_tag(name))
		return *found;
	tag_names_.emplace_back(name);
	return static_cast<TagId>(tag_names_.size() - 1);
}

std::optional<TagId> HostList::find_tag(std::string_view name) const
{
	for (size_t i = 0; i < tag_names_.size(); i++) {
		if (tag_names_[i] == name)
			return static_cast<TagId>(i);
	}
	return std::nullopt;
}

bool HostList::have_tags() const
{
	for (const auto &slot : slots_) {
		if (slot && slot->tag != default_tag)
			return true;
	}
	return false;
}

void HostList::invalidate_rings() const
{
	rings_.clear();
}

const HashRing &HostList::ring(TagId tag) const
{
	if (rings_.size() <= tag)
		rings_.resize(tag + 1);
	if (!rings_[tag]) {
		std::vector<HashRing::Member> members;
		for (size_t i = 0; i < slots_.size(); i++) {
			const auto &h = slots_[i];
			if (h && h->tag == tag && !h->down && h->vhost_count > 0)
				members.push_back({static_cast<HostId>(i), h->ip, h->vhost_count});
		}
		rings_[tag].emplace(members);
	}
	return *rings_[tag];
}

HostId HostList::lookup(uint32_t user_hash, TagId tag) const
{
	if (tag >= tag_names_.size())
		return invalid_host;
	return ring(tag).lookup(user_hash);
}

bool HostList::have_usable_hosts(TagId tag) const
{
	return tag < tag_names_.size() && !ring(tag).empty();
}

uint32_t HostList::hosts_hash() const
{
	auto le32 = [](uint32_t v, uint8_t out[4]) {
		out[0] = uint8_t(v);
		out[1] = uint8_t(v >> 8);
		out[2] = uint8_t(v >> 16);
		out[3] = uint8_t(v >> 24);
	};
	uint32_t crc = 0;
	for (HostId id : sorted_ids()) {
		const MailHost &h = *slots_[id];
		uint8_t buf[4];
		// Stock XORs the down flag into the vhost count (a quirk we keep).
		le32((h.down ? 1u : 0u) ^ h.vhost_count, buf);
		crc = crc32_update(crc, buf, 4);
		le32(h.ip.stock_hash(), buf);
		crc = crc32_update(crc, buf, 4);
		const std::string &tag = tag_names_[h.tag];
		crc = crc32_update(crc, tag.data(), tag.size());
	}
	return crc == 0 ? 1 : crc;
}

} // namespace director::core
