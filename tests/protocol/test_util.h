// Helpers shared by the protocol tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/frame.h"

namespace pgs::protocol::test {

inline Bytes bytes_of(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Frames exactly one typed message from `wire` (as produced by a writer) and returns it.
inline Frame only_frame(const std::string& wire) {
  FrameResult r = split_frame(bytes_of(wire), 1u << 30);
  EXPECT_TRUE(std::holds_alternative<Frame>(r));
  if (!std::holds_alternative<Frame>(r)) return Frame{'\0', {}, 0, {}};
  Frame f = std::get<Frame>(r);
  EXPECT_EQ(f.size, wire.size()) << "one message expected";
  return f;
}

Frame only_frame(std::string&&) = delete;
StartupFrame only_startup(std::string&&) = delete;

inline StartupFrame only_startup(const std::string& wire) {
  StartupResult r = split_startup(bytes_of(wire));
  EXPECT_TRUE(std::holds_alternative<StartupFrame>(r));
  if (!std::holds_alternative<StartupFrame>(r)) return StartupFrame{0, {}, 0};
  StartupFrame f = std::get<StartupFrame>(r);
  EXPECT_EQ(f.size, wire.size());
  return f;
}

// Big-endian helpers for hand-built messages.
inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 8) & 0xff),
          static_cast<char>(v & 0xff)};
}
inline std::string be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

// What follows a Bind's names (BindView::rest), built by hand (there is no full Bind encoder: the
// proxy forwards the client's): format codes, values (std::nullopt = NULL) and result format codes.
inline std::string bind_args(const std::vector<int16_t>& formats, const std::vector<std::optional<std::string>>& values,
                             const std::vector<int16_t>& results) {
  std::string b = be16(static_cast<uint16_t>(formats.size()));
  for (int16_t f : formats) b += be16(static_cast<uint16_t>(f));
  b += be16(static_cast<uint16_t>(values.size()));
  for (const auto& v : values) b += v ? be32(static_cast<uint32_t>(v->size())) + *v : be32(0xffffffffu);
  b += be16(static_cast<uint16_t>(results.size()));
  for (int16_t f : results) b += be16(static_cast<uint16_t>(f));
  return b;
}

// A whole Bind body: the portal and statement names, then bind_args().
inline std::string bind_body(std::string_view portal, std::string_view stmt, const std::vector<int16_t>& formats,
                             const std::vector<std::optional<std::string>>& values,
                             const std::vector<int16_t>& results) {
  return std::string(portal) + '\0' + std::string(stmt) + '\0' + bind_args(formats, values, results);
}

// A typed message built by hand: type, length, body.
inline std::string msg(char type, std::string_view body) {
  return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + std::string(body);
}

// std::string with embedded NULs from a literal: S("a\0b").
template <size_t N>
std::string S(const char (&lit)[N]) {
  return std::string(lit, N - 1);
}

}  // namespace pgs::protocol::test
