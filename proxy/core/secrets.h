// Per-user credentials derived from a config snapshot once (PBKDF2 is too slow to run per login).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "protocol/auth.h"
#include "proxy/login/user_secrets.h"

namespace pgs::tls {
class TlsContext;
}  // namespace pgs::tls

namespace pgs::proxy {

using tls::TlsContext;

// An immutable view of the live configuration and what is derived from it. Shared by workers.

struct Snapshot {
  std::shared_ptr<const conf::Config> config;
  // [tls] loaded (certificate files read) with this config: null when client_tls = "disable". A
  // connection's TLS session keeps the context it started with across reloads.
  std::shared_ptr<const TlsContext> tls;
  // Client-side TLS contexts of the servers (CA files read) with this config: [0] the primary, [1 + i]
  // replica i; null for a node with server_tls = "disable". A server connection keeps the context it
  // started with across reloads.
  std::vector<std::shared_ptr<const TlsContext>> server_tls;
  std::unordered_map<std::string, UserSecrets> secrets;  // by user name
  // The SCRAM iteration count an unknown user is offered: the one most configured users have
  // (protocol::scram::kDefaultIterations when none has a verifier), so it tells nothing apart.
  int decoy_iterations = protocol::scram::kDefaultIterations;

  // The TLS context of the server `target` (-1 the primary, i >= 0 replica i); null without TLS.
  std::shared_ptr<const TlsContext> server_tls_for(int target) const {
    size_t i = static_cast<size_t>(target + 1);
    return i < server_tls.size() ? server_tls[i] : nullptr;
  }
  const UserSecrets* secrets_for(const std::string& user) const {
    auto it = secrets.find(user);
    return it == secrets.end() ? nullptr : &it->second;
  }
  // The verifier an unknown user's SCRAM exchange runs against, so that the exchange looks like a
  // known user's with a wrong password: the same name always gets the same salt in this process
  // (also across reloads), two names get unrelated salts, and no proof is ever accepted.
  protocol::scram::Verifier decoy_verifier(std::string_view user) const;
};

std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const conf::Config> config,
                                              std::shared_ptr<const TlsContext> tls = nullptr,
                                              std::vector<std::shared_ptr<const TlsContext>> server_tls = {});

// 32 random bytes drawn once per process (the first call; make_snapshot makes it at start-up).
// Keys the salts of verifiers made from cleartext passwords and of decoys. Aborts the process when
// the random source fails then: no login could be made safe.
const std::string& process_secret();

}  // namespace pgs::proxy
