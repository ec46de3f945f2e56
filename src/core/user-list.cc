// UserList: USER-LIST lines over a UserTable cursor, one pass per tag. No I/O here.
#include "user-list.h"

#include "admin-protocol.h"

namespace director::core {

namespace {
// Extra entries a pass may visit over twice the table's size at its start.
constexpr size_t pass_margin = 1024;
// Entries one chunk may visit, so a filter that skips most users (USER-LIST of one
// host) cannot turn a chunk into a walk of the whole table.
constexpr size_t chunk_max_visits = 16 * 1024;
} // namespace

UserList::UserList(UserTable &users, const HostList &hosts, std::optional<IpAddr> ip,
		   uint32_t user_expire_secs)
	: users_(users), hosts_(hosts), ip_(std::move(ip)),
	  ids_generation_(hosts.ids_generation()), user_expire_secs_(user_expire_secs),
	  tag_count_(hosts.tag_count())
{
	if (ip_) {
		only_ = hosts_.find(*ip_);
		if (only_ == invalid_host)
			tag_count_ = 0; // an unknown host has no users
	}
}

UserList::~UserList()
{
	if (cursor_open_)
		users_.close_cursor(cursor_);
}

bool UserList::wanted_host(HostId id) const
{
	if (!ip_)
		return hosts_.exists(id);
	if (hosts_.ids_generation() == ids_generation_)
		return id == only_;
	// Hosts were added or removed since the listing began: an id may now name
	// another address, so go by address.
	return hosts_.exists(id) && hosts_.get(id).ip == *ip_;
}

bool UserList::start_pass()
{
	if (tag_ >= tag_count_)
		return false;
	cursor_ = users_.open_cursor();
	cursor_open_ = true;
	pass_budget_ = 2 * users_.size() + pass_margin;
	return true;
}

bool UserList::next_chunk(std::string &out, size_t max_bytes)
{
	if (done_)
		return true;
	size_t start = out.size();
	size_t visits = 0;
	while (out.size() - start < max_bytes && visits < chunk_max_visits) {
		if (!cursor_open_ && !start_pass()) {
			out += '\n';
			done_ = true;
			return true;
		}
		UserIndex u = pass_budget_ > 0 ? users_.cursor_next(cursor_) : no_user;
		if (u == no_user) {
			users_.close_cursor(cursor_);
			cursor_open_ = false;
			tag_++;
			continue;
		}
		pass_budget_--;
		visits++;
		if (users_.tag(u) != tag_ || !wanted_host(users_.host(u)))
			continue;
		out += format_user_list_line(users_.user_hash(u),
					     uint32_t(int64_t(users_.timestamp(u)) +
						      user_expire_secs_),
					     hosts_.get(users_.host(u)).ip);
		out += '\n';
		listed_++;
	}
	return false;
}

} // namespace director::core
