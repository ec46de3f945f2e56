// Named events: event_create + event_set_name + fields + e_<level>.
#include "adapter/named-event.h"

#include "adapter/dovecot.h"

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

} // namespace

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
