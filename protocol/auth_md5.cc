// md5 password authentication (docs "AuthenticationMD5Password"):
// "md5" + md5hex(md5hex(password + user) + salt).
#include "protocol/auth.h"
#include "protocol/crypto.h"

namespace pgs::protocol {

std::string md5_stored_hash(std::string_view user, std::string_view password) {
  std::string input;
  input.reserve(password.size() + user.size());
  input.append(password).append(user);
  return "md5" + crypto::md5_hex(input);
}

std::string md5_response_from_hash(std::string_view stored_hash, const uint8_t salt[4]) {
  // The inner hash is the stored form without its "md5" prefix.
  if (stored_hash.starts_with("md5")) stored_hash.remove_prefix(3);
  std::string input(stored_hash);
  input.append(reinterpret_cast<const char*>(salt), 4);
  return "md5" + crypto::md5_hex(input);
}

std::string md5_password_response(std::string_view user, std::string_view password,
                                  const uint8_t salt[4]) {
  return md5_response_from_hash(md5_stored_hash(user, password), salt);
}

bool md5_verify(std::string_view stored_hash, const uint8_t salt[4], std::string_view client_response) {
  constexpr size_t kResponseSize = 35;  // "md5" + 32 hex digits
  const std::string expected = md5_response_from_hash(stored_hash, salt);
  // Without MD5 (md5_hex returned "") the expected value is just "md5": never accept that.
  if (expected.size() != kResponseSize || stored_hash.size() != kResponseSize) return false;
  return crypto::equal_constant_time(expected, client_response);
}

}  // namespace pgs::protocol
