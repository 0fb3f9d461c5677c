// libpq's error messages for logs, SHOW output and client errors: they end in newlines and may span
// lines. Shared by every libpq user of the proxy (health monitor, auth_query lookups, the invalidation
// stream).
#pragma once

#include <string>

namespace pgs::monitor {

// `msg` (PQerrorMessage, PQresultErrorMessage; null allowed) on one line: newlines and tabs become one
// space, trailing spaces go, at most 300 bytes; "unknown error" when nothing is left.
std::string libpq_message_line(const char* msg);

}  // namespace pgs::monitor
