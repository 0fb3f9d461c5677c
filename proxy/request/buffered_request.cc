#include "proxy/request/buffered_request.h"

#include <variant>

namespace pgs::proxy {

namespace {
constexpr size_t kTypicalMessages = 8;  // Parse Bind Describe Execute Sync, with room to spare
}  // namespace

BufferedRequest decode_buffered_request(protocol::Bytes buffered, uint32_t max_message_bytes) {
  BufferedRequest out;
  out.messages.reserve(kTypicalMessages);  // one allocation for the usual request, not one per doubling
  size_t offset = 0;
  while (offset < buffered.size()) {
    auto r = protocol::split_frame(buffered.subspan(offset), max_message_bytes);
    const auto* f = std::get_if<protocol::Frame>(&r);
    if (f == nullptr) break;
    auto m = protocol::frontend::decode_message(*f);
    if (!m.ok()) break;
    offset += f->size;
    out.messages.push_back(std::move(m.value()));
    const char type = out.messages.back().type();
    if (type == 'Q' || type == 'S') {
      out.complete = true;
      break;
    }
  }
  return out;
}

}  // namespace pgs::proxy
