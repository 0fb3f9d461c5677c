#include "app/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace pgs::app {
namespace {

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

bool is_token(std::string_view t) {
  if (t.size() != 43 || !t.starts_with("fp_")) return false;
  for (char c : t.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  return to_hex(digest, len);
}

std::string random_token() {
  unsigned char bytes[20];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return {};
  return "fp_" + to_hex(bytes, sizeof bytes);
}

std::string derived_token(std::string_view secret, std::string_view email) {
  // Mirrored in SQL by seed.cc: 'fp_' || left(encode(sha256(secret || ':' || email), 'hex'), 40).
  std::string material(secret);
  material += ':';
  material += email;
  return "fp_" + sha256_hex(material).substr(0, 40);
}

std::string token_hash_param(std::string_view token) { return "\\x" + sha256_hex(token); }

std::optional<std::string> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {  // the scheme is case-insensitive (RFC 9110)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return std::nullopt;
    }
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (!is_token(token)) return std::nullopt;
  return std::string(token);
}

Outcome<std::optional<User>, DbError> authenticate(DbPool& db, std::string_view token) {
  auto rows = db.read(
      "SELECT u.id, u.email, u.name FROM core.api_tokens t JOIN core.users u ON u.id = t.user_id "
      "WHERE t.token_hash = $1::bytea AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())",
      {param(token_hash_param(token))});
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<User>();
  return std::optional<User>(User{rows->int64(0, 0), std::string(rows->text(0, 1)), std::string(rows->text(0, 2))});
}

}  // namespace pgs::app
