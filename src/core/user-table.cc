// UserTable: slab of 20-byte entries, open-addressing index, intrusive expiry list and
// per-host counters. No I/O, no clock, no logging.
#include "user-table.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace director::core {

namespace {

// An index slot: the slab index in the low 27 bits, 5 bits of the key hash above.
// All ones is the empty slot; it cannot collide with a real slot because slab indexes stay
// below 2^27 - 1 (max_users), so the low 27 bits of a real slot are never all ones.
constexpr unsigned slot_index_bits = 27;
constexpr uint32_t slot_index_mask = (uint32_t{1} << slot_index_bits) - 1;
constexpr uint32_t empty_slot = UINT32_MAX;
static_assert(UserTable::max_users == slot_index_mask, "max_users must match the slot layout");

constexpr size_t index_min_capacity = 16;

// Ring handshakes deliver timestamps a little older than our newest ones. Walking back this
// far keeps the usual few-seconds skew in order; anything further is left to
// sort_by_timestamp(), since each step is a likely cache miss on a big table.
constexpr unsigned max_order_walk_steps = 64;

// Mixes (tag, user hash) into 64 bits (murmur3's finalizer, a bijection). User hashes are
// already well spread, but the mix keeps equal hashes of different tags apart and makes
// hand-made or colliding hashes harmless. The top bits pick the slot, the low 5 bits are
// the slot's fingerprint, so the two are independent.
inline uint64_t key_hash(uint32_t user_hash, uint16_t tag)
{
	uint64_t x = (uint64_t{tag} << 32) | user_hash;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

inline uint32_t fingerprint(uint64_t h)
{
	return static_cast<uint32_t>(h & 0x1f) << slot_index_bits;
}

} // namespace

UserTable::UserTable(size_t limit) : limit_(limit < max_users ? limit : max_users) {}
UserTable::~UserTable() = default;

void UserTable::invalid_index_(UserIndex u)
{
	std::fprintf(stderr, "Panic: UserTable: %u is not a live user index\n", u);
	std::abort();
}

void UserTable::invariant_failed_(const char *what)
{
	std::fprintf(stderr, "Panic: UserTable: %s\n", what);
	std::abort();
}

UserIndex UserTable::find(uint32_t user_hash, TagId tag) const
{
	not_loading_("find() during a bulk load");
	if (count_ == 0)
		return no_user;
	uint64_t h = key_hash(user_hash, tag);
	uint32_t fp = fingerprint(h);
	for (size_t pos = h >> index_shift_;; pos = (pos + 1) & index_mask_) {
		uint32_t s = index_[pos];
		if (s == empty_slot)
			return no_user;
		if ((s & ~slot_index_mask) != fp)
			continue;
		UserIndex u = s & slot_index_mask;
		const Entry &e = raw_entry_(u);
		if (e.user_hash == user_hash && (e.tag_flags & tag_mask_) == tag)
			return u;
	}
}

void UserTable::reserve(size_t extra)
{
	not_loading_("reserve() during a bulk load");
	size_t want = std::min(count_ + std::min(extra, limit_), limit_);
	if (want <= index_grow_at_)
		return;
	size_t capacity = index_ ? index_mask_ + 1 : index_min_capacity;
	while (capacity - capacity / 5 < want)
		capacity *= 2;
	index_rebuild_(capacity);
}

void UserTable::prefetch(uint32_t user_hash, TagId tag) const
{
	if (index_)
		__builtin_prefetch(&index_[key_hash(user_hash, tag) >> index_shift_]);
}

UserIndex UserTable::insert(uint32_t user_hash, TagId tag, HostId host, uint32_t timestamp)
{
	if (host == invalid_host)
		invariant_failed_("insert with invalid_host");
	if (tag > max_tag_id)
		invariant_failed_("insert with a tag above max_tag_id");
	not_loading_("insert() during a bulk load");
	if (count_ >= limit_)
		return no_user;
	if (count_ + 1 > index_grow_at_)
		index_grow_();

	uint64_t h = key_hash(user_hash, tag);
	uint32_t fp = fingerprint(h);
	size_t pos = h >> index_shift_;
	for (;; pos = (pos + 1) & index_mask_) {
		uint32_t s = index_[pos];
		if (s == empty_slot)
			break;
		if ((s & ~slot_index_mask) != fp)
			continue;
		const Entry &e = raw_entry_(s & slot_index_mask);
		if (e.user_hash == user_hash && (e.tag_flags & tag_mask_) == tag)
			invariant_failed_("insert of a user that is already in the table");
	}

	UserIndex u = alloc_entry_();
	Entry &e = raw_entry_(u);
	e.user_hash = user_hash;
	e.timestamp = timestamp;
	e.host = host;
	e.tag_flags = static_cast<uint16_t>(tag | flag_used_);
	index_[pos] = fp | u;
	count_++;
	host_add_(host);
	digest_update_(e, true);
	if (digests_ && count_ > digest_users_per_bucket << digest_bits_ &&
	    digest_bits_ < digest_max_bits)
		digest_rebuild_(count_);
	link_in_order_(u);
	return u;
}

void UserTable::load_begin(size_t expected)
{
	if (count_ != 0 || open_cursors_ != 0 || loading_)
		invariant_failed_("load_begin() on a table that is not empty, or with a cursor open");
	// Every entry is free: start the slab over, so the users are laid out in the
	// order they come (the chunks stay allocated). The index is rebuilt in load_end().
	slab_used_ = 0;
	free_head_ = no_user;
	head_ = tail_ = no_user;
	sorted_ = true;
	std::fill(host_users_.begin(), host_users_.end(), 0);
	digests_.reset(); // added up at load_end()
	size_t n = std::min(expected, limit_);
	chunks_.reserve((n + chunk_entries_ - 1) / chunk_entries_);
	loading_ = true;
}

bool UserTable::load_add(uint32_t user_hash, TagId tag, HostId host, uint32_t timestamp)
{
	if (!loading_)
		invariant_failed_("load_add() outside load_begin()/load_end()");
	if (host == invalid_host)
		invariant_failed_("load_add with invalid_host");
	if (tag > max_tag_id)
		invariant_failed_("load_add with a tag above max_tag_id");
	if (slab_used_ >= limit_)
		return false;
	UserIndex u = alloc_entry_();
	Entry &e = raw_entry_(u);
	e.user_hash = user_hash;
	e.timestamp = timestamp;
	e.prev = tail_;
	e.next = no_user;
	e.host = host;
	e.tag_flags = static_cast<uint16_t>(tag | flag_used_);
	if (tail_ == no_user) {
		head_ = u;
	} else {
		Entry &t = raw_entry_(tail_);
		t.next = u;
		if (t.timestamp > timestamp)
			sorted_ = false;
	}
	tail_ = u;
	count_++;
	host_add_(host);
	return true;
}

size_t UserTable::load_end()
{
	if (!loading_)
		invariant_failed_("load_end() without load_begin()");
	loading_ = false;

	size_t capacity = index_min_capacity;
	while (capacity - capacity / 5 < count_)
		capacity *= 2;
	if (!index_ || index_mask_ + 1 < capacity)
		index_ = PageArray<uint32_t>(capacity);
	else
		capacity = index_mask_ + 1;
	index_clear_(capacity);
	unsigned bits = 64 - index_shift_; // log2(capacity)

	// Counting sort of the entries by their home slot's top bits (2048 buckets, so
	// the scatter writes stay in cache), then one pass that fills the index bucket by
	// bucket: each bucket's inserts land in a small window that moves front to back.
	// An item packs the home slot above bit 32 and the slot value (fingerprint and
	// slab index) below.
	unsigned bucket_bits = std::min(bits, 11u);
	unsigned bucket_shift = bits - bucket_bits;
	std::vector<uint32_t> start((size_t{1} << bucket_bits) + 1, 0);
	for (UserIndex u = 0; u < slab_used_; u++) {
		const Entry &e = raw_entry_(u);
		uint64_t h = key_hash(e.user_hash, e.tag_flags & tag_mask_);
		start[((h >> index_shift_) >> bucket_shift) + 1]++;
	}
	for (size_t b = 1; b < start.size(); b++)
		start[b] += start[b - 1];
	PageArray<uint64_t> items(slab_used_);
	for (UserIndex u = 0; u < slab_used_; u++) {
		const Entry &e = raw_entry_(u);
		uint64_t h = key_hash(e.user_hash, e.tag_flags & tag_mask_);
		uint64_t home = h >> index_shift_;
		items[start[home >> bucket_shift]++] = (home << 32) | fingerprint(h) | u;
	}

	std::vector<UserIndex> dropped;
	for (size_t i = 0; i < items.size(); i++) {
		uint64_t item = items[i];
		auto slot = static_cast<uint32_t>(item);
		uint32_t fp = slot & ~slot_index_mask;
		UserIndex u = slot & slot_index_mask;
		for (size_t pos = item >> 32;; pos = (pos + 1) & index_mask_) {
			uint32_t s = index_[pos];
			if (s == empty_slot) {
				index_[pos] = slot;
				break;
			}
			if ((s & ~slot_index_mask) != fp)
				continue;
			UserIndex v = s & slot_index_mask;
			const Entry &a = raw_entry_(u), &b = raw_entry_(v);
			if (a.user_hash != b.user_hash ||
			    (a.tag_flags & tag_mask_) != (b.tag_flags & tag_mask_))
				continue;
			// The same user twice: the newer timestamp wins, the later entry on
			// a tie (insert() then refresh() in load order would do the same).
			bool u_wins = a.timestamp > b.timestamp || (a.timestamp == b.timestamp && u > v);
			if (u_wins)
				index_[pos] = slot;
			dropped.push_back(u_wins ? v : u);
			break;
		}
	}
	for (UserIndex v : dropped)
		release_(v);
	if (host_key_)
		digest_rebuild_(count_);
	if (count_ == 0)
		sorted_ = true;
	if (!sorted_)
		sort_now_();
	return dropped.size();
}

bool UserTable::refresh(UserIndex u, uint32_t timestamp)
{
	Entry &e = entry_(u);
	if (timestamp < e.timestamp)
		return false;
	e.timestamp = timestamp;
	if (u != tail_) {
		// The timestamp only grew, so the entry's place is between its old one and
		// the newest end; link_in_order_() walks from there.
		unlink_(u);
		link_in_order_(u);
	}
	return true;
}

void UserTable::set_timestamp_in_place(UserIndex u, uint32_t timestamp)
{
	Entry &e = entry_(u);
	if (timestamp > e.timestamp)
		e.timestamp = timestamp;
}

void UserTable::set_host(UserIndex u, HostId host)
{
	if (host == invalid_host)
		invariant_failed_("set_host to invalid_host");
	Entry &e = entry_(u);
	digest_update_(e, false);
	host_remove_(e.host);
	host_add_(host);
	e.host = host;
	digest_update_(e, true);
}

void UserTable::erase(UserIndex u)
{
	not_loading_("erase() during a bulk load");
	entry_(u); // aborts on an index that is not a user

	// Backward-shift deletion (Knuth's algorithm R): pull later members of the probe
	// run into the hole unless that would put them before their home slot, so lookups
	// never need tombstones.
	size_t hole = index_slot_of_(u);
	for (size_t j = (hole + 1) & index_mask_;; j = (j + 1) & index_mask_) {
		uint32_t s = index_[j];
		if (s == empty_slot)
			break;
		const Entry &m = raw_entry_(s & slot_index_mask);
		size_t home = key_hash(m.user_hash, m.tag_flags & tag_mask_) >> index_shift_;
		// The member at j may fill the hole iff its home is not cyclically in (hole, j].
		bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
		if (movable) {
			index_[hole] = s;
			hole = j;
		}
	}
	index_[hole] = empty_slot;

	release_(u);
	if (count_ == 0)
		sorted_ = true;
}

size_t UserTable::erase_host(HostId host)
{
	host_erasures_++;
	size_t remaining = users_on_host(host);
	size_t erased = 0;
	for (UserIndex u = 0; u < slab_used_ && erased < remaining; u++) {
		const Entry &e = raw_entry_(u);
		if ((e.tag_flags & flag_used_) != 0 && e.host == host) {
			erase(u);
			erased++;
		}
	}
	if (users_on_host(host) != 0)
		invariant_failed_("per-host user count disagrees with the slab");
	return erased;
}

UserTable::Cursor UserTable::open_cursor()
{
	not_loading_("open_cursor() during a bulk load");
	// A cursor walks the list oldest first: a sort left for later runs now.
	sort_if_due();
	Cursor c = 0;
	while (c < cursors_.size() && cursors_[c] != closed_cursor_)
		c++;
	if (c == cursors_.size())
		cursors_.push_back(no_user);
	cursors_[c] = head_;
	open_cursors_++;
	return c;
}

UserIndex UserTable::cursor_next(Cursor c)
{
	UserIndex u = cursors_.at(c);
	if (u == closed_cursor_)
		invariant_failed_("cursor_next on a closed cursor");
	if (u != no_user)
		cursors_[c] = raw_entry_(u).next;
	return u;
}

void UserTable::close_cursor(Cursor c)
{
	if (cursors_.at(c) == closed_cursor_)
		invariant_failed_("close_cursor on a closed cursor");
	cursors_[c] = closed_cursor_;
	if (--open_cursors_ == 0 && sort_pending_)
		sort_now_();
}

void UserTable::cursors_step_over_(UserIndex u)
{
	if (open_cursors_ == 0)
		return;
	for (UserIndex &pos : cursors_) {
		if (pos == u)
			pos = raw_entry_(u).next;
	}
}

void UserTable::sort_by_timestamp()
{
	sort_later();
	sort_if_due(); // at once, unless a cursor holds it back
}

// The list is nearly always close to sorted already: a handshake's users arrive in the
// sender's expiry order, a state file holds ours, and what breaks the order is a few
// users whose timestamp rose in place (moves) or arrived late. So rather than sort every
// key, one walk takes out the entries that break the order, only those are sorted, and
// a second walk merges them back: O(n + k log k) for k entries out of place. The result
// is the same as sorting all n keys (timestamp, then index; the keys are unique).
void UserTable::sort_now_()
{
	sort_pending_ = false;
	auto key = [this](UserIndex u) { return (uint64_t{raw_entry_(u).timestamp} << 32) | u; };
	std::vector<uint64_t> out; // the keys of the entries taken out
	size_t walked = 0;
	UserIndex last = no_user; // the list from head_ to here is in order
	uint64_t last_key = 0;
	for (UserIndex u = head_; u != no_user;) {
		UserIndex next = raw_entry_(u).next;
		uint64_t k = key(u);
		walked++;
		if (last == no_user || k > last_key) {
			last = u;
			last_key = k;
			u = next;
			continue;
		}
		// u is older than `last`. When u still fits after the entry before `last`,
		// `last` is the one out of place (a timestamp that rose in place), else u is.
		UserIndex before = raw_entry_(last).prev;
		if (before == no_user || k > key(before)) {
			out.push_back(last_key);
			unlink_(last);
			last = u;
			last_key = k;
		} else {
			out.push_back(k);
			unlink_(u);
		}
		u = next;
	}
	if (walked != count_)
		invariant_failed_("expiry list length disagrees with the user count");
	std::sort(out.begin(), out.end());

	// Merge: each taken-out entry goes back before the first entry with a bigger key.
	UserIndex at = head_;
	for (uint64_t k : out) {
		while (at != no_user && key(at) < k)
			at = raw_entry_(at).next;
		UserIndex u = static_cast<UserIndex>(k);
		Entry &e = raw_entry_(u);
		e.next = at;
		e.prev = at == no_user ? tail_ : raw_entry_(at).prev;
		if (e.prev == no_user)
			head_ = u;
		else
			raw_entry_(e.prev).next = u;
		if (at == no_user)
			tail_ = u;
		else
			raw_entry_(at).prev = u;
	}
	sorted_ = true;
}

size_t UserTable::memory_bytes() const
{
	size_t index_slots = index_ ? index_mask_ + 1 : 0;
	// A block is mapped whole but filled a huge page at a time: count the huge
	// pages its chunks reach, not the mapping.
	size_t singles = std::min(chunks_.size(), single_chunks_);
	size_t in_blocks = (chunks_.size() - singles) * chunk_bytes_;
	size_t huge = PageMemory::huge_page_bytes;
	size_t slab = singles * chunk_bytes_ + (in_blocks + huge - 1) / huge * huge;
	return sizeof(*this) + chunks_.capacity() * sizeof(chunks_[0]) +
	       slab_memory_.capacity() * sizeof(slab_memory_[0]) + slab +
	       index_slots * sizeof(uint32_t) + host_users_.capacity() * sizeof(uint32_t) +
	       host_keys_.capacity() * sizeof(uint64_t) + digests_.size() * sizeof(uint64_t);
}

void UserTable::set_resend(UserIndex u, bool on)
{
	if (resend(u) == on)
		return;
	set_flag_(u, flag_resend_, on);
	if (!on) {
		resend_mark_gone_();
		return;
	}
	resend_count_++;
	if (!resend_list_ok_)
		return;
	if (resend_list_.size() < std::max(resend_list_min_cap_, count_ / resend_list_max_share_)) {
		resend_list_.push_back(u);
	} else {
		resend_list_ok_ = false;
		std::vector<UserIndex>().swap(resend_list_);
	}
}

void UserTable::resend_mark_gone_()
{
	if (--resend_count_ != 0)
		return;
	resend_list_.clear();
	resend_list_ok_ = true;
}

void UserTable::set_flag_(UserIndex u, uint16_t flag, bool on)
{
	Entry &e = entry_(u);
	if (on)
		e.tag_flags |= flag;
	else
		e.tag_flags &= static_cast<uint16_t>(~flag);
}

UserIndex UserTable::alloc_entry_()
{
	if (free_head_ != no_user) {
		UserIndex u = free_head_;
		free_head_ = raw_entry_(u).next;
		return u;
	}
	if (slab_used_ == chunks_.size() * size_t{chunk_entries_})
		add_chunk_();
	return slab_used_++;
}

void UserTable::add_chunk_()
{
	static_assert(chunk_bytes_ == chunk_entries_ * sizeof(Entry), "chunk_bytes_ is wrong");
	size_t c = chunks_.size();
	if (c < single_chunks_) {
		// A bulk load fills the chunk front to back: map it whole at once
		// (page-array.h), far cheaper than a fault per page. Otherwise leave its
		// pages to be faulted in as they are used, so a small table stays small.
		slab_memory_.emplace_back(chunk_bytes_, loading_);
		chunks_.push_back(static_cast<Entry *>(slab_memory_.back().data()));
	} else if ((c - single_chunks_) % chunks_per_block_ == 0) {
		// Huge pages: a fault per 2 MiB costs little, and populating the whole
		// block would take memory its last chunks may never use.
		slab_memory_.emplace_back(chunks_per_block_ * chunk_bytes_, false);
		chunks_.push_back(static_cast<Entry *>(slab_memory_.back().data()));
	} else {
		chunks_.push_back(chunks_.back() + chunk_entries_);
	}
}

void UserTable::link_in_order_(UserIndex u)
{
	Entry &e = raw_entry_(u);
	UserIndex after = tail_;
	if (open_cursors_ > 0 && tail_ != no_user && raw_entry_(tail_).timestamp > e.timestamp) {
		// A cursor must meet it: append, and sort once the cursors are closed.
		sorted_ = false;
		sort_pending_ = true;
	} else if (tail_ != no_user && sorted_ && raw_entry_(tail_).timestamp > e.timestamp) {
		unsigned steps = 0;
		while (after != no_user && raw_entry_(after).timestamp > e.timestamp &&
		       steps < max_order_walk_steps) {
			after = raw_entry_(after).prev;
			steps++;
		}
		if (after != no_user && raw_entry_(after).timestamp > e.timestamp)
			sorted_ = false;
	}

	// Insert u right after `after` (at the head when it is no_user).
	e.prev = after;
	e.next = after == no_user ? head_ : raw_entry_(after).next;
	if (e.next == no_user)
		tail_ = u;
	else
		raw_entry_(e.next).prev = u;
	if (after == no_user)
		head_ = u;
	else
		raw_entry_(after).next = u;
}

void UserTable::release_(UserIndex u)
{
	Entry &e = raw_entry_(u);
	unlink_(u);
	digest_update_(e, false);
	host_remove_(e.host);
	if ((e.tag_flags & flag_resend_) != 0)
		resend_mark_gone_();
	e.tag_flags = 0;
	e.prev = no_user;
	e.next = free_head_;
	free_head_ = u;
	count_--;
}

void UserTable::unlink_(UserIndex u)
{
	cursors_step_over_(u);
	Entry &e = raw_entry_(u);
	if (e.prev == no_user)
		head_ = e.next;
	else
		raw_entry_(e.prev).next = e.next;
	if (e.next == no_user)
		tail_ = e.prev;
	else
		raw_entry_(e.next).prev = e.prev;
}

void UserTable::host_add_(HostId host)
{
	if (host >= host_users_.size())
		host_users_.resize(size_t{host} + 1, 0);
	if (host_users_[host]++ == 0 && host_key_) {
		if (host >= host_keys_.size())
			host_keys_.resize(size_t{host} + 1, 0);
		host_keys_[host] = host_key_(host);
	}
}

void UserTable::maintain_digests(std::function<uint64_t(HostId)> host_key)
{
	not_loading_("maintain_digests() during a bulk load");
	host_key_ = std::move(host_key);
	host_keys_.assign(host_users_.size(), 0);
	for (size_t h = 0; h < host_users_.size(); h++) {
		if (host_users_[h] != 0)
			host_keys_[h] = host_key_(static_cast<HostId>(h));
	}
	digest_rebuild_(count_);
}

void UserTable::digest_rebuild_(size_t users)
{
	unsigned bits = std::max(digest_bits_, digest_min_bits);
	while (bits < digest_max_bits && digest_users_per_bucket << bits < users)
		bits++;
	digest_bits_ = bits;
	digests_ = PageArray<uint64_t>(size_t{1} << bits);
	for_each([this](UserIndex u) { digest_update_(raw_entry_(u), true); });
}

void UserTable::set_weak(UserIndex u, bool weak)
{
	Entry &e = entry_(u);
	if (((e.tag_flags & flag_weak_) != 0) == weak)
		return;
	digest_update_(e, false);
	set_flag_(u, flag_weak_, weak);
	digest_update_(e, true);
}

void UserTable::host_remove_(HostId host)
{
	if (host >= host_users_.size() || host_users_[host] == 0)
		invariant_failed_("per-host user count underflow");
	host_users_[host]--;
}

void UserTable::index_grow_()
{
	index_rebuild_(index_ ? (index_mask_ + 1) * 2 : index_min_capacity);
}

void UserTable::index_clear_(size_t capacity)
{
	std::fill_n(index_.get(), capacity, empty_slot);
	index_mask_ = capacity - 1;
	unsigned bits = 0;
	while ((size_t{1} << bits) < capacity)
		bits++;
	index_shift_ = 64 - bits;
	// Grow at 80 % load: linear probing stays short (about 3 probes for a hit, and the
	// fingerprint spares the slab most of a miss's probes) at 4-10 bytes per user.
	index_grow_at_ = capacity - capacity / 5;
}

void UserTable::index_rebuild_(size_t capacity)
{
	index_ = PageArray<uint32_t>(capacity);
	index_clear_(capacity);

	// Rebuild from the slab: a sequential scan instead of chasing the old index.
	for (UserIndex u = 0; u < slab_used_; u++) {
		const Entry &e = raw_entry_(u);
		if ((e.tag_flags & flag_used_) == 0)
			continue;
		uint64_t h = key_hash(e.user_hash, e.tag_flags & tag_mask_);
		size_t pos = h >> index_shift_;
		while (index_[pos] != empty_slot)
			pos = (pos + 1) & index_mask_;
		index_[pos] = fingerprint(h) | u;
	}
}

size_t UserTable::index_slot_of_(UserIndex u) const
{
	const Entry &e = raw_entry_(u);
	uint64_t h = key_hash(e.user_hash, e.tag_flags & tag_mask_);
	for (size_t pos = h >> index_shift_;; pos = (pos + 1) & index_mask_) {
		uint32_t s = index_[pos];
		if (s == empty_slot)
			invariant_failed_("a live user is missing from the index");
		if ((s & slot_index_mask) == u)
			return pos;
	}
}

} // namespace director::core
