// AdminSession: one director-admin (doveadm) connection's protocol, from the handshake
// to each command's reply, over the codecs of admin-protocol.h. The adapter only moves
// lines in and bytes out and decides when to read (output throttling, timeouts). No
// I/O here.
//
// The exchange: on accept both sides send "VERSION\tdirector-doveadm\t1\t0" (greeting()).
// Then doveadm sends one command at a time. Most are answered at once with one line,
// or with lines ended by an empty line for the listings. Some answer later: a host
// change on a ring replies once the ring synced (Effects::admin -> reply_later()),
// the pre-sync commands wait for a synced ring before they run at all
// (Effects::admin_resume -> resume()). USER-LIST of a big table is written in pieces
// (continue_user_list()) as the client reads them. While any of these is pending the
// session reads no further command (reading() is false). HEALTH-LIST, our extension,
// is a command only while health checks run; otherwise it is an unknown command, as
// on stock. A line stock cannot parse is an error: the adapter logs it and closes the
// connection without a reply.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "admin-protocol.h"
#include "director-types.h"
#include "result.h"

namespace director::core {

class Director;
class UserList;

// What a session needs from the process around it.
class AdminSessionPort {
public:
	virtual ~AdminSessionPort() = default;
	// Queues bytes for the client.
	virtual void admin_send(std::string_view data) = 0;
	// The HEALTH-LIST reply (lines and the ending empty line), or nullopt while
	// health checks are off.
	virtual std::optional<std::string> admin_health_list() = 0;
	// Fills in the byte counters of ring connection `id` for DIRECTOR-LIST; leaves
	// them 0 when there is no such transport.
	virtual void admin_ring_counters(RingConnId id, DirectorListConnection &conn) = 0;
};

class AdminSession {
public:
	// `id` names this session in the director's admin jobs (Effects::admin,
	// admin_resume). The director and the port must outlive the session.
	AdminSession(Director &director, JobId id, AdminSessionPort &port);
	// Tells the director the session is gone (its queued kicks are dropped).
	~AdminSession();
	AdminSession(const AdminSession &) = delete;
	AdminSession &operator=(const AdminSession &) = delete;

	// The handshake line to send on accept, with its LF.
	static std::string greeting();

	// One line from the client, without LF. An error is stock's log text: log it
	// and close the connection; nothing was sent.
	Status input_line(std::string_view line, Now now, Effects &fx);
	// The deferred reply of the pending command (Effects::admin).
	void reply_later(AdminResult result);
	// The ring synced (Effects::admin_resume): the command that waited for it
	// runs now.
	void resume(Now now, Effects &fx);

	// USER-LIST in progress: queue about max_bytes more of it. true when the
	// reply is complete (listing() is then false).
	bool continue_user_list(size_t max_bytes);

	bool handshaked() const { return handshaked_; }
	bool awaiting_reply() const { return awaiting_reply_; }
	bool waiting_for_sync() const { return waiting_.has_value(); }
	bool listing() const { return list_ != nullptr; }
	// False while a command is pending: read no further command meanwhile.
	bool reading() const { return !awaiting_reply_ && !waiting_ && !list_; }

private:
	void run(const AdminCommand &cmd, Now now, Effects &fx);
	void dispatch(const AdminCommand &cmd, Now now, Effects &fx);
	void reply(AdminReply r);
	void send_line(std::string line);
	uint32_t hash_of(const AdminCommand &cmd) const;
	std::string host_list_reply() const;
	std::string host_list_removed_reply() const;
	std::string director_list_reply(Now now);

	Director &director_;
	JobId id_;
	AdminSessionPort &port_;
	bool handshaked_ = false;
	bool awaiting_reply_ = false;	    // a command answers later
	std::optional<AdminCommand> waiting_; // until the ring syncs
	std::unique_ptr<UserList> list_;      // USER-LIST in progress
};

} // namespace director::core
