// The core's LogSink carried out with Dovecot events: the director's root
// event (category "director") or a child of it.
#pragma once

#include "core/director.h"

struct event;

namespace director::adapter {

class EventLog : public core::LogSink {
public:
	explicit EventLog(struct event *event) : event_(event) {}
	void log(core::LogLevel level, const std::string &message) override;
	// The line goes out on a child event carrying the fields: `peer`, `user_hash`, `host`.
	void log_with(core::LogLevel level, const std::string &message,
		      const core::LogFields &fields) override;

private:
	struct event *event_; // not owned
};

// The root event of the director process, category "director". Made once;
// released by director_root_event_free() at shutdown.
struct event *director_root_event();
void director_root_event_free();

} // namespace director::adapter
