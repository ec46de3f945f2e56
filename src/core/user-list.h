// UserList: the USER-LIST reply (doveadm director map) formatted in pieces over a
// UserTable cursor, so a big table is neither copied nor written in one go. No I/O here.
//
// Stock lists the users per tag, least to most recently refreshed. So does this: one
// pass of a table cursor per tag that existed when the listing began. Between pieces
// the table keeps changing: a user refreshed or added during a pass may be met again
// at the newest end and listed twice, a user erased before its turn is not listed,
// and users of a host removed meanwhile are skipped. A pass visits at most twice as
// many entries as the table held when it began (plus a margin), so a listing ends
// even while logins keep refreshing users faster than the client reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "host-list.h"
#include "ip-addr.h"
#include "user-table.h"

namespace director::core {

class UserList {
public:
	// Lists the users of the host `ip` only, or of every host (nullopt). An unknown
	// `ip` lists nothing. The table and the host list must outlive the listing,
	// which holds a cursor of the table until it is destroyed.
	UserList(UserTable &users, const HostList &hosts, std::optional<IpAddr> ip,
		 uint32_t user_expire_secs);
	~UserList();
	UserList(const UserList &) = delete;
	UserList &operator=(const UserList &) = delete;

	// Appends lines ("<user_hash>\t<expire>\t<host_ip>\n") until about max_bytes were
	// added or a bounded number of entries was visited (so a chunk may add nothing);
	// at the end the empty line that ends the reply. true when the reply is complete.
	bool next_chunk(std::string &out, size_t max_bytes);
	uint64_t users_listed() const { return listed_; }

private:
	bool start_pass();
	bool wanted_host(HostId id) const;

	UserTable &users_;
	const HostList &hosts_;
	std::optional<IpAddr> ip_;
	HostId only_ = invalid_host;
	uint64_t ids_generation_;
	uint32_t user_expire_secs_;
	size_t tag_count_;
	TagId tag_ = 0;
	bool cursor_open_ = false;
	UserTable::Cursor cursor_ = 0;
	size_t pass_budget_ = 0; // entries this pass may still visit
	uint64_t listed_ = 0;
	bool done_ = false;
};

} // namespace director::core
