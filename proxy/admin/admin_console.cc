// Placeholder until the console lands: answers every command with a clear error.
#include "proxy/admin/admin_console.h"

#include "protocol/writer.h"

namespace pgs::proxy::admin {

std::string execute(std::string_view, const AdminHooks&) {
  std::string out;
  protocol::write_error(out, {.sqlstate = "0A000", .message = "pgsidecar: the admin console is not built yet"});
  return out;
}

}  // namespace pgs::proxy::admin
