// The director's connection to Dovecot's stats process, set up so that every
// line the director logs reaches metric { filter = category=director }.
//
// Dovecot 2.3 (up to 2.3.21.1) merges all metric filters into one in the
// stats process without clearing its "named events only" shortcut, so every
// event without a name is dropped there before any metric filter is looked
// at: a metric on category=director counted only named events. Dovecot 2.4.0
// fixed that merge, yet in our tests on 2.4.1 unnamed director events were
// still not counted, while named ones were. An event's name also lasts for one
// send only. So on both versions each director event that is about to be sent
// without a name gets the name director_log, just before the stats client
// sees it.
#pragma once

namespace director::adapter {

// The name an unnamed director event is sent with.
constexpr const char *director_log_event_name = "director_log";

// Flags to add to master_service_init(): the stats client is made later, by
// stats_client_start(), so that our naming hook runs before its own.
unsigned stats_client_master_service_flags();

// After the settings are read and before privileges are dropped: installs
// the naming hook and connects to the stats process.
void stats_client_start();

} // namespace director::adapter
