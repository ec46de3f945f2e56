// Core log messages -> e_debug/e_info/e_warning/e_error.
#include "adapter/event-log.h"

#include "adapter/dovecot.h"

namespace director::adapter {

namespace {

void log_on(struct event *event, core::LogLevel level, const std::string &message)
{
	switch (level) {
	case core::LogLevel::debug:
		e_debug(event, "%s", message.c_str());
		break;
	case core::LogLevel::info:
		e_info(event, "%s", message.c_str());
		break;
	case core::LogLevel::warning:
		e_warning(event, "%s", message.c_str());
		break;
	case core::LogLevel::error:
		e_error(event, "%s", message.c_str());
		break;
	}
}

} // namespace

void EventLog::log(core::LogLevel level, const std::string &message)
{
	log_on(event_, level, message);
}

void EventLog::log_with(core::LogLevel level, const std::string &message,
			const core::LogFields &fields)
{
	struct event *e = event_create(event_);
	if (!fields.peer.empty())
		event_add_str(e, "peer", fields.peer.c_str());
	if (fields.user_hash)
		event_add_int(e, "user_hash", *fields.user_hash);
	if (fields.host)
		event_add_str(e, "host", fields.host->to_string().c_str());
	log_on(e, level, message);
	event_unref(&e);
}

namespace {
struct event *root = nullptr;
}

struct event *director_root_event()
{
	static struct event_category category = {
		.parent = nullptr,
		.name = "director",
		.internal = nullptr,
	};
	if (root == nullptr) {
		root = event_create(nullptr);
		event_add_category(root, &category);
	}
	return root;
}

void director_root_event_free()
{
	if (root != nullptr)
		event_unref(&root);
}

} // namespace director::adapter
