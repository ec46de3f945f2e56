// The two narrow seams between the ring and the user/host logic. RingPort is what user
// moves, kicks and host changes may ask of the ring; RingHandler is what the ring asks
// of the user table and host list when a peer's command arrives. No I/O here.
#pragma once

#include <cstdint>
#include <string>

#include "director-types.h"
#include "ids.h"
#include "ring-protocol.h"
#include "user-digest.h"

namespace director::core {

struct DirectorHost;
class RingLink;

class RingPort {
public:
	virtual ~RingPort() = default;
	// Ring mode: director_servers lists peers (or a director was added).
	virtual bool active() const = 0;
	// Connected on at least one side (left or right).
	virtual bool has_neighbours() const = 0;
	virtual bool has_right() const = 0;
	virtual bool has_links() const = 0;
	virtual bool synced() const = 0;
	virtual bool handshaked() const = 0;
	// The lowest minor version of the ring (from the last SYNC).
	virtual unsigned min_version() const = 0;
	// When the ring last became synced or unsynced (0: never synced).
	virtual int64_t last_sync_time() const = 0; // Now::mono
	// Us, as a source for send(); nullptr before ring_start().
	virtual const DirectorHost *self() const = 0;
	// A new origin triple of ours.
	virtual RingOrigin next_origin() = 0;
	// Sends to every link but those to `src` (stock's "update send"), skipping peers
	// whose minor version is below min_minor.
	virtual void send(const DirectorHost *src, const RingCommand &cmd, Effects &fx,
			  unsigned min_minor = 0) = 0;
	// Sends to our right only; false when we have none.
	virtual bool send_right(const RingCommand &cmd, Effects &fx) = 0;
	// Passes a USER-WEAK on towards its origin; `from` is where it came from.
	virtual void pass_on(const RingLink &from, const RingCommand &cmd, Effects &fx) = 0;
	// Closes a link after a protocol error found above the ring.
	virtual void close(RingLink &link, const std::string &reason, Now now, Effects &fx,
			   bool protocol_failure) = 0;
	// Something changed: the ring must SYNC again.
	virtual void changed(Now now, Effects &fx) = 0;
};

class RingHandler {
public:
	virtual ~RingHandler() = default;
	// A user or host command from a peer (USER, HOST, HOST-REMOVE, HOST-FLUSH,
	// USER-MOVE, USER-KILLED, USER-KILLED-EVERYWHERE, USER-KICK*), its origin
	// already checked. `reoriginated`: its origin is unknown to us, so it travels on
	// as ours.
	virtual void ring_change(RingLink &from, const RingCommand &cmd, bool reoriginated,
				 Now now, Effects &fx) = 0;
	// USER-WEAK: `seen` when its origin triple was seen before, `own` when we are
	// its origin.
	virtual void ring_user_weak(RingLink &from, const RingCommand &cmd, bool seen, bool own,
				    Now now, Effects &fx) = 0;
	virtual void ring_handshake_host(RingLink &from, const RingCommand &cmd, Now now,
					 Effects &fx) = 0;
	virtual void ring_handshake_user(RingLink &from, uint32_t hash, HostId host,
					 int64_t timestamp, bool weak, Now now,
					 Effects &fx) = 0;
	// We join a working ring: its hosts replace ours.
	virtual void ring_joining(Now now) = 0;
	// The same as a delta join (user-digest.h): `hosts` (its handshake HOST
	// lines) replace ours in place, and of our users only those of the
	// `replace` buckets and of hosts it does not list go. Returns the users kept.
	virtual size_t ring_joining_delta(const std::vector<const RingCommand *> &hosts,
					  const UserDigestBuckets &replace, Now now) = 0;
	// A SYNC showed that a director's hosts differ from ours.
	virtual void ring_resend_hosts(Now now, Effects &fx) = 0;
	// The ring synced: host changes are no longer pending.
	virtual void ring_synced(Now now, Effects &fx) = 0;
	// Ring state changed (synced, handshaked, weak user cleared): delayed lookups may
	// be answered now.
	virtual void ring_state_changed(Now now, Effects &fx) = 0;
};

} // namespace director::core
