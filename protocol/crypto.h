// Thin wrappers over OpenSSL's one-shot digests (internal to protocol/).
// Contract: SHA-256, HMAC and PBKDF2 cannot fail for these inputs; if OpenSSL fails anyway the
// process is broken and aborts. MD5 can be missing (a FIPS provider refuses it): md5_hex then
// returns nullopt, and every caller must fail closed (auth_md5.cc).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgs::protocol::crypto {

using Digest32 = std::array<uint8_t, 32>;

Digest32 sha256(std::string_view data);
Digest32 hmac_sha256(std::string_view key, std::string_view data);
Digest32 pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations);
std::optional<std::string> md5_hex(std::string_view data);  // 32 lowercase hex digits (see above)
bool equal_constant_time(std::string_view a, std::string_view b);

inline std::string_view view(const Digest32& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace pgs::protocol::crypto
