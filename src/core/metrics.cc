// OpenMetrics text for the director's gauges. Pure formatting: no I/O.
#include "metrics.h"

#include <array>
#include <string_view>

namespace director::core {

namespace {

constexpr std::array<std::string_view, 6> health_states = {
	"up", "suspect", "checking_down", "down", "recovering", "checking_up"};

void family(std::string &out, std::string_view name, std::string_view type,
	    std::string_view help)
{
	out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
	out.append("# HELP ").append(name).append(" ").append(help).append("\n");
}

void host_labels(std::string &out, const MetricsHost &h)
{
	out.append("host=\"").append(openmetrics_escape_label(h.host));
	out.append("\",tag=\"").append(openmetrics_escape_label(h.tag)).append("\"");
}

template <typename Value>
void host_sample(std::string &out, std::string_view name, const MetricsHost &h, Value v)
{
	out.append(name).append("{");
	host_labels(out, h);
	out.append("} ").append(std::to_string(v)).append("\n");
}

void sample(std::string &out, std::string_view name, size_t v)
{
	out.append(name).append(" ").append(std::to_string(v)).append("\n");
}

} // namespace

std::string openmetrics_escape_label(std::string_view value)
{
	std::string out;
	out.reserve(value.size());
	for (char c : value) {
		switch (c) {
		case '\\':
			out += "\\\\";
			break;
		case '"':
			out += "\\\"";
			break;
		case '\n':
			out += "\\n";
			break;
		default:
			out += c;
		}
	}
	return out;
}

std::string format_openmetrics(const MetricsSnapshot &s)
{
	std::string out;
	out.reserve(512 + s.hosts.size() * 400);

	family(out, "dovecot_director_users", "gauge", "Users assigned to the mail host.");
	for (const auto &h : s.hosts)
		host_sample(out, "dovecot_director_users", h, h.users);
	family(out, "dovecot_director_host_vhosts", "gauge", "Vhost count of the mail host.");
	for (const auto &h : s.hosts)
		host_sample(out, "dovecot_director_host_vhosts", h, h.vhosts);
	family(out, "dovecot_director_host_up", "gauge",
	       "1 if the mail host is up, 0 if it is down.");
	for (const auto &h : s.hosts)
		host_sample(out, "dovecot_director_host_up", h, h.up ? 1 : 0);

	family(out, "dovecot_director_ring_synced", "gauge",
	       "1 if the director ring is synced, 0 while a change is in flight.");
	sample(out, "dovecot_director_ring_synced", s.ring_synced ? 1 : 0);
	family(out, "dovecot_director_ring_connections", "gauge",
	       "Connections to other directors, by direction.");
	const std::pair<std::string_view, size_t> conns[] = {
		{"left", s.ring_left}, {"right", s.ring_right}, {"in", s.ring_in},
		{"out", s.ring_out}};
	for (const auto &[direction, count] : conns) {
		out.append("dovecot_director_ring_connections{direction=\"")
			.append(direction)
			.append("\"} ")
			.append(std::to_string(count))
			.append("\n");
	}

	family(out, "dovecot_director_requests_delayed", "gauge",
	       "Login and userdb lookups waiting for an answer.");
	sample(out, "dovecot_director_requests_delayed", s.requests_delayed);
	family(out, "dovecot_director_moves_in_progress", "gauge",
	       "User moves whose old sessions are still being killed.");
	sample(out, "dovecot_director_moves_in_progress", s.moves_in_progress);
	family(out, "dovecot_director_kicks_in_progress", "gauge",
	       "Admin kicks running in the login processes.");
	sample(out, "dovecot_director_kicks_in_progress", s.kicks_in_progress);

	if (s.health_checks) {
		family(out, "dovecot_director_health_decider", "gauge",
		       "1 if this director acts on health verdicts.");
		sample(out, "dovecot_director_health_decider", s.health_decider ? 1 : 0);
		// A stateset: one sample per state, 1 for the host's current one.
		family(out, "dovecot_director_host_health", "stateset",
		       "Health check state of the mail host.");
		for (const auto &h : s.hosts) {
			if (!h.health)
				continue;
			for (std::string_view state : health_states) {
				out.append("dovecot_director_host_health{");
				host_labels(out, h);
				out.append(",dovecot_director_host_health=\"")
					.append(state)
					.append("\"} ")
					.append(h.health->state == state ? "1" : "0")
					.append("\n");
			}
		}
		family(out, "dovecot_director_host_health_check_ok", "gauge",
		       "1 if the last health check round of the mail host passed.");
		for (const auto &h : s.hosts) {
			if (h.health) {
				host_sample(out, "dovecot_director_host_health_check_ok", h,
					    h.health->last_check_ok ? 1 : 0);
			}
		}
		family(out, "dovecot_director_host_down_by_health", "gauge",
		       "1 if the health checks took the mail host down.");
		for (const auto &h : s.hosts) {
			if (h.health) {
				host_sample(out, "dovecot_director_host_down_by_health", h,
					    h.health->down_by_health ? 1 : 0);
			}
		}
	}
	out.append("# EOF\n");
	return out;
}

} // namespace director::core
