// UserTable: the director's user state, (tag, user hash) -> mail host with a last-refresh
// timestamp, weak and kill flags, kept in expiry order and counted per host. Compact: about
// 30 bytes per user all-in. No I/O, no clock (times are unix seconds passed in) and no logging.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "ids.h"
#include "page-array.h"
#include "user-digest-entry.h"

namespace director::core {

// HostId and TagId come from ids.h. invalid_host is never stored in the table, and tags
// above max_tag_id do not fit in an entry (12 bits).
constexpr TagId max_tag_id = 0x0fff;

// Names a user entry. It stays valid until that entry is erased; after erase() the same
// number may be handed out again by a later insert(). no_user means "none".
using UserIndex = uint32_t;
constexpr UserIndex no_user = UINT32_MAX;

// Holds every known user of every tag. Each entry is keyed by (user_hash, tag): the same user
// hash may exist independently in several tags.
//
// Lookups and inserts are O(1) expected (an open-addressing index over a slab of 20-byte
// entries). The entries also form one list ordered by timestamp, oldest first, so the caller
// can expire users in O(expired) by looking at oldest() until it finds one that is still
// fresh. Timestamps older than the newest entry (ring handshakes deliver them) are put in
// order by a bounded walk back from the newest entry; when the bound is hit the list is only
// approximately ordered until sort_by_timestamp() runs (sorted() tells which).
//
// Passing a UserIndex that does not name a live entry, a host of invalid_host or a tag above
// max_tag_id is a programming error and aborts. Nothing here throws except std::bad_alloc.
class UserTable {
public:
	// The most users the table can hold (its index packs the slab position into 27 bits).
	static constexpr size_t max_users = (size_t{1} << 27) - 1;

	// `limit`: the most users insert() accepts (at most max_users).
	explicit UserTable(size_t limit = max_users);
	~UserTable();
	size_t limit() const { return limit_; }
	UserTable(const UserTable &) = delete;
	UserTable &operator=(const UserTable &) = delete;

	// Returns the entry of user_hash in tag, or no_user. O(1) expected.
	UserIndex find(uint32_t user_hash, TagId tag) const;

	// Bulk loading (a ring handshake, a state load). reserve() sizes the index for
	// `extra` more users at once (capped at limit()), so a million inserts do not
	// rebuild it at every doubling; it changes nothing else. prefetch() is a hint
	// given a few keys ahead of their find()/insert(): it starts loading the key's
	// index slot, so the inserts of a run overlap their cache misses.
	void reserve(size_t extra);
	void prefetch(uint32_t user_hash, TagId tag) const;

	// Bulk load into an empty table (a state file restore): load_begin(), then
	// load_add() for each user, then load_end(). load_add() only appends the entry to
	// the slab and the expiry list (no index work, no allocation per user); load_end()
	// builds the index in one pass in slot order, so it is written front to back
	// instead of at random, and sorts the expiry list when the users did not come in
	// timestamp order. A user added twice (same hash and tag) keeps the entry with
	// the newest timestamp, the later one on a tie, as a series of insert() and
	// refresh() calls would; load_end() returns how many entries it dropped so.
	// Between load_begin() and load_end() nothing but load_add() may be called
	// (find(), insert(), erase(), reserve() and open_cursor() abort). load_begin()
	// aborts unless the table is empty and no cursor is open; `expected` only
	// presizes the slab's chunk list. load_add() returns false, adding nothing, once
	// limit() entries were added (duplicates included). The resulting table equals,
	// entry for entry, one filled by insert() in the same order (UserIndex values
	// aside).
	void load_begin(size_t expected);
	bool load_add(uint32_t user_hash, TagId tag, HostId host, uint32_t timestamp);
	size_t load_end();

	// Adds a user that find() does not know (adding it twice aborts), with its flags clear,
	// and places it in expiry order by `timestamp`. Returns its index, or no_user only when
	// the table already holds limit() users. The caller caps `timestamp` at "now".
	UserIndex insert(uint32_t user_hash, TagId tag, HostId host, uint32_t timestamp);

	// Sets u's timestamp and moves it in expiry order. The table enforces that timestamps
	// never go backwards: an older timestamp changes nothing and returns false. Otherwise
	// returns true; u moves to the newest end in the common case (also when the timestamp
	// is unchanged, as a stock refresh does), O(1), and is placed in order by a bounded
	// walk when `timestamp` is older than newest().
	bool refresh(UserIndex u, uint32_t timestamp);

	// Raises u's timestamp without moving it in expiry order: what a stock director
	// does to a moved user, whose place in USER-LIST output is thereby kept. The
	// list stays approximately sorted, as stock's does.
	void set_timestamp_in_place(UserIndex u, uint32_t timestamp);

	// Moves u to `host` and updates both hosts' user counts. Timestamp and flags are kept.
	void set_host(UserIndex u, HostId host);

	// Forgets u. Only u becomes invalid; every other index stays valid, so erasing while
	// walking the expiry list is safe when newer(u) is taken before erase(u).
	void erase(UserIndex u);

	// Forgets every user on `host` (in every tag) and returns how many. O(slab size).
	size_t erase_host(HostId host);
	// How many times erase_host() ran: a ring digest check (user-digest.h)
	// that spans one must not bring those users back.
	uint64_t host_erasures() const { return host_erasures_; }

	// Whether u names a live entry (possibly another user's, once u was erased
	// and its number handed out again).
	bool live(UserIndex u) const
	{
		return u < slab_used_ && (raw_entry_(u).tag_flags & flag_used_) != 0;
	}
	uint32_t user_hash(UserIndex u) const { return entry_(u).user_hash; }
	TagId tag(UserIndex u) const { return entry_(u).tag_flags & tag_mask_; }
	HostId host(UserIndex u) const { return entry_(u).host; }
	uint32_t timestamp(UserIndex u) const { return entry_(u).timestamp; }

	// Weak: the user's host is being renegotiated on the ring (USER-WEAK).
	bool weak(UserIndex u) const { return (entry_(u).tag_flags & flag_weak_) != 0; }
	void set_weak(UserIndex u, bool weak);
	// Kill pending: a move/kick of the user is in progress; its state lives with the caller.
	bool kill_pending(UserIndex u) const { return (entry_(u).tag_flags & flag_kill_) != 0; }
	void set_kill_pending(UserIndex u, bool pending) { set_flag_(u, flag_kill_, pending); }
	// Resend: learned from a handshake and not yet passed on to our right side.
	bool resend(UserIndex u) const { return (entry_(u).tag_flags & flag_resend_) != 0; }
	void set_resend(UserIndex u, bool on);
	// While few users are marked resend, the table lists them, so that passing
	// them on needs no walk of the slab: every entry marked since the last time
	// none was (some may have been cleared or erased since, or name another
	// user now, some twice: check resend()). nullptr once more than an eighth of
	// the table (and 4096) were marked, until none is marked again.
	const std::vector<UserIndex> *resend_marked() const
	{
		return resend_list_ok_ ? &resend_list_ : nullptr;
	}

	// The expiry list, oldest first: for (u = oldest(); u != no_user; u = newer(u)).
	// refresh() during a walk moves the entry to the newest end, where the walk meets it
	// again; take newer(u) first. Every call is O(1).
	UserIndex oldest() const { return head_; }
	UserIndex newest() const { return tail_; }
	UserIndex newer(UserIndex u) const { return entry_(u).next; }
	UserIndex older(UserIndex u) const { return entry_(u).prev; }

	// Calls f(u) for every user, in slab order rather than expiry order: one
	// sequential pass, several times faster than the list walk on a big table, for
	// work whose result does not depend on the order (digests, picking users to
	// erase afterwards). f must not change the table.
	template <typename F> void for_each(F &&f) const
	{
		for_each_hash([&f](UserIndex u, uint32_t) { f(u); });
	}
	// The same with each user's hash at hand, read in the same pass: picking the
	// users of some hash buckets costs no lookup per user.
	template <typename F> void for_each_hash(F &&f) const
	{
		for (size_t c = 0; c < chunks_.size(); c++) {
			const Entry *chunk = chunks_[c];
			auto base = static_cast<UserIndex>(c << chunk_bits_);
			if (base >= slab_used_)
				break; // chunks stay mapped after a table was emptied
			uint32_t n = std::min<uint32_t>(chunk_entries_, slab_used_ - base);
			for (uint32_t i = 0; i < n; i++) {
				if ((chunk[i].tag_flags & flag_used_) != 0)
					f(base + i, chunk[i].user_hash);
			}
		}
	}

	// Cursors: walks over the expiry list that stay valid while the table changes
	// (a ring handshake streams the users in batches while lookups and the other
	// side's handshake keep changing them). A cursor starts at the oldest entry and
	// runs to the newest end as it is when reached, so entries added or refreshed
	// during the walk are met too (some twice: harmless for a user stream). The
	// table advances every cursor itself when the entry under it is erased or
	// moved. While any cursor is open, inserts go to the newest end without
	// walking and sort_by_timestamp() is postponed until the last cursor closes,
	// as stock postpones its sort while an iteration runs.
	using Cursor = uint32_t;
	Cursor open_cursor();
	// The next entry of `c` (no_user at the end), advancing it.
	UserIndex cursor_next(Cursor c);
	// True when cursor_next(c) would return no_user.
	bool cursor_done(Cursor c) const { return cursors_.at(c) == no_user; }
	void close_cursor(Cursor c);
	size_t open_cursors() const { return open_cursors_; }

	size_t size() const { return count_; }
	// Users on `host` over all tags, maintained incrementally (no scan). 0 for unknown hosts.
	size_t users_on_host(HostId host) const
	{
		return host < host_users_.size() ? host_users_[host] : 0;
	}

	// Orders the expiry list by timestamp (ties by index) and makes sorted() true. The caller
	// runs it when a ring handshake ends; while a cursor is open the sort happens when the
	// last cursor closes. O(n + k log k) for k users out of order (the list is
	// nearly always close to sorted), with 8 bytes of temporary memory for each
	// of those k.
	void sort_by_timestamp();
	// The same, left for later: the sort runs at the next sort_if_due() or
	// open_cursor(), or when the last cursor closes. Until then the list stays
	// approximately ordered (inserts append). A handshake's end defers its sort
	// this way, so that what it sends goes out before a pass over the table.
	void sort_later() { sort_pending_ = true; }
	// True when a sort was left for later and no cursor holds it back.
	bool sort_due() const { return sort_pending_ && open_cursors_ == 0; }
	void sort_if_due()
	{
		if (sort_due())
			sort_now_();
	}
	// False once a bounded insert could not place an entry in order, until the next sort.
	// While false, out-of-order entries are appended at the newest end without walking:
	// the caller is expected to sort anyway, and this keeps a handshake O(1) per user.
	bool sorted() const { return sorted_; }

	// Bucket digests kept up to date (user-digest.h). Once maintain_digests() said
	// where host keys come from, every change to a user's presence, host or weak
	// flag adds to or takes from the digest of its bucket at digest_bits() top
	// bits of the user hash; a digest at fewer bits is the sum of a range of
	// these, so a ring handshake or check gets its digests in O(buckets) instead of
	// a pass over every user. The bits grow with the table (about 4 users a
	// bucket, from digest_min_bits to digest_max_bits, 2 MiB at 1 M users), each
	// step adding the users up again, as the index grows; a bulk load adds them up
	// once at load_end(). `host_key` is asked for a host's key
	// (user_digest_host_key() of its IP) when the host gets its first user, and
	// the key is kept while it has users: a host's IP does not change while users
	// are on it. The table's current users are added up at once.
	static constexpr unsigned digest_min_bits = 7;
	static constexpr unsigned digest_max_bits = 18;
	static constexpr size_t digest_users_per_bucket = 4;
	void maintain_digests(std::function<uint64_t(HostId)> host_key);
	// The 2^digest_bits() digests, or nullptr while they are not maintained.
	const uint64_t *fine_digests() const { return digests_ ? digests_.get() : nullptr; }
	unsigned digest_bits() const { return digest_bits_; }

	// Every byte the table has allocated and uses (slab chunks, counting the huge pages
	// the chunks in use reach in a block that is not full yet, index, per-host
	// counters, this object).
	// Nothing shrinks: erased entries and index slots are reused by later inserts.
	size_t memory_bytes() const;

private:
	// One user, 20 bytes. Free entries have flag_used_ clear and chain through `next`.
	struct Entry {
		uint32_t user_hash;
		uint32_t timestamp;
		UserIndex prev; // older neighbour in the expiry list, or free-list unused
		UserIndex next; // newer neighbour, or the next free entry
		HostId host;
		uint16_t tag_flags; // tag in the low 12 bits, flags above
	};
	static_assert(sizeof(Entry) == 20, "UserTable::Entry must stay 20 bytes");
	void add_chunk_();

	static constexpr uint16_t tag_mask_ = max_tag_id;
	static constexpr uint16_t flag_used_ = 0x1000;
	static constexpr uint16_t flag_weak_ = 0x2000;
	static constexpr uint16_t flag_kill_ = 0x4000;
	static constexpr uint16_t flag_resend_ = 0x8000;

	// The slab grows by fixed chunks, so it has no doubling slack and entries never move.
	// The first few chunks have a mapping each (a small table stays small); after them
	// the chunks come chunks_per_block_ to a block that is exactly five huge pages
	// (page-array.h), faulted in a huge page at a time as it fills.
	static constexpr unsigned chunk_bits_ = 15;
	static constexpr uint32_t chunk_entries_ = uint32_t{1} << chunk_bits_;
	static constexpr size_t chunk_bytes_ = size_t{chunk_entries_} * 20;
	static constexpr size_t chunks_per_block_ = 16;
	static constexpr size_t single_chunks_ = 3;
	static_assert(chunks_per_block_ * chunk_bytes_ % PageMemory::huge_page_bytes == 0,
		      "a slab block must be whole huge pages");

	const Entry &entry_(UserIndex u) const
	{
		if (!live(u))
			invalid_index_(u);
		return raw_entry_(u);
	}
	Entry &entry_(UserIndex u)
	{
		return const_cast<Entry &>(static_cast<const UserTable *>(this)->entry_(u));
	}
	Entry &raw_entry_(UserIndex u) const
	{
		return chunks_[u >> chunk_bits_][u & (chunk_entries_ - 1)];
	}

	[[noreturn]] static void invalid_index_(UserIndex u);
	[[noreturn]] static void invariant_failed_(const char *what);

	void set_flag_(UserIndex u, uint16_t flag, bool on);
	UserIndex alloc_entry_();
	void link_in_order_(UserIndex u);
	void unlink_(UserIndex u);
	// Out of the expiry list and the host's count, onto the free list (the
	// index slot is the caller's).
	void release_(UserIndex u);
	void host_add_(HostId host);
	void host_remove_(HostId host);
	// Adds e's digest entry to its bucket (or takes it away) when digests are kept.
	void digest_update_(const Entry &e, bool add)
	{
		if (!digests_)
			return;
		uint64_t d = user_digest_entry(e.user_hash, host_keys_[e.host],
					       (e.tag_flags & flag_weak_) != 0);
		uint64_t &bucket = digests_[e.user_hash >> (32 - digest_bits_)];
		bucket = add ? bucket + d : bucket - d;
	}
	void index_grow_();
	void index_rebuild_(size_t capacity);
	// Empties the first `capacity` (a power of two) slots of index_ and sets the
	// mask, shift and growth point for that size.
	void index_clear_(size_t capacity);
	size_t index_slot_of_(UserIndex u) const;

	std::vector<Entry *> chunks_;	   // chunk number -> its entries
	std::vector<PageMemory> slab_memory_; // what the chunks live in
	uint32_t slab_used_ = 0; // entries [0, slab_used_) have been handed out at least once
	UserIndex free_head_ = no_user;

	// Open addressing, linear probing, backward-shift deletion. A slot holds the slab index
	// in its low 27 bits and 5 bits of the key hash above, so most probes that would compare
	// a different key are rejected without touching the slab.
	PageArray<uint32_t> index_;
	size_t index_mask_ = 0; // capacity - 1 (capacity is a power of two), 0 when unallocated
	unsigned index_shift_ = 64; // 64 - log2(capacity): a key hash's top bits pick the slot
	size_t index_grow_at_ = 0;

	UserIndex head_ = no_user;
	UserIndex tail_ = no_user;
	size_t count_ = 0;
	size_t limit_;
	bool sorted_ = true;

	std::vector<uint32_t> host_users_;
	// Digests (maintain_digests()): the key source (set: they are kept), each
	// host's key (valid while the host has users), the digests and their bits
	// (none during a bulk load).
	std::function<uint64_t(HostId)> host_key_;
	std::vector<uint64_t> host_keys_;
	PageArray<uint64_t> digests_;
	unsigned digest_bits_ = 0;
	// Sizes the digests for `users` (never fewer bits than now) and adds up every user.
	void digest_rebuild_(size_t users);

	// Cursor positions by cursor number; free slots hold closed_cursor_.
	static constexpr UserIndex closed_cursor_ = UINT32_MAX - 1;
	std::vector<UserIndex> cursors_;
	size_t open_cursors_ = 0;
	uint64_t host_erasures_ = 0;
	size_t resend_count_ = 0; // entries marked resend
	std::vector<UserIndex> resend_list_;
	bool resend_list_ok_ = true;
	static constexpr size_t resend_list_min_cap_ = 4096;
	static constexpr size_t resend_list_max_share_ = 8;
	void resend_mark_gone_();
	bool sort_pending_ = false;
	bool loading_ = false; // between load_begin() and load_end()
	void not_loading_(const char *what) const
	{
		if (loading_)
			invariant_failed_(what);
	}
	void cursors_step_over_(UserIndex u);
	void sort_now_();
};

} // namespace director::core
