// A user's credentials, derived from the config once per snapshot (PBKDF2 is too slow to run per login):
// what a client must prove (LoginExchange) and what the proxy logs in to servers with.
#pragma once

#include <string>

#include "protocol/auth.h"

namespace pgs::proxy {

struct UserSecrets {
  bool has_scram = false;
  protocol::scram::Verifier scram;  // for clients (from the cleartext password or a stored verifier)
  std::string md5_hash;             // "md5..." for md5 client auth; empty if unknown or MD5 unavailable
  std::string server_password;      // what the proxy uses to log in to servers as this user
};

}  // namespace pgs::proxy
