// The director settings read through lib-dovecot (2.3 or 2.4),
// copied into plain C++ values, and validated.
#pragma once

#include <cstdint>
#include <string>

#include "core/settings-table.h"

namespace director::adapter {

// The defaults are the settings' (core/settings-table.h); the values read
// replace them all.
struct DirectorSettings {
	std::string master_user_separator{core::setting_default::master_user_separator};
	std::string director_servers{core::setting_default::director_servers};
	std::string director_mail_servers{core::setting_default::director_mail_servers};
	std::string director_username_hash{core::setting_default::director_username_hash};
	std::string director_flush_socket{core::setting_default::director_flush_socket};
	unsigned ping_idle_timeout_secs = core::setting_default::director_ping_idle_timeout;
	unsigned ping_max_timeout_secs = core::setting_default::director_ping_max_timeout;
	unsigned user_expire_secs = core::setting_default::director_user_expire;
	unsigned user_kick_delay_secs = core::setting_default::director_user_kick_delay;
	unsigned max_parallel_moves = core::setting_default::director_max_parallel_moves;
	unsigned max_parallel_kicks = core::setting_default::director_max_parallel_kicks;
	uint64_t output_buffer_size = core::setting_default::director_output_buffer_size;
	bool verbose_proctitle = false;
	// The authenticated ring: a root-only file holding the shared
	// secret; empty = off (read and checked by the director at startup).
	std::string ring_secret_file{core::setting_default::director_ring_secret_file};
	std::string state_dir; // Dovecot's state_dir

	// director_state_* (the state file); file empty = no state file.
	std::string state_file{core::setting_default::director_state_file};
	unsigned state_interval_secs = core::setting_default::director_state_interval;

	// director_health_*; checks empty = health checks off.
	std::string health_checks{core::setting_default::director_health_checks};
	unsigned health_interval_msecs = core::setting_default::director_health_interval;
	unsigned health_timeout_msecs = core::setting_default::director_health_timeout;
	unsigned health_fail_rounds = core::setting_default::director_health_fail_rounds;
	unsigned health_rapid_interval_msecs =
		core::setting_default::director_health_rapid_interval;
	unsigned health_rapid_polls = core::setting_default::director_health_rapid_polls;
	unsigned health_rapid_threshold = core::setting_default::director_health_rapid_threshold;
	std::string health_max_down{core::setting_default::director_health_max_down};
	std::string health_deciders{core::setting_default::director_health_deciders};
	unsigned health_decider_timeout_secs =
		core::setting_default::director_health_decider_timeout;
	std::string health_login_file{core::setting_default::director_health_login_file};
	std::string health_lmtp_from{core::setting_default::director_health_lmtp_from};
	std::string health_lmtp_rcpt{core::setting_default::director_health_lmtp_rcpt};
};

// Reads the configuration from the config process (i_fatal() on failure).
void director_settings_read();

// The settings after director_settings_read(); i_fatal()s naming the
// setting when a value is out of range.
DirectorSettings director_settings_get();

} // namespace director::adapter
