// Kicking user connections out of login processes. The core hands over a
// typed kick (core/kick.h). Dovecot 2.3 words it as an ipc command for the ipc
// service (kick-client-23.cc); 2.4 has no ipc service, so the same kick goes
// through anvil (kick-client-24.cc). Both talk to their peer over one
// socket they open through a Connector, so tests can hand them one end of a
// socketpair.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/kick.h"
#include "core/user-hash.h"

struct event;

namespace director::adapter {

class KickClient {
public:
	// ok=false with a reason when the kick could not be carried out.
	using Callback = std::function<void(bool ok, const std::string &error)>;
	// Opens a connected socket to the peer (2.3: the ipc service, 2.4:
	// anvil) and returns it, or logs why not and returns -1. Called at the
	// first kick (2.4: at connect()) and again after the peer closed.
	using Connector = std::function<int()>;

	// How long one request may wait for its reply: a hung ipc service or
	// anvil (anvil itself waits up to 25 s for the login processes) must
	// not hold a kick, and with it the core's count of running kicks,
	// forever. The move timeout, as a kick belongs to a move.
	static constexpr unsigned default_reply_timeout_msecs = 30 * 1000;

	// The client for this Dovecot version, connecting to its socket in
	// base_dir. `hash` is director_username_hash: 2.4 kicks by user hash
	// with it.
	static std::unique_ptr<KickClient> create(struct event *event, core::UsernameHash hash);
	// The same client with its peer and reply timeout given (tests).
	static std::unique_ptr<KickClient> create(struct event *event, core::UsernameHash hash,
						  Connector connect_peer,
						  unsigned reply_timeout_msecs);
	virtual ~KickClient() = default;

	// Called once before privileges are dropped (2.4: anvil's socket is
	// root's).
	virtual void connect() = 0;
	// Runs the kick; `done` is called exactly once, possibly before kick()
	// returns: with the peer's answer, or with ok=false when the peer
	// cannot be reached, closes the connection, sends a malformed reply or
	// does not answer within the reply timeout, or when the client is
	// destroyed first.
	virtual void kick(const core::Kick &kick, Callback done) = 0;
};

} // namespace director::adapter
