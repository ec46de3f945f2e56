// Small helpers the core Check suites share.
#ifndef DIRECTOR_CHECK_FIXTURES_H
#define DIRECTOR_CHECK_FIXTURES_H

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "director-types.h"
#include "ip-addr.h"
#include "state-file.h"

// A log sink that keeps every line and its fields, for assertions.
struct RecordingLog : director::core::LogSink {
	std::vector<std::string> lines;
	std::vector<director::core::LogFields> fields; // one per line
	void log(director::core::LogLevel, const std::string &m) override
	{
		lines.push_back(m);
		fields.emplace_back();
	}
	void log_with(director::core::LogLevel, const std::string &m,
		      const director::core::LogFields &f) override
	{
		lines.push_back(m);
		fields.push_back(f);
	}
};

// An address from a literal the test knows is valid.
static inline director::core::IpAddr ip(const char *s)
{
	return *director::core::IpAddr::parse(s);
}

// The fingerprint of a two-backend configuration, for state file round trips.
static inline std::array<uint8_t, 16> state_fingerprint()
{
	director::core::StateIdentity id;
	id.mail_servers = {{ip("10.0.0.1"), ""}, {ip("10.0.0.2"), ""}};
	id.username_hash = "%Lu";
	return id.fingerprint();
}

#endif
