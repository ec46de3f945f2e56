// The core's RandomSource from Dovecot's random generator (ring nonces).
#pragma once

#include "core/ring-auth.h"

namespace director::adapter {

// Fills with random_fill() (getrandom() or /dev/urandom; it i_fatal()s if the
// system has no randomness, which Dovecot does at startup anyway).
class DovecotRandom final : public core::RandomSource {
public:
	void fill(uint8_t *data, size_t size) override;
};

} // namespace director::adapter
