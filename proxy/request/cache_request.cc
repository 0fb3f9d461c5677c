#include "proxy/request/cache_request.h"

#include <variant>

#include "protocol/frontend.h"
#include "protocol/writer.h"

namespace pgs::proxy {

namespace pf = protocol::frontend;

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

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

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((uint16_t{p[0]} << 8) | p[1]); }

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

// Format codes as Bind gives them (none, one for all, or one each): "" when all are text, else one
// code per item (`items` known) or the codes as given (result columns: their count is not known here).
std::string canonical_formats(const std::vector<uint16_t>& codes, size_t items, bool expand) {
  bool all_text = true;
  for (uint16_t c : codes) all_text = all_text && c == 0;
  if (all_text) return {};
  std::string out;
  size_t n = expand ? items : codes.size();
  put16(out, static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) put16(out, codes.size() == 1 ? codes[0] : codes[i]);
  return out;
}

// Reads `count` int16 codes after an int16 count from `b`; advances `b`.
std::optional<std::vector<uint16_t>> take_codes(protocol::Bytes& b) {
  if (b.size() < 2) return std::nullopt;
  size_t n = be16(b.data());
  if (b.size() < 2 + 2 * n) return std::nullopt;
  std::vector<uint16_t> codes(n);
  for (size_t i = 0; i < n; ++i) codes[i] = be16(b.data() + 2 + 2 * i);
  b = b.subspan(2 + 2 * n);
  return codes;
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
  protocol::Bytes b = r.bind.rest;
  auto param_formats = take_codes(b);
  if (!param_formats || b.size() < 2) return std::nullopt;
  size_t nparams = be16(b.data());
  if (param_formats->size() > 1 && param_formats->size() != nparams) return std::nullopt;
  protocol::Bytes values = b;  // the count, then each value (int32 length, -1 = NULL, then its bytes)
  b = b.subspan(2);
  for (size_t i = 0; i < nparams; ++i) {
    if (b.size() < 4) return std::nullopt;
    int32_t len = static_cast<int32_t>(be32(b.data()));
    size_t skip = 4 + (len > 0 ? static_cast<size_t>(len) : 0);
    if (len < -1 || b.size() < skip) return std::nullopt;
    b = b.subspan(skip);
  }
  values = values.first(values.size() - b.size());
  auto result_formats = take_codes(b);
  if (!result_formats || !b.empty()) return std::nullopt;
  std::string results = canonical_formats(*result_formats, 0, false);
  out.entry_shape = r.shape;
  if (nparams == 0 && declared == 0 && results.empty() && r.shape == cache::ReplyShape::extended_described) {
    out.entry_shape = cache::ReplyShape::simple;  // the bytes a simple Query of this text gets back
    return out;
  }
  std::string formats = canonical_formats(*param_formats, nparams, true);
  put16(out.params, static_cast<uint16_t>(formats.size()));
  out.params.append(formats);
  out.params.append(reinterpret_cast<const char*>(values.data()), values.size());
  out.params.append(results);
  return out;
}

void write_cache_hit_prefix(const CacheableRequest& r, std::string& out) {
  if (r.shape == cache::ReplyShape::simple) return;
  if (r.parse) protocol::write_parse_complete(out);
  protocol::write_bind_complete(out);
}

}  // namespace pgs::proxy
