// The one place that includes lib-dovecot headers from C++. Everything under
// src/adapter/, src/director/ and the plugins includes this instead of the
// Dovecot headers themselves, so that warning suppression and 2.3/2.4
// differences stay here.
#pragma once

#include "director-config.h"
// autoconf's PACKAGE_* names of ours would clash with Dovecot's config.h;
// DIRECTOR_VERSION carries our version instead.
#undef PACKAGE_BUGREPORT
#undef PACKAGE_NAME
#undef PACKAGE_STRING
#undef PACKAGE_TARNAME
#undef PACKAGE_URL
#undef PACKAGE_VERSION

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wpedantic"
extern "C" {
#include "lib.h"
#include "array.h"
#include "str.h"
#include "strescape.h"
#include "ioloop.h"
#include "istream.h"
#include "ostream.h"
#include "net.h"
}
#pragma GCC diagnostic pop
