#include "proxy/monitor/libpq_text.h"

namespace pgs::monitor {

std::string libpq_message_line(const char* msg) {
  constexpr size_t kMaxErrorBytes = 300;
  std::string out;
  for (const char* p = msg ? msg : ""; *p != '\0' && out.size() < kMaxErrorBytes; ++p) {
    if (*p == '\n' || *p == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += *p;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "unknown error" : out;
}

}  // namespace pgs::monitor
