// Bounds-checked reads over a borrowed byte span (network byte order).
// Contract: the span must outlive the reader and every view it hands out.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/result.h"

namespace pgs::protocol {

using Bytes = std::span<const uint8_t>;

class ByteReader {
 public:
  explicit ByteReader(Bytes data) : data_(data) {}
  Result<uint8_t> read_u8();
  Result<int16_t> read_i16();
  Result<uint16_t> read_u16();  // counts that Postgres reads unsigned (pq_getmsgint(msg, 2))
  Result<int32_t> read_i32();
  Result<uint32_t> read_u32();
  // A NUL-terminated string; the view excludes the NUL. Fails if no NUL before the end.
  Result<std::string_view> read_cstr();
  Result<Bytes> read_n(size_t n);
  Bytes rest() const { return data_.subspan(pos_); }
  size_t remaining() const { return data_.size() - pos_; }
  bool empty() const { return pos_ == data_.size(); }
  // Ok if every byte was consumed; Errc::malformed ("trailing bytes") otherwise.
  Result<Unit> expect_end() const;

 private:
  Bytes data_;
  size_t pos_ = 0;
};

// One value of a length-prefixed list (int32 length, -1 = NULL, then its bytes), as a DataRow's columns
// and a Bind's or FunctionCall's arguments are written: into `value` (nullopt for NULL). False at the
// end of the list or when the bytes are not one (the walk then stays ended: `left` becomes 0).
template <typename Count>
bool next_length_prefixed(ByteReader& reader, Count& left, std::optional<Bytes>& value) {
  if (left <= 0) return false;
  --left;
  auto len = reader.read_i32();
  if (!len || *len < -1) {
    left = 0;
    return false;
  }
  if (*len == -1) {
    value.reset();
    return true;
  }
  auto bytes = reader.read_n(static_cast<size_t>(*len));
  if (!bytes) {
    left = 0;
    return false;
  }
  value = *bytes;
  return true;
}


inline std::string_view as_string_view(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace pgs::protocol
