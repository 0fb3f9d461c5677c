#include "cache/entry.h"

#include <charconv>

#include "protocol/backend.h"
#include "protocol/frame.h"

namespace pgs::cache {
namespace {

using protocol::ByteReader;
using protocol::Bytes;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

Bytes as_bytes(std::string_view s) { return Bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

Error corrupt(std::string_view why) { return make_error(Errc::malformed, why); }

// "SELECT 3" -> 3; other tags (or no number) -> no check.
std::optional<uint64_t> select_count(std::string_view tag) {
  constexpr std::string_view prefix = "SELECT ";
  if (!tag.starts_with(prefix)) return std::nullopt;
  uint64_t n = 0;
  std::string_view digits = tag.substr(prefix.size());
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return n;
}

struct Walk {
  int columns = -1;  // from RowDescription; -1 = unknown
  uint32_t rows = 0;
  bool complete = false;
};

// One message of the stored sequence; `first` is true for the first message.
Result<Unit> check_message(const protocol::Frame& f, bool first, ReplyShape shape, Walk& w) {
  if (w.complete) return corrupt("message after CommandComplete");
  if (first && shape != ReplyShape::extended && f.type != 'D' && f.type != 'C') {
    if (f.type == 'T') {
      auto rd = protocol::backend::RowDescription::decode(f.body);
      if (!rd) return rd.error();
      w.columns = static_cast<int>(rd->fields.size());
      return Unit{};
    }
    if (f.type == 'n' && shape == ReplyShape::extended_described && f.body.empty()) return Unit{};
    return corrupt("bad first message");
  }
  if (first && shape != ReplyShape::extended && f.type == 'D') return corrupt("rows without a description");
  if (first && shape == ReplyShape::extended_described) return corrupt("missing description");
  if (f.type == 'D') {
    auto row = protocol::backend::DataRow::decode(f.body);
    if (!row) return row.error();
    if (w.columns >= 0 && row->column_count != w.columns) return corrupt("column count mismatch");
    ++w.rows;
    return Unit{};
  }
  if (f.type != 'C') return corrupt("unexpected message type");
  auto cc = protocol::backend::CommandComplete::decode(f.body);
  if (!cc) return cc.error();
  std::optional<uint64_t> n = select_count(cc->tag);
  if (n && *n != w.rows) return corrupt("row count mismatch");
  w.complete = true;
  return Unit{};
}

Result<uint32_t> check_messages(std::string_view messages, ReplyShape shape, uint32_t max_message_bytes) {
  Bytes rest = as_bytes(messages);
  Walk walk;
  bool first = true;
  while (!rest.empty()) {
    protocol::FrameResult fr = protocol::split_frame(rest, max_message_bytes);
    const protocol::Frame* f = std::get_if<protocol::Frame>(&fr);
    if (f == nullptr) return corrupt("bad framing");
    Result<Unit> ok = check_message(*f, first, shape, walk);
    if (!ok) return ok.error();
    first = false;
    rest = rest.subspan(f->size);
  }
  if (!walk.complete) return corrupt("no CommandComplete");
  return walk.rows;
}

}  // namespace

std::string encode_entry(const EntryMeta& meta, std::string_view messages) {
  std::string_view cls = meta.class_name.substr(0, 255);
  std::string out;
  out.reserve(4 + 1 + 1 + 4 + 8 + 8 + 1 + cls.size() + 4 + messages.size());
  out.append("PGSC");
  out.push_back(static_cast<char>(kEntryVersion));
  out.push_back(static_cast<char>(meta.shape));
  put_u32(out, meta.ttl_ms);
  put_u64(out, meta.created_at_ms);
  put_u64(out, meta.generations);
  out.push_back(static_cast<char>(cls.size()));
  out.append(cls);
  put_u32(out, static_cast<uint32_t>(messages.size()));
  out.append(messages);
  return out;
}

Result<CachedReply> decode_entry(std::string_view value, ReplyShape expected, uint32_t max_message_bytes) {
  ByteReader r(as_bytes(value));
  auto magic = r.read_n(4);
  if (!magic || protocol::as_string_view(*magic) != "PGSC") return corrupt("bad magic");
  auto version = r.read_u8();
  if (!version || *version != kEntryVersion) return corrupt("unknown version");
  auto shape = r.read_u8();
  if (!shape || *shape != static_cast<uint8_t>(expected)) return corrupt("shape mismatch");
  auto ttl = r.read_u32();
  auto hi = r.read_u32();
  auto lo = r.read_u32();
  auto gen_hi = r.read_u32();
  auto gen_lo = r.read_u32();
  auto cls_len = r.read_u8();
  if (!ttl || !hi || !lo || !gen_hi || !gen_lo || !cls_len) return corrupt("truncated header");
  auto cls = r.read_n(*cls_len);
  auto msg_len = r.read_u32();
  if (!cls || !msg_len || *msg_len != r.remaining()) return corrupt("length mismatch");
  CachedReply reply;
  reply.meta.shape = expected;
  reply.meta.ttl_ms = *ttl;
  reply.meta.created_at_ms = (static_cast<uint64_t>(*hi) << 32) | *lo;
  reply.meta.generations = (static_cast<uint64_t>(*gen_hi) << 32) | *gen_lo;
  reply.meta.class_name = protocol::as_string_view(*cls);
  reply.messages = value.substr(value.size() - *msg_len);
  Result<uint32_t> rows = check_messages(reply.messages, expected, max_message_bytes);
  if (!rows) return rows.error();
  reply.rows = *rows;
  return reply;
}

}  // namespace pgs::cache
