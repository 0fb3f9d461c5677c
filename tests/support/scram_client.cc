// Client-side password responses for the raw test client, on OpenSSL, written independently of
// protocol/auth.h so that the proxy's implementation is checked against a second one.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "tests/support/raw_client.h"

namespace pgs::test {
namespace {

using Bytes = std::string;

Bytes b64_decode(const std::string& in) {
  Bytes out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error("bad base64 from server");
  size_t pad = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string b64_encode(const Bytes& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Bytes hmac(const Bytes& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return Bytes(reinterpret_cast<char*>(md), len);
}

Bytes sha256(const Bytes& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Bytes(reinterpret_cast<char*>(md), sizeof md);
}

// Value of attribute `key` ("r", "s", "i") in a SCRAM message "r=...,s=...,i=...".
std::string attribute(const std::string& msg, char key) {
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t end = msg.find(',', pos);
    if (end == std::string::npos) end = msg.size();
    if (end - pos >= 2 && msg[pos] == key && msg[pos + 1] == '=') {
      return msg.substr(pos + 2, end - pos - 2);
    }
    pos = end + 1;
  }
  throw std::runtime_error(std::string("SCRAM attribute missing: ") + key);
}

}  // namespace

std::string md5_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string scram_client_final(const std::string& password, const std::string& client_first_bare,
                               const std::string& server_first, std::string* server_signature_b64) {
  std::string nonce = attribute(server_first, 'r');
  Bytes salt = b64_decode(attribute(server_first, 's'));
  int iterations = std::stoi(attribute(server_first, 'i'));
  Bytes salted(32, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), 32,
                    reinterpret_cast<unsigned char*>(salted.data()));
  Bytes client_key = hmac(salted, "Client Key");
  Bytes stored_key = sha256(client_key);
  std::string without_proof = "c=biws,r=" + nonce;
  std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
  Bytes signature = hmac(stored_key, auth_message);
  Bytes proof = client_key;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  if (server_signature_b64 != nullptr) {
    *server_signature_b64 = b64_encode(hmac(hmac(salted, "Server Key"), auth_message));
  }
  return without_proof + ",p=" + b64_encode(proof);
}

std::string md5_response(const std::string& user, const std::string& password,
                         const std::string& salt4) {
  return "md5" + md5_hex(md5_hex(password + user) + salt4);
}

}  // namespace pgs::test
