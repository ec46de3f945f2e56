// Small integer handles and limits shared by the host list, the user table
// and the codecs.
#pragma once

#include <cstdint>

namespace director::core {

// A mail host's slot in its HostList; stable while the host exists.
using HostId = uint16_t;
constexpr HostId invalid_host = 0xffff;

// A tag name's number in its HostList; 0 is the default (empty) tag.
using TagId = uint16_t;
constexpr TagId default_tag = 0;

// Stock vhost counts: hosts start with 100; admin commands accept 0..1000.
constexpr unsigned default_vhost_count = 100;
constexpr unsigned max_vhost_count = 1000;

} // namespace director::core
