// Kicking user connections out of login processes. The core hands over a
// typed kick (core/kick.h). Dovecot 2.3 words it as an ipc command for the ipc
// service (kick-client-23.cc); 2.4 has no ipc service, so the same kick goes
// through anvil (kick-client-24.cc).
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

	// `hash` is director_username_hash: 2.4 kicks by user hash with it.
	static std::unique_ptr<KickClient> create(struct event *event, core::UsernameHash hash);
	virtual ~KickClient() = default;

	// Called once before privileges are dropped (2.4: anvil's socket is
	// root's).
	virtual void connect() = 0;
	// Runs the kick; `done` is called once, possibly before kick() returns.
	virtual void kick(const core::Kick &kick, Callback done) = 0;
};

} // namespace director::adapter
