// Standard base64 (RFC 4648 section 4, with padding), strict: SCRAM attributes and verifiers.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pgs::protocol {

std::string base64_encode(std::span<const uint8_t> bytes);
inline std::string base64_encode(std::string_view bytes) {
  return base64_encode({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}
// std::nullopt unless `text` is canonical base64: length a multiple of 4, only alphabet
// characters, '=' only as the last one or two, and zero bits where padding leaves them.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pgs::protocol
