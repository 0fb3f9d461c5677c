// The client side of a server login, as pure rules (issue 13): what the proxy asks before its startup
// packet (SSLRequest) and how it reads the answer, and which authentication requests it answers.
// No sockets, no OpenSSL: proxy/server/ acts on these answers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pgs::protocol {

// SSLRequest (docs "SSL Session Encryption"): length 8, code 80877103; sent before the StartupMessage.
void write_ssl_request(std::string& out);

// The server's one-byte answer to an SSLRequest. `tls`: 'S', start the handshake (and the byte must be
// the only one received: bytes after it were not encrypted and could have been injected by a
// man-in-the-middle, CVE-2021-23222); `plaintext`: 'N'; `error`: 'E' (a server older than 7.0, or one
// refusing before reading); `invalid`: anything else, or more bytes after 'S'.
enum class SslAnswer : uint8_t { need_more, tls, plaintext, error, invalid };
SslAnswer read_ssl_answer(std::span<const uint8_t> received);

// How far the SCRAM exchange of a login got.
enum class ScramProgress : uint8_t { none, started, verified };

// What the proxy accepts from a server during its login.
struct ServerAuthPolicy {
  bool allow_cleartext = false;  // AuthenticationCleartextPassword may be answered
};

// Whether an AuthenticationRequest with `code` (backend::AuthCode) may be answered at this point of the
// login: "" when it may, else why the login is refused (for the log line and the waiting client).
//  - cleartext (3): only when the policy allows it (the password would go out as it is);
//  - Ok (0): not while a SCRAM exchange is open (started, not verified): a server that skips its
//    SASLFinal never proved it knows the password, so it could be anyone;
//  - SASLContinue / SASLFinal (11, 12) without an exchange open, or a second SASL (10) once one is: out
//    of order.
// Unknown codes are left to the caller (it knows which methods it supports).
std::string_view refuse_server_auth(int32_t code, ScramProgress scram, const ServerAuthPolicy& policy);

}  // namespace pgs::protocol
