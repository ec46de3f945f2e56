// Named events: event_create + event_set_name + fields + e_<level>.
#include "adapter/named-event.h"

#include "adapter/dovecot.h"

extern "C" {
#include "event-filter.h"
}

namespace director::adapter {

namespace {

struct event *create_named_event(struct event *parent, const char *name,
				 std::initializer_list<EventField> fields)
{
	struct event *e = event_create(parent);
	event_set_name(e, name);
	for (const auto &f : fields) {
		if (const auto *s = std::get_if<std::string>(&f.value))
			event_add_str(e, f.key, s->c_str());
		else
			event_add_int(e, f.key, static_cast<intmax_t>(std::get<uint64_t>(f.value)));
	}
	return e;
}

bool filter_matches_nothing(struct event_filter *filter)
{
	if (filter == nullptr)
		return true;
	// A filter without queries matches no event. A director with no
	// log_debug and no metric has such filters, not none.
	string_t *text = str_new(default_pool, 128);
	event_filter_export(filter, text);
	bool empty = str_len(text) == 0;
	str_free(&text);
	return empty;
}

// The global filters as last looked at. They are exported again when one of
// them was replaced, and at least once a second in case one was changed in
// place (event_filter_merge): a metric added that way counts from at most a
// second later.
struct GlobalFilters {
	struct event_filter *debug_log = nullptr, *debug_send = nullptr, *core_log = nullptr;
	time_t checked_at = 0;
	bool match_nothing = false;
};
GlobalFilters global_filters;

} // namespace

bool debug_events_possible(struct event *parent)
{
	GlobalFilters now;
	now.debug_log = event_get_global_debug_log_filter();
	now.debug_send = event_get_global_debug_send_filter();
	now.core_log = event_get_global_core_log_filter();
	GlobalFilters &last = global_filters;
	if (now.debug_log != last.debug_log || now.debug_send != last.debug_send ||
	    now.core_log != last.core_log || ioloop_time != last.checked_at) {
		now.checked_at = ioloop_time;
		now.match_nothing = filter_matches_nothing(now.debug_log) &&
				    filter_matches_nothing(now.debug_send) &&
				    filter_matches_nothing(now.core_log);
		last = now;
	}
	// event_want_debug() of a child asks the parent's forced debug and
	// minimum log level, then these three filters: with filters that
	// match nothing it is false exactly when it is false for the parent.
	return !last.match_nothing || event_want_debug(parent);
}

void send_named_debug_event(struct event *parent, const char *name,
			    std::initializer_list<EventField> fields,
			    const std::function<std::string()> &message)
{
	struct event *e = create_named_event(parent, name, fields);
	if (event_want_debug(e)) {
		std::string text = message();
		e_debug(e, "%s", text.c_str());
	} else {
		event_send_abort(e);
	}
	event_unref(&e);
}

void send_named_event(struct event *parent, const char *name,
		      std::initializer_list<EventField> fields, core::LogLevel level,
		      const std::string &message)
{
	struct event *e = create_named_event(parent, name, fields);
	switch (level) {
	case core::LogLevel::debug:
		e_debug(e, "%s", message.c_str());
		break;
	case core::LogLevel::info:
		e_info(e, "%s", message.c_str());
		break;
	case core::LogLevel::warning:
		e_warning(e, "%s", message.c_str());
		break;
	case core::LogLevel::error:
		e_error(e, "%s", message.c_str());
		break;
	}
	event_unref(&e);
}

} // namespace director::adapter
