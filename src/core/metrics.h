// The director's gauges as OpenMetrics text: a snapshot of current values in,
// the exposition (ending in "# EOF") out. Counters are not here: they come
// from Dovecot's stats process (events + metric {} blocks). No I/O here.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace director::core {

// The MIME type of what format_openmetrics() returns.
constexpr std::string_view openmetrics_content_type =
	"application/openmetrics-text; version=1.0.0; charset=utf-8";

// The health checker's view of one mail host (only when checks are on).
struct MetricsHealth {
	std::string state; // a health_state_name(): up, suspect, ..., checking_up
	bool last_check_ok = true;
	bool down_by_health = false;
};

struct MetricsHost {
	std::string host; // the mail host's IP as text
	std::string tag;
	size_t users = 0;
	unsigned vhosts = 0;
	bool up = true;
	std::optional<MetricsHealth> health;
};

// Every gauge's value at one moment. Ring connections are counted by
// direction: left, right, in (incoming, not yet left) and out (outgoing, not
// yet right); a standalone director has none.
struct MetricsSnapshot {
	std::vector<MetricsHost> hosts;
	bool ring_synced = true;
	size_t ring_left = 0, ring_right = 0, ring_in = 0, ring_out = 0;
	size_t requests_delayed = 0;
	size_t moves_in_progress = 0;
	size_t kicks_in_progress = 0;
	bool health_checks = false; // health gauges are written only when on
	bool health_decider = false;
};

// The OpenMetrics text exposition of `s`: one family per gauge, each with
// TYPE and HELP lines, label values escaped, and the final
// "# EOF" line. Hosts are written in the order given.
std::string format_openmetrics(const MetricsSnapshot &s);

// A label value escaped for the exposition: backslash, double quote and
// newline get a backslash.
std::string openmetrics_escape_label(std::string_view value);

} // namespace director::core
