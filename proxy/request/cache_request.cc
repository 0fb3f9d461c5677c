#include "proxy/request/cache_request.h"

#include <variant>

#include "protocol/frontend.h"
#include "protocol/writer.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

std::optional<CacheableRequest> scan_cacheable_request(const BufferedRequest& request) {
  size_t next_index = 0, bytes = 0;
  auto next = [&]() -> const pf::Message* {
    if (next_index >= request.messages.size()) return nullptr;
    const pf::Message* m = &request.messages[next_index++];
    bytes += m->frame.size;
    return m;
  };
  const pf::Message* m = next();
  if (m == nullptr) return std::nullopt;
  CacheableRequest out;
  if (const auto* q = m->as<pf::Query>()) {
    out.shape = cache::ReplyShape::simple;
    out.sql = q->sql;
    out.bytes = bytes;
    return out;
  }
  if (const auto* p = m->as<pf::Parse>()) {
    out.parse = *p;
    out.sql = p->sql;
    if ((m = next()) == nullptr) return std::nullopt;
  }
  const auto* bind = m->as<pf::BindView>();
  if (bind == nullptr || !bind->portal.empty()) return std::nullopt;
  if (out.parse && bind->statement != out.parse->name) return std::nullopt;
  out.bind = *bind;
  if ((m = next()) == nullptr) return std::nullopt;
  out.shape = cache::ReplyShape::extended;
  if (const auto* d = m->as<pf::Describe>()) {
    if (d->kind != 'P' || !d->name.empty()) return std::nullopt;  // the unnamed portal
    out.shape = cache::ReplyShape::extended_described;
    if ((m = next()) == nullptr) return std::nullopt;
  }
  // Execute of the unnamed portal with no row limit.
  const auto* e = m->as<pf::Execute>();
  if (e == nullptr || !e->portal.empty() || e->max_rows != 0) return std::nullopt;
  if ((m = next()) == nullptr || m->type() != 'S') return std::nullopt;
  out.bytes = bytes;
  return out;
}

namespace {

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

// Format codes as Bind gives them (none, one for all, or one each): "" when all are text, else one
// code per item (`items` known) or the codes as given (result columns: their count is not known here).
std::string canonical_formats(const pf::FormatCodes& codes, size_t items, bool expand) {
  bool all_text = true;
  for (size_t i = 0; i < codes.count; ++i) all_text = all_text && codes.at(i) == 0;
  if (all_text) return {};
  std::string out;
  size_t n = expand ? items : codes.count;
  put16(out, static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) put16(out, static_cast<uint16_t>(codes.for_value(i)));
  return out;
}

}  // namespace

std::optional<KeyedStatement> keyed_statement(const CacheableRequest& r, std::string_view sql,
                                              const std::vector<uint32_t>* named_types) {
  KeyedStatement out;
  out.statement.assign(sql);
  if (r.shape == cache::ReplyShape::simple) return out;
  // The declared types: the named statement's, or the Parse's (read in place), or none.
  size_t count = named_types != nullptr ? named_types->size() : r.parse ? r.parse->param_count() : 0;
  auto type = [&](size_t i) { return named_types != nullptr ? (*named_types)[i] : r.parse->param_type(i); };
  size_t declared = count;
  while (declared > 0 && type(declared - 1) == 0) --declared;
  if (declared > 0) {
    out.statement.push_back('\0');
    put16(out.statement, static_cast<uint16_t>(declared));
    for (size_t i = 0; i < declared; ++i) {
      for (int shift = 24; shift >= 0; shift -= 8) out.statement.push_back(static_cast<char>((type(i) >> shift) & 0xff));
    }
  }
  auto args = pf::BindArgs::decode(r.bind.rest);
  if (!args) return std::nullopt;
  const size_t nparams = args->values.count;
  std::string results = canonical_formats(args->result_formats, 0, false);
  out.entry_shape = r.shape;
  if (nparams == 0 && declared == 0 && results.empty() && r.shape == cache::ReplyShape::extended_described) {
    out.entry_shape = cache::ReplyShape::simple;  // the bytes a simple Query of this text gets back
    return out;
  }
  std::string formats = canonical_formats(args->param_formats, nparams, true);
  put16(out.params, static_cast<uint16_t>(formats.size()));
  out.params.append(formats);
  out.params.append(protocol::as_string_view(args->values.block));  // the count and every value, as sent
  out.params.append(results);
  return out;
}

void write_cache_hit_prefix(const CacheableRequest& r, std::string& out) {
  if (r.shape == cache::ReplyShape::simple) return;
  if (r.parse) protocol::write_parse_complete(out);
  protocol::write_bind_complete(out);
}

}  // namespace pgs::proxy
