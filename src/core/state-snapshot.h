// StateSnapshot: the director's state streamed into the state file format in pieces,
// over a UserTable cursor that stays valid while the table changes between pieces.
// No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host-list.h"
#include "state-file.h"
#include "user-table.h"

namespace director::core {

// Takes the host and tag lists when made (the caller's `header` brings the rest); the
// users follow in pieces. A user refreshed or added while the pieces are made may be
// met again and written twice (the loader keeps the newest); a user erased meanwhile
// is not written; users of a host removed meanwhile are skipped. The table and the
// host list must outlive the snapshot, which holds a cursor of the table until it is
// destroyed.
class StateSnapshot {
public:
	StateSnapshot(UserTable &users, const HostList &hosts, StateHeader header);
	~StateSnapshot();
	StateSnapshot(const StateSnapshot &) = delete;
	StateSnapshot &operator=(const StateSnapshot &) = delete;

	const StateHeader &header() const { return header_; }
	// Appends about max_bytes (at least one record's worth) to `out`; true when the
	// file is complete.
	bool next_chunk(std::string &out, size_t max_bytes);
	uint64_t user_count() const { return enc_.user_count(); }

private:
	static StateHeader with_hosts(const HostList &hosts, StateHeader header,
				      std::vector<uint16_t> &index_of_id_r);
	bool host_index(HostId id, uint16_t &index_r);

	UserTable &users_;
	const HostList &hosts_;
	std::vector<uint16_t> index_of_id_; // host id -> header index, or no_index
	StateHeader header_;
	StateEncoder enc_;
	UserTable::Cursor cursor_;
	bool done_ = false;
	uint64_t ids_generation_;
	static constexpr uint16_t no_index = 0xffff;
};

} // namespace director::core
