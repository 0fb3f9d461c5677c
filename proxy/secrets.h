// Per-user credentials derived from a config snapshot once (PBKDF2 is too slow to run per login).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "conf/config.h"
#include "protocol/auth.h"

namespace pgs::proxy {

struct UserSecrets {
  bool has_scram = false;
  protocol::scram::Verifier scram;  // for clients (from the cleartext password or a stored verifier)
  std::string md5_hash;             // "md5..." for md5 client auth; empty if unknown
  std::string server_password;      // what the proxy uses to log in to servers as this user
};

// An immutable view of the live configuration and what is derived from it. Shared by workers.
struct Snapshot {
  std::shared_ptr<const conf::Config> config;
  std::unordered_map<std::string, UserSecrets> secrets;  // by user name
  const UserSecrets* secrets_for(const std::string& user) const {
    auto it = secrets.find(user);
    return it == secrets.end() ? nullptr : &it->second;
  }
};

std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const conf::Config> config);

}  // namespace pgs::proxy
