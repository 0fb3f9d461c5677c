#include "protocol/byte_reader.h"

#include <cstring>

namespace pgs::protocol {

namespace {
constexpr Error kTruncated{Errc::truncated, "message ends early"};
}  // namespace

Result<uint8_t> ByteReader::read_u8() {
  if (remaining() < 1) return kTruncated;
  return data_[pos_++];
}

Result<uint32_t> ByteReader::read_u32() {
  if (remaining() < 4) return kTruncated;
  const uint8_t* p = data_.data() + pos_;
  pos_ += 4;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

Result<int32_t> ByteReader::read_i32() {
  auto v = read_u32();
  if (!v) return v.error();
  return static_cast<int32_t>(*v);  // two's complement (C++20 defines the conversion)
}

Result<int16_t> ByteReader::read_i16() {
  if (remaining() < 2) return kTruncated;
  const uint8_t* p = data_.data() + pos_;
  pos_ += 2;
  return static_cast<int16_t>(static_cast<uint16_t>((p[0] << 8) | p[1]));
}

Result<uint16_t> ByteReader::read_u16() {
  auto v = read_i16();
  if (!v) return v.error();
  return static_cast<uint16_t>(*v);
}

Result<Unit> ByteReader::expect_end() const {
  if (!empty()) return make_error(Errc::malformed, "trailing bytes after message");
  return Unit{};
}

Result<std::string_view> ByteReader::read_cstr() {
  const uint8_t* begin = data_.data() + pos_;
  const void* nul = remaining() == 0 ? nullptr : std::memchr(begin, 0, remaining());
  if (nul == nullptr) return make_error(Errc::truncated, "string without terminator");
  size_t len = static_cast<size_t>(static_cast<const uint8_t*>(nul) - begin);
  pos_ += len + 1;
  return std::string_view(reinterpret_cast<const char*>(begin), len);
}

Result<Bytes> ByteReader::read_n(size_t n) {
  if (remaining() < n) return kTruncated;
  Bytes out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

}  // namespace pgs::protocol
