// The director settings read through lib-dovecot (2.3 or 2.4),
// copied into plain C++ values, and validated.
#pragma once

#include <cstdint>
#include <string>

namespace director::adapter {

struct DirectorSettings {
	std::string master_user_separator;
	std::string director_servers;
	std::string director_mail_servers;
	std::string director_username_hash;
	std::string director_flush_socket;
	unsigned ping_idle_timeout_secs = 30;
	unsigned ping_max_timeout_secs = 60;
	unsigned user_expire_secs = 900;
	unsigned user_kick_delay_secs = 2;
	unsigned max_parallel_moves = 100;
	unsigned max_parallel_kicks = 100;
	uint64_t output_buffer_size = 10 * 1024 * 1024;
	bool verbose_proctitle = false;
	std::string state_dir; // Dovecot's state_dir

	// director_state_* (the state file); file empty = no state file.
	std::string state_file = "director.state";
	unsigned state_interval_secs = 30;

	// director_health_* (issue #7); checks empty = health checks off.
	std::string health_checks;
	unsigned health_interval_msecs = 10000;
	unsigned health_timeout_msecs = 5000;
	unsigned health_fail_rounds = 3;
	unsigned health_rapid_interval_msecs = 1000;
	unsigned health_rapid_polls = 10;
	unsigned health_rapid_threshold = 7;
	std::string health_max_down = "30%";
	std::string health_deciders;
	unsigned health_decider_timeout_secs = 30;
	std::string health_login_file;
	std::string health_lmtp_from;
	std::string health_lmtp_rcpt;
};

// Reads the configuration from the config process (i_fatal() on failure).
void director_settings_read();

// The settings after director_settings_read(); i_fatal()s naming the
// setting when a value is out of range.
DirectorSettings director_settings_get();

} // namespace director::adapter
