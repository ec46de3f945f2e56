// StateEvents: director_host_changed and director_ring_synced from
// comparing the core's host list and ring state with the last ones seen.
#pragma once

#include <map>
#include <string>

#include "adapter/dovecot.h"
#include "adapter/named-event.h"
#include "core/director.h"

namespace director {

// The last host list and ring state seen, to turn differences into
// director_host_changed and director_ring_synced events.
class StateEvents {
public:
	explicit StateEvents(struct event *event) : event_(event) {}

	// from_ring: the change came in on a ring connection (origin=ring);
	// otherwise it was made here (admin, health checks, startup).
	void observe(const core::Director &dir, bool from_ring)
	{
		const core::HostList &list = dir.hosts();
		std::map<core::IpAddr, Host> now;
		for (core::HostId id : list.sorted_ids()) {
			const core::MailHost &h = list.get(id);
			now[h.ip] = Host{h.vhost_count, h.down, list.tag_name(h.tag)};
		}
		if (primed_) {
			const char *origin = from_ring ? "ring" : "local";
			for (const auto &[ip, h] : now) {
				auto old = hosts_.find(ip);
				if (old == hosts_.end())
					changed(ip, h, "add", origin);
				else if (old->second.down != h.down)
					changed(ip, h, h.down ? "down" : "up", origin);
				else if (old->second.vhosts != h.vhosts || old->second.tag != h.tag)
					changed(ip, h, "update", origin);
			}
			for (const auto &[ip, h] : hosts_) {
				if (now.find(ip) == now.end())
					changed(ip, h, "remove", origin);
			}
			if (!synced_ && dir.ring_synced()) {
				adapter::send_named_event(event_, "director_ring_synced", {},
							  core::LogLevel::debug, "Ring synced");
			}
		}
		primed_ = true;
		synced_ = dir.ring_synced();
		hosts_ = std::move(now);
	}

private:
	struct Host {
		unsigned vhosts;
		bool down;
		std::string tag;
	};

	void changed(const core::IpAddr &ip, const Host &h, const char *action, const char *origin)
	{
		std::string host = ip.to_string();
		adapter::send_named_event(
			event_, "director_host_changed",
			{{"host", host},
			 {"tag", h.tag},
			 {"action", std::string(action)},
			 {"vhosts", uint64_t(h.vhosts)},
			 {"origin", std::string(origin)}},
			core::LogLevel::debug,
			"Host " + host + " changed (" + origin + "): " + action +
				", vhosts=" + std::to_string(h.vhosts));
	}

	struct event *event_; // not owned
	std::map<core::IpAddr, Host> hosts_;
	bool primed_ = false;
	bool synced_ = true;
};

} // namespace director
