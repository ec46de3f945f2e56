// DovecotRandom: random_fill() behind the core's RandomSource.
#include "adapter/random.h"

#include "adapter/dovecot.h"

extern "C" {
#include "randgen.h"
}

namespace director::adapter {

void DovecotRandom::fill(uint8_t *data, size_t size)
{
	random_fill(data, size);
}

} // namespace director::adapter
