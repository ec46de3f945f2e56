// Core log messages -> e_debug/e_info/e_warning/e_error.
#include "adapter/event-log.h"

#include "adapter/dovecot.h"

namespace director::adapter {

void EventLog::log(core::LogLevel level, const std::string &message)
{
	switch (level) {
	case core::LogLevel::debug:
		e_debug(event_, "%s", message.c_str());
		break;
	case core::LogLevel::info:
		e_info(event_, "%s", message.c_str());
		break;
	case core::LogLevel::warning:
		e_warning(event_, "%s", message.c_str());
		break;
	case core::LogLevel::error:
		e_error(event_, "%s", message.c_str());
		break;
	}
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
