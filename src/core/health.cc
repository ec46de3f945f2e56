// Health checks: probe dialogs, verdicts, the decider rule and the guard (the
// settings values are in health-config.cc). No I/O here.
#include "health.h"

#include <algorithm>
#include <charconv>

namespace director::core {

namespace {

constexpr size_t reason_max_chars = 120;

// Untrusted server text, quoted for a log line: control bytes as '?', cut.
std::string quote_reply(std::string_view line)
{
	std::string out = "'";
	for (char c : line.substr(0, reason_max_chars))
		out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
	if (line.size() > reason_max_chars)
		out += "...";
	return out + "'";
}

bool starts_with(std::string_view s, std::string_view prefix)
{
	return s.substr(0, prefix.size()) == prefix;
}

// An IMAP quoted string.
std::string imap_quote(std::string_view s)
{
	std::string out = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\')
			out += '\\';
		out += c;
	}
	return out + "\"";
}

} // namespace

// ---- one probe's dialog ---------------------------------------------------------------

HealthDialog::HealthDialog(HealthProtocol protocol, const HealthConfig &config)
	: protocol_(protocol), config_(config)
{
}

HealthDialog::Step HealthDialog::failure(std::string what, std::string_view line)
{
	stage_ = Stage::done;
	Step s;
	s.done = true;
	s.reason = std::move(what) + ": " + quote_reply(line);
	return s;
}

HealthDialog::Step HealthDialog::finish_ok(std::string send)
{
	stage_ = Stage::done;
	Step s;
	s.send = std::move(send);
	s.done = true;
	s.ok = true;
	return s;
}

HealthDialog::Step HealthDialog::line(std::string_view line)
{
	Step none;
	const HealthLogin *login = config_.login ? &*config_.login : nullptr;
	switch (protocol_) {
	case HealthProtocol::imap:
	case HealthProtocol::imaps:
		if (stage_ == Stage::banner) {
			if (!starts_with(line, "* OK"))
				return failure("bad IMAP banner", line);
			if (login == nullptr)
				return finish_ok("h1 LOGOUT\r\n");
			stage_ = Stage::login_pass;
			none.send = "h1 LOGIN " + imap_quote(login->user) + " " +
				    imap_quote(login->password) + "\r\n";
			return none;
		}
		if (stage_ == Stage::login_pass) {
			if (starts_with(line, "* "))
				return none; // untagged (capabilities and such)
			if (starts_with(line, "h1 OK"))
				return finish_ok("h2 LOGOUT\r\n");
			return failure("IMAP login failed", line);
		}
		break;
	case HealthProtocol::pop3:
	case HealthProtocol::pop3s:
		if (!starts_with(line, "+OK")) {
			return failure(stage_ == Stage::banner ? "bad POP3 banner"
							    : "POP3 login failed", line);
		}
		if (stage_ == Stage::banner) {
			if (login == nullptr)
				return finish_ok("QUIT\r\n");
			stage_ = Stage::login_user;
			none.send = "USER " + login->user + "\r\n";
			return none;
		}
		if (stage_ == Stage::login_user) {
			stage_ = Stage::login_pass;
			none.send = "PASS " + login->password + "\r\n";
			return none;
		}
		if (stage_ == Stage::login_pass)
			return finish_ok("QUIT\r\n");
		break;
	case HealthProtocol::lmtp: {
		// Multi-line replies ("250-...") end with a "250 ..." line.
		if (line.size() >= 4 && line[3] == '-')
			return none;
		bool good = line.size() >= 3 && line[0] == '2' &&
			    (stage_ != Stage::banner || starts_with(line, "220"));
		if (stage_ == Stage::banner) {
			if (!good)
				return failure("bad LMTP banner", line);
			if (config_.lmtp_rcpt.empty())
				return finish_ok("QUIT\r\n");
			stage_ = Stage::lhlo;
			none.send = "LHLO director-health\r\n";
			return none;
		}
		if (!good) {
			const char *what = stage_ == Stage::lhlo   ? "LMTP LHLO failed"
					   : stage_ == Stage::mail ? "LMTP MAIL FROM failed"
								   : "LMTP RCPT TO failed";
			return failure(what, line);
		}
		if (stage_ == Stage::lhlo) {
			stage_ = Stage::mail;
			none.send = "MAIL FROM:<" + config_.lmtp_from + ">\r\n";
			return none;
		}
		if (stage_ == Stage::mail) {
			stage_ = Stage::rcpt;
			none.send = "RCPT TO:<" + config_.lmtp_rcpt + ">\r\n";
			return none;
		}
		if (stage_ == Stage::rcpt)
			return finish_ok("RSET\r\nQUIT\r\n");
		break;
	}
	}
	return none; // after done: ignore
}

// ---- verdicts -------------------------------------------------------------------------

std::string_view health_state_name(HealthState state)
{
	switch (state) {
	case HealthState::up:
		return "up";
	case HealthState::suspect:
		return "suspect";
	case HealthState::checking_down:
		return "checking-down";
	case HealthState::down:
		return "down";
	case HealthState::recovering:
		return "recovering";
	case HealthState::checking_up:
		return "checking-up";
	}
	return "?";
}

bool health_state_verdict_up(HealthState state)
{
	return state == HealthState::up || state == HealthState::suspect ||
	       state == HealthState::checking_down;
}

// ---- the decider rule -----------------------------------------------------------------

HealthDeciderRule::HealthDeciderRule(std::vector<HealthDecider> deciders,
				     std::optional<HealthDecider> self, int64_t timeout_secs)
	: deciders_(std::move(deciders)), self_(self), timeout_secs_(timeout_secs)
{
	std::sort(deciders_.begin(), deciders_.end());
	self_listed_ = !self_ || std::find(deciders_.begin(), deciders_.end(), *self_) !=
					 deciders_.end();
}

void HealthDeciderRule::sync_seen(const HealthDecider &origin, int64_t now_secs)
{
	if (std::find(deciders_.begin(), deciders_.end(), origin) != deciders_.end())
		last_seen_[origin] = now_secs;
}

void HealthDeciderRule::ring_state(bool handshaked, int64_t now_secs)
{
	if (handshaked && !handshaked_)
		handshaked_since_ = now_secs;
	handshaked_ = handshaked;
}

bool HealthDeciderRule::present(const HealthDecider &d, int64_t now_secs) const
{
	if (self_ && d == *self_)
		return true;
	auto it = last_seen_.find(d);
	return it != last_seen_.end() && now_secs - it->second < timeout_secs_;
}

bool HealthDeciderRule::is_decider(int64_t now_secs) const
{
	if (!self_)
		return true; // standalone
	if (!self_listed_ || !handshaked_ || now_secs - handshaked_since_ < timeout_secs_)
		return false;
	for (const HealthDecider &d : deciders_) {
		if (d == *self_)
			return true;
		if (present(d, now_secs))
			return false;
	}
	return false;
}

std::optional<HealthDecider> HealthDeciderRule::current_decider(int64_t now_secs) const
{
	if (!self_)
		return std::nullopt;
	if (is_decider(now_secs))
		return self_;
	for (const HealthDecider &d : deciders_) {
		if (!(d == *self_) && present(d, now_secs))
			return d;
	}
	return std::nullopt;
}

bool HealthDeciderRule::heartbeat_due(int64_t now_secs)
{
	if (!self_ || !self_listed_ || !handshaked_)
		return false;
	// Three heartbeats per timeout: one lost SYNC does not start a take-over.
	int64_t period = std::max<int64_t>(1, timeout_secs_ / 3);
	if (now_secs - last_heartbeat_ < period)
		return false;
	last_heartbeat_ = now_secs;
	return true;
}

// ---- the checker ----------------------------------------------------------------------

HealthChecker::HealthChecker(HealthConfig config) : config_(std::move(config)) {}

void HealthChecker::observe_hosts(const std::vector<std::pair<IpAddr, bool>> &hosts)
{
	std::map<IpAddr, Host> next;
	all_hosts_ = hosts.size();
	all_down_ = 0;
	for (const auto &[ip, down] : hosts) {
		all_down_ += down ? 1 : 0;
		if (config_.checks.for_host(ip).empty())
			continue;
		auto it = hosts_.find(ip);
		Host h;
		if (it != hosts_.end())
			h = std::move(it->second);
		else
			h.st.ip = ip;
		if (down && !h.st.ring_down) {
			// Down by someone else: ours when our own rounds already
			// failed (the decider acted on what we see too).
			h.st.down_by_health = h.st.state != HealthState::up;
		} else if (!down) {
			h.st.down_by_health = false;
		}
		h.st.ring_down = down;
		if (down)
			h.st.guard_blocked = false;
		next.emplace(ip, std::move(h));
	}
	hosts_ = std::move(next);
}

std::vector<IpAddr> HealthChecker::due(int64_t now_msecs)
{
	std::vector<IpAddr> out;
	for (auto &[ip, h] : hosts_) {
		if (!h.in_flight && h.next_msecs <= now_msecs) {
			h.in_flight = true;
			// A round that started late does not shift the schedule
			// further than the round itself took.
			h.next_msecs = now_msecs + config_.interval_msecs;
			out.push_back(ip);
		}
	}
	return out;
}

std::optional<int64_t> HealthChecker::next_due_msecs() const
{
	std::optional<int64_t> next;
	for (const auto &[ip, h] : hosts_) {
		if (!h.in_flight && (!next || h.next_msecs < *next))
			next = h.next_msecs;
	}
	return next;
}

void HealthChecker::set_state(Host &h, HealthState to, const std::string &reason,
			      std::vector<HealthTransition> &out)
{
	if (h.st.state == to)
		return;
	out.push_back(HealthTransition{h.st.ip, h.st.state, to, reason});
	h.st.state = to;
}

void HealthChecker::probe_done(const IpAddr &ip, bool ok, const std::string &reason,
			       int64_t now_msecs, std::vector<HealthTransition> &out)
{
	auto it = hosts_.find(ip);
	if (it == hosts_.end())
		return; // removed meanwhile
	Host &h = it->second;
	h.in_flight = false;
	h.st.last_check_msecs = now_msecs;
	h.st.last_ok = ok;
	h.st.last_reason = ok ? "ok" : reason;
	const std::string why = ok ? "probe ok" : reason;

	bool verdict_up = health_state_verdict_up(h.st.state);
	bool contrary = ok != verdict_up;
	bool rapid = h.st.state == HealthState::checking_down ||
		     h.st.state == HealthState::checking_up;
	HealthState stable = verdict_up ? HealthState::up : HealthState::down;
	HealthState doubting = verdict_up ? HealthState::suspect : HealthState::recovering;
	HealthState checking = verdict_up ? HealthState::checking_down : HealthState::checking_up;
	HealthState flipped = verdict_up ? HealthState::down : HealthState::up;

	if (!rapid) {
		if (!contrary) {
			h.streak = 0;
			set_state(h, stable, why, out);
		} else if (++h.streak < config_.fail_rounds) {
			set_state(h, doubting, why, out);
		} else {
			h.streak = 0;
			h.polls = 0;
			h.contrary = 0;
			set_state(h, checking, why, out);
		}
	} else {
		h.polls++;
		if (contrary)
			h.contrary++;
		if (h.contrary >= config_.rapid_threshold) {
			set_state(h, flipped, why + " (" + std::to_string(h.contrary) + " of " +
						      std::to_string(h.polls) + " rapid polls)", out);
		} else if (h.polls - h.contrary > config_.rapid_polls - config_.rapid_threshold ||
			   h.polls >= config_.rapid_polls) {
			// The threshold can no longer be reached.
			set_state(h, stable, why + " (only " + std::to_string(h.contrary) + " of " +
						     std::to_string(h.polls) + " rapid polls)", out);
		}
	}
	bool still_rapid = h.st.state == HealthState::checking_down ||
			   h.st.state == HealthState::checking_up;
	if (still_rapid)
		h.next_msecs = now_msecs + config_.rapid_interval_msecs;
	else
		h.next_msecs = std::max(h.next_msecs, now_msecs + (rapid ? config_.interval_msecs
									  : 0));
}

HealthActions HealthChecker::decide(int64_t now_msecs)
{
	HealthActions out;
	unsigned limit = config_.max_down.limit(all_hosts_);
	for (auto &[ip, h] : hosts_) {
		bool verdict_up = health_state_verdict_up(h.st.state);
		if (verdict_up) {
			h.st.guard_blocked = false;
			if (h.st.ring_down && h.st.down_by_health) {
				out.up.push_back(ip);
				// Optimistic: observe_hosts() corrects it if the
				// change did not happen.
				h.st.ring_down = false;
				h.st.down_by_health = false;
				all_down_--;
			}
			continue;
		}
		if (h.st.ring_down)
			continue;
		if (all_down_ < limit) {
			out.down.push_back({ip, h.st.last_reason});
			h.st.ring_down = true;
			h.st.down_by_health = true;
			h.st.guard_blocked = false;
			all_down_++;
			continue;
		}
		if (!h.st.guard_blocked ||
		    now_msecs - h.blocked_logged_msecs >= health_guard_relog_msecs) {
			out.blocked.push_back({ip, h.st.last_reason, all_down_, limit});
			h.blocked_logged_msecs = now_msecs;
		}
		h.st.guard_blocked = true;
	}
	return out;
}

std::vector<HealthHostStatus> HealthChecker::status() const
{
	std::vector<HealthHostStatus> out;
	for (const auto &[ip, h] : hosts_)
		out.push_back(h.st);
	return out;
}

} // namespace director::core
