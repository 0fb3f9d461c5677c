// md5 password authentication (docs "AuthenticationMD5Password"):
// "md5" + md5hex(md5hex(password + user) + salt).
#include "protocol/auth.h"
#include "protocol/crypto.h"

namespace pgs::protocol {

namespace {

constexpr size_t kMd5FormSize = 35;  // "md5" + 32 hex digits: both the stored hash and a response

bool is_md5_form(std::string_view s) { return s.size() == kMd5FormSize && s.starts_with("md5"); }

}  // namespace

Result<std::string> md5_stored_hash(std::string_view user, std::string_view password) {
  std::string input;
  input.reserve(password.size() + user.size());
  input.append(password).append(user);
  auto hex = crypto::md5_hex(input);
  if (!hex) return make_error(Errc::unavailable, "MD5 is not available");
  return "md5" + *hex;
}

Result<std::string> md5_response_from_hash(std::string_view stored_hash, const uint8_t salt[4]) {
  if (!is_md5_form(stored_hash)) return make_error(Errc::malformed, "not an md5 stored hash");
  // The inner hash is the stored form without its "md5" prefix.
  std::string input(stored_hash.substr(3));
  input.append(reinterpret_cast<const char*>(salt), 4);
  auto hex = crypto::md5_hex(input);
  if (!hex) return make_error(Errc::unavailable, "MD5 is not available");
  return "md5" + *hex;
}

std::string md5_password_response(std::string_view user, std::string_view password,
                                  const uint8_t salt[4]) {
  auto stored = md5_stored_hash(user, password);
  if (!stored) return {};
  auto response = md5_response_from_hash(*stored, salt);
  return response ? std::move(response).value() : std::string{};
}

bool md5_response_matches(const Result<std::string>& expected, std::string_view client_response) {
  if (!expected || !is_md5_form(*expected)) return false;
  return crypto::equal_constant_time(*expected, client_response);
}

bool md5_verify(std::string_view stored_hash, const uint8_t salt[4], std::string_view client_response) {
  return md5_response_matches(md5_response_from_hash(stored_hash, salt), client_response);
}

}  // namespace pgs::protocol
