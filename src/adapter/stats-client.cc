// Stats client set-up with director_log naming (see stats-client.h).
#include "adapter/stats-client.h"

#include <cstring>

#include "adapter/dovecot.h"

extern "C" {
#include "master-service.h"
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
extern "C" {
// event_register_callback() is only declared here; the callback runs for
// every event sent, in the order callbacks were registered.
#include "lib-event-private.h"
}
#pragma GCC diagnostic pop

namespace director::adapter {

namespace {

bool has_director_category(struct event *event)
{
	for (struct event *e = event; e != nullptr; e = event_get_parent(e)) {
		unsigned count = 0;
		struct event_category *const *cats = event_get_categories(e, &count);
		for (unsigned i = 0; i < count; i++) {
			if (std::strcmp(cats[i]->name, "director") == 0)
				return true;
		}
	}
	return false;
}

bool name_director_event(struct event *event, enum event_callback_type type,
			 struct failure_context *, const char *, va_list)
{
	if (type == EVENT_CALLBACK_TYPE_SEND && event->sending_name == nullptr &&
	    has_director_category(event))
		event_set_name(event, director_log_event_name);
	return true;
}

} // namespace

unsigned stats_client_master_service_flags()
{
	return MASTER_SERVICE_FLAG_DONT_SEND_STATS;
}

void stats_client_start()
{
	event_register_callback(name_director_event);
	master_service_init_stats_client(master_service, false);
}

} // namespace director::adapter
