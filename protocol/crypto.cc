#include "protocol/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>
#include <cstdlib>

namespace pgs::protocol::crypto {

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "pgsidecar: OpenSSL %s failed\n", what);
  std::abort();
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Digest32 sha256(std::string_view data) {
  Digest32 out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) die("SHA-256");
  return out;
}

Digest32 hmac_sha256(std::string_view key, std::string_view data) {
  Digest32 out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), out.data(),
           &len) == nullptr) {
    die("HMAC-SHA-256");
  }
  return out;
}

Digest32 pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations) {
  Digest32 out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes(salt),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1) {
    die("PBKDF2");
  }
  return out;
}

std::optional<std::string> md5_hex(std::string_view data) {
  unsigned char digest[16];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1 || len != 16) {
    return std::nullopt;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  // The length is not secret (digests and md5 responses have fixed lengths).
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace pgs::protocol::crypto
