#include "proxy/cache_request.h"

#include <variant>

#include "protocol/writer.h"

namespace pgs::proxy {

namespace {

// A NUL-terminated string at the start of `b`; advances `b` past it.
std::optional<std::string_view> take_cstr(protocol::Bytes& b) {
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i] == 0) {
      std::string_view s(reinterpret_cast<const char*>(b.data()), i);
      b = b.subspan(i + 1);
      return s;
    }
  }
  return std::nullopt;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

std::optional<CacheableRequest> scan_cacheable_request(protocol::Bytes buffered, uint32_t max_message_bytes) {
  size_t offset = 0;
  auto next = [&]() -> std::optional<protocol::Frame> {
    if (offset >= buffered.size()) return std::nullopt;
    auto r = protocol::split_frame(buffered.subspan(offset), max_message_bytes);
    const auto* f = std::get_if<protocol::Frame>(&r);
    if (f == nullptr) return std::nullopt;
    offset += f->size;
    return *f;
  };
  auto f = next();
  if (!f) return std::nullopt;
  CacheableRequest out;
  if (f->type == 'Q') {
    protocol::Bytes body = f->body;
    auto sql = take_cstr(body);
    if (!sql || !body.empty()) return std::nullopt;
    out.shape = cache::ReplyShape::simple;
    out.sql = *sql;
    out.bytes = offset;
    return out;
  }
  if (f->type == 'P') {
    protocol::Bytes body = f->body;
    auto name = take_cstr(body);
    auto sql = name ? take_cstr(body) : std::nullopt;
    if (!sql || body.size() < 2) return std::nullopt;
    out.has_parse = true;
    out.parse_name = *name;
    out.sql = *sql;
    out.param_types = body;
    f = next();
    if (!f) return std::nullopt;
  }
  if (f->type != 'B') return std::nullopt;
  protocol::Bytes bind = f->body;
  auto portal = take_cstr(bind);
  auto statement = portal ? take_cstr(bind) : std::nullopt;
  if (!statement || !portal->empty()) return std::nullopt;
  if (out.has_parse && *statement != out.parse_name) return std::nullopt;
  out.bind_statement = *statement;
  out.params_region = bind;
  f = next();
  if (!f) return std::nullopt;
  out.shape = cache::ReplyShape::extended;
  if (f->type == 'D') {
    protocol::Bytes body = f->body;
    if (body.size() != 2 || body[0] != 'P' || body[1] != 0) return std::nullopt;  // the unnamed portal
    out.shape = cache::ReplyShape::extended_described;
    f = next();
    if (!f) return std::nullopt;
  }
  // Execute of the unnamed portal with no row limit: "\0" then int32 0.
  if (f->type != 'E' || f->body.size() != 5 || f->body[0] != 0 || be32(f->body.data() + 1) != 0) return std::nullopt;
  f = next();
  if (!f || f->type != 'S') return std::nullopt;
  out.bytes = offset;
  return out;
}

std::optional<std::vector<uint32_t>> decode_param_types(protocol::Bytes block) {
  if (block.size() < 2) return std::nullopt;
  size_t n = (size_t{block[0]} << 8) | block[1];
  if (block.size() != 2 + 4 * n) return std::nullopt;
  std::vector<uint32_t> types(n);
  for (size_t i = 0; i < n; ++i) types[i] = be32(block.data() + 2 + 4 * i);
  return types;
}

void write_cache_hit_prefix(const CacheableRequest& r, std::string& out) {
  if (r.shape == cache::ReplyShape::simple) return;
  if (r.has_parse) protocol::write_parse_complete(out);
  protocol::write_bind_complete(out);
}

}  // namespace pgs::proxy
