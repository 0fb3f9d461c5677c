// Bounds-checked reads over a borrowed byte span (network byte order).
// Contract: the span must outlive the reader and every view it hands out.
#pragma once

#include <cstdint>
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

inline std::string_view as_string_view(Bytes b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace pgs::protocol
