#include "proxy/cache_request.h"

#include <variant>

#include "protocol/frontend.h"
#include "protocol/writer.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

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
    auto q = pf::Query::decode(f->body);
    if (!q.ok()) return std::nullopt;
    out.shape = cache::ReplyShape::simple;
    out.sql = q->sql;
    out.bytes = offset;
    return out;
  }
  if (f->type == 'P') {
    auto p = pf::Parse::decode(f->body);
    if (!p.ok()) return std::nullopt;
    out.has_parse = true;
    out.parse_name = p->name;
    out.sql = p->sql;
    out.param_types = std::move(p->param_types);
    f = next();
    if (!f) return std::nullopt;
  }
  if (f->type != 'B') return std::nullopt;
  auto b = pf::Bind::decode(f->body);
  if (!b.ok() || !b->portal.empty()) return std::nullopt;
  if (out.has_parse && b->statement != out.parse_name) return std::nullopt;
  out.bind_statement = b->statement;
  out.params_region = b->params_region;
  out.result_formats = std::move(b->result_formats);
  f = next();
  if (!f) return std::nullopt;
  out.shape = cache::ReplyShape::extended;
  if (f->type == 'D') {
    auto d = pf::Describe::decode(f->body);
    if (!d.ok() || d->kind != 'P' || !d->name.empty()) return std::nullopt;
    out.shape = cache::ReplyShape::extended_described;
    f = next();
    if (!f) return std::nullopt;
  }
  if (f->type != 'E') return std::nullopt;
  auto e = pf::Execute::decode(f->body);
  if (!e.ok() || !e->portal.empty() || e->max_rows != 0) return std::nullopt;
  f = next();
  if (!f || f->type != 'S') return std::nullopt;
  out.bytes = offset;
  return out;
}

void write_cache_hit_prefix(const CacheableRequest& r, std::string& out) {
  if (r.shape == cache::ReplyShape::simple) return;
  if (r.has_parse) protocol::write_parse_complete(out);
  protocol::write_bind_complete(out);
}

}  // namespace pgs::proxy
