#include "protocol/server_login.h"

#include "protocol/frame.h"
#include "protocol/writer.h"

namespace pgs::protocol {

void write_ssl_request(std::string& out) {
  MessageWriter(out).begin_untyped().u32(kSslRequestCode).finish();
}

SslAnswer read_ssl_answer(std::span<const uint8_t> received) {
  if (received.empty()) return SslAnswer::need_more;
  switch (received[0]) {
    case 'S':
      return received.size() == 1 ? SslAnswer::tls : SslAnswer::invalid;
    case 'N':
      return SslAnswer::plaintext;
    case 'E':
      return SslAnswer::error;
    default:
      return SslAnswer::invalid;
  }
}

std::string_view refuse_server_auth(int32_t code, ScramProgress scram, const ServerAuthPolicy& policy) {
  switch (code) {
    case 0:  // AuthenticationOk
      if (scram == ScramProgress::started) {
        return "server sent AuthenticationOk before its SCRAM signature was verified (it proved nothing)";
      }
      return {};
    case 3:  // AuthenticationCleartextPassword
      if (!policy.allow_cleartext) {
        return "server asks for the password in cleartext; refused (server_allow_cleartext = false)";
      }
      return {};
    case 10:  // AuthenticationSASL
      return scram == ScramProgress::none ? std::string_view() : "server started a second SASL exchange";
    case 11:  // AuthenticationSASLContinue
    case 12:  // AuthenticationSASLFinal
      return scram == ScramProgress::started ? std::string_view() : "unexpected SASL message from server";
    default:
      return {};
  }
}

}  // namespace pgs::protocol
