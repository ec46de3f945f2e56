// Built-in backend health checks (issue #7): the settings values, the probe
// dialogs (what to send, what a good answer is), the probe schedule, the
// verdict state machine (failed rounds, then a rapid re-check phase), the rule
// that picks the one director of the ring that acts on verdicts, the
// mass-failure guard and the "only undo our own downs" rule. No I/O and no
// clock here: the adapter connects, passes lines, results and `now`, and
// carries out the actions through the Director's normal host paths.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ip-addr.h"
#include "result.h"
#include "settings-table.h"

namespace director::core {

// ---- settings values ------------------------------------------------------------------

enum class HealthProtocol { imap, pop3, lmtp, imaps, pop3s };
std::string_view health_protocol_name(HealthProtocol protocol);
// imaps and pop3s talk TLS before the dialog.
bool health_protocol_tls(HealthProtocol protocol);

struct HealthProbe {
	HealthProtocol protocol;
	uint16_t port;
	friend bool operator==(const HealthProbe &a, const HealthProbe &b)
	{
		return a.protocol == b.protocol && a.port == b.port;
	}
};

// director_health_checks: space-separated items. "<proto>:<port>[,<proto>:<port>...]"
// applies to every mail host without an item of its own; "<ip>=<proto>:<port>[,...]"
// to that host only. proto is imap, pop3, lmtp, imaps or pop3s. Empty = no checks.
struct HealthChecks {
	std::vector<HealthProbe> defaults;
	std::map<IpAddr, std::vector<HealthProbe>> per_host;
	// The probes of a host (its own, else the defaults; may be empty).
	const std::vector<HealthProbe> &for_host(const IpAddr &ip) const;
	bool empty() const { return defaults.empty() && per_host.empty(); }
};
Result<HealthChecks> parse_health_checks(std::string_view value);

// director_health_max_down: "<n>" hosts, or "<p>%" of the mail hosts (rounded
// down, but at least 1 when p > 0). "0" never takes a host down.
struct HealthMaxDown {
	unsigned value = 1;
	bool percent = false;
	unsigned limit(size_t host_count) const;
	std::string to_string() const;
};
Result<HealthMaxDown> parse_health_max_down(std::string_view value);

// A director allowed to act on verdicts (director_health_deciders).
struct HealthDecider {
	IpAddr ip;
	uint16_t port = 0;
	friend bool operator<(const HealthDecider &a, const HealthDecider &b)
	{
		return a.ip != b.ip ? a.ip < b.ip : a.port < b.port;
	}
	friend bool operator==(const HealthDecider &a, const HealthDecider &b)
	{
		return a.ip == b.ip && a.port == b.port;
	}
	std::string name() const;
};
// director_health_deciders: space-separated "ip", "ip:port", "[ipv6]:port";
// numeric only (every director must read the same list). Returned sorted.
Result<std::vector<HealthDecider>> parse_health_deciders(std::string_view value,
							 uint16_t default_port);

// The test account of director_health_login_file: "user=<name>" and
// "password=<secret>" lines (blank lines and '#' comments ignored). CR, LF
// and NUL cannot occur in either.
struct HealthLogin {
	std::string user;
	std::string password;
};
Result<HealthLogin> parse_health_login(std::string_view file_contents);

// The defaults are the settings' (settings-table.h).
struct HealthConfig {
	HealthChecks checks;
	// between rounds while the verdict holds
	int64_t interval_msecs = setting_default::director_health_interval;
	// one probe, connect to last answer
	int64_t timeout_msecs = setting_default::director_health_timeout;
	// contrary rounds before the rapid phase
	unsigned fail_rounds = setting_default::director_health_fail_rounds;
	// between polls of the rapid phase
	int64_t rapid_interval_msecs = setting_default::director_health_rapid_interval;
	// polls of the rapid phase
	unsigned rapid_polls = setting_default::director_health_rapid_polls;
	// contrary polls that change the verdict
	unsigned rapid_threshold = setting_default::director_health_rapid_threshold;
	// setting_default::director_health_max_down parsed (check-settings-table
	// compares them)
	HealthMaxDown max_down{30, true};
	// silence after which a decider is gone
	int64_t decider_timeout_secs = setting_default::director_health_decider_timeout;
	std::vector<HealthDecider> deciders;   // sorted
	std::optional<HealthLogin> login;
	std::string lmtp_from;                 // MAIL FROM:<...>, empty = null sender
	std::string lmtp_rcpt;                 // RCPT TO:<...>, empty = banner only
};
// Cross-field checks ("director_health_rapid_threshold=12 exceeds ..."); the
// message names the setting. Status() when the config is usable.
Status validate_health_config(const HealthConfig &config);

// ---- one probe's dialog ---------------------------------------------------------------

// The protocol exchange of one probe after the TCP (and TLS) connection is up.
// Feed each received line (without CRLF); send what the steps return. A probe
// is good when the dialog ends with ok; any other end is a failure with a
// reason for the operator (the server's text quoted and truncated).
class HealthDialog {
public:
	struct Step {
		std::string send;    // lines to write (each ends in CRLF); may be empty
		bool done = false;   // the dialog is over: close after sending
		bool ok = false;     // with done: the verdict
		std::string reason;  // with done && !ok: why
	};
	HealthDialog(HealthProtocol protocol, const HealthConfig &config);
	Step line(std::string_view line);

private:
	enum class Stage { banner, login_user, login_pass, lhlo, mail, rcpt, done };
	Step failure(std::string what, std::string_view line);
	Step finish_ok(std::string send);
	HealthProtocol protocol_;
	const HealthConfig &config_;
	Stage stage_ = Stage::banner;
};

// ---- verdicts, schedule, decider, guard -----------------------------------------------

// The per-host state machine. A host starts "up". While the verdict holds, a
// round runs every interval; fail_rounds contrary rounds in a row start the
// rapid phase (rapid_polls polls every rapid_interval); rapid_threshold
// contrary polls change the verdict, otherwise it stays. The same rule applies
// in both directions, so a host that alternates never changes verdict.
enum class HealthState { up, suspect, checking_down, down, recovering, checking_up };
std::string_view health_state_name(HealthState state);
bool health_state_verdict_up(HealthState state);

struct HealthTransition {
	IpAddr ip;
	HealthState from;
	HealthState to;
	std::string reason;
};

struct HealthHostStatus {
	IpAddr ip;
	HealthState state = HealthState::up;
	int64_t last_check_msecs = 0; // when the last round ended; 0 = never
	bool last_ok = true;
	std::string last_reason;      // the last round's failure, or "ok"
	bool ring_down = false;       // the host's down flag in the ring
	bool down_by_health = false;  // the health checker took it down
	bool guard_blocked = false;   // verdict down, but the guard holds it up
};

// What the decider must do now, through the Director's host paths.
struct HealthActions {
	struct Down {
		IpAddr ip;
		std::string reason;
	};
	struct Blocked {
		IpAddr ip;
		std::string reason;
		unsigned down_hosts;
		unsigned limit;
	};
	std::vector<Down> down;       // set down and flush, in one step
	std::vector<IpAddr> up;       // set up
	std::vector<Blocked> blocked; // left up by the guard: log loudly
};

// Which director acts on verdicts. Every director may probe; only the lowest
// (ip, port) of director_health_deciders that is present decides. Another
// decider is present while its SYNC heartbeats (stock ring SYNC lines it
// originates) reached us within decider_timeout; we ourselves may decide only
// once we have been in the ring (handshaked) for decider_timeout, so that a
// restarted lower decider is seen by the others before it acts. A standalone
// director (no ring) always decides. Stock directors are never listed, so in
// a mixed ring they never decide.
class HealthDeciderRule {
public:
	// self: our ring address; nullopt for a standalone director.
	HealthDeciderRule(std::vector<HealthDecider> deciders, std::optional<HealthDecider> self,
			  int64_t timeout_secs);
	bool self_listed() const { return self_listed_; }
	// A SYNC originated by `origin` passed us.
	void sync_seen(const HealthDecider &origin, int64_t now_secs);
	// The ring's handshake state, every tick.
	void ring_state(bool handshaked, int64_t now_secs);
	bool is_decider(int64_t now_secs) const;
	// The director we believe decides now (for the status listing).
	std::optional<HealthDecider> current_decider(int64_t now_secs) const;
	// We should originate a heartbeat SYNC now (and note that we did).
	bool heartbeat_due(int64_t now_secs);

private:
	bool present(const HealthDecider &d, int64_t now_secs) const;
	std::vector<HealthDecider> deciders_;
	std::optional<HealthDecider> self_;
	bool self_listed_ = false;
	int64_t timeout_secs_;
	std::map<HealthDecider, int64_t> last_seen_;
	bool handshaked_ = false;
	int64_t handshaked_since_ = 0;
	int64_t last_heartbeat_ = 0;
};

class HealthChecker {
public:
	explicit HealthChecker(HealthConfig config);
	const HealthConfig &config() const { return config_; }

	// The ring's mail hosts and their down flags, every tick and after
	// changes. New hosts start up; gone hosts are forgotten. A host that
	// goes down counts as ours when we asked for it, or when our own rounds
	// had already failed for it (the decider acted on the same evidence); an
	// operator's down of a host we see healthy is not ours. A host that goes
	// up is no longer ours. The guard counts all these hosts, checked or not.
	void observe_hosts(const std::vector<std::pair<IpAddr, bool>> &hosts);

	// Hosts whose round is due; they are in flight until probe_done().
	std::vector<IpAddr> due(int64_t now_msecs);
	// When the next round is due (nullopt: nothing to probe).
	std::optional<int64_t> next_due_msecs() const;
	// A round ended; appends state changes to `out`.
	void probe_done(const IpAddr &ip, bool ok, const std::string &reason, int64_t now_msecs,
			std::vector<HealthTransition> &out);

	// The decider's actions for the current verdicts. Only the decider
	// calls this; the hosts it returns are marked as ours at once.
	HealthActions decide(int64_t now_msecs);

	std::vector<HealthHostStatus> status() const;

private:
	struct Host {
		HealthHostStatus st;
		bool in_flight = false;
		int64_t next_msecs = 0;
		unsigned streak = 0;        // contrary rounds in a row
		unsigned polls = 0;         // rapid phase
		unsigned contrary = 0;      // rapid phase
		int64_t blocked_logged_msecs = 0;
	};
	void set_state(Host &h, HealthState to, const std::string &reason,
		       std::vector<HealthTransition> &out);
	HealthConfig config_;
	std::map<IpAddr, Host> hosts_; // the checked hosts
	size_t all_hosts_ = 0;         // every mail host, checked or not
	unsigned all_down_ = 0;        // of those, down
};

// Repeat the guard's error while it holds a host up.
constexpr int64_t health_guard_relog_msecs = 60'000;

} // namespace director::core
