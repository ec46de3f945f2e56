// Named events (event_set_name) with fields, for metric { filter = event=... }
// and for debug filters. The adapter's one way to send a named event, so that
// names and field types stay as Dovecot's conventions want them.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <variant>

#include "core/director.h"

struct event;

namespace director::adapter {

// A field of a named event: a string or an unsigned number (durations in
// _usecs, counts).
struct EventField {
	const char *key;
	std::variant<std::string, uint64_t> value;
};

// Sends a child event of `parent` named `name` with `fields`, logged with
// `message` at `level` (debug: counted by metrics, logged only when debug
// logging is on for it). The event is freed before returning.
void send_named_event(struct event *parent, const char *name,
		      std::initializer_list<EventField> fields, core::LogLevel level,
		      const std::string &message);

// False when no debug event made under `parent` can be wanted: the debug log
// filter (log_debug), the core log filter (log_core_filter) and the send
// filter (the metrics the stats process asked for) are each absent or match
// nothing, and debug logging is not forced on `parent`. Events sent once per
// request are then not built at all: callers of send_named_debug_event() ask
// this before building the fields.
bool debug_events_possible(struct event *parent);

// The same at debug level for events sent once per request: `message` is
// called only when the event is wanted (a metric or debug filter matches
// it), so a busy director does not format text nobody reads. The caller has
// checked debug_events_possible(parent) before building `fields`.
void send_named_debug_event(struct event *parent, const char *name,
			    std::initializer_list<EventField> fields,
			    const std::function<std::string()> &message);

} // namespace director::adapter
