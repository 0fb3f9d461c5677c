#include "proxy/core/secrets.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "proxy/core/log.h"

namespace pgs::proxy {

namespace scram = protocol::scram;

const std::string& process_secret() {
  static const std::string secret = [] {
    std::string s(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(s.size())) != 1) {
      std::fprintf(stderr, "pgsidecar: RAND_bytes failed: no random source for the process secret\n");
      std::abort();
    }
    return s;
  }();
  return secret;
}

scram::Verifier Snapshot::decoy_verifier(std::string_view user) const {
  return scram::Verifier::decoy(process_secret(), user, decoy_iterations);
}

namespace {

// The most common iteration count among the users' verifiers (ties: the smaller count).
int typical_iterations(const std::unordered_map<std::string, UserSecrets>& secrets) {
  std::map<int, int> counts;
  for (const auto& [name, s] : secrets) {
    if (s.has_scram) ++counts[s.scram.iterations];
  }
  int best = scram::kDefaultIterations, best_count = 0;
  for (const auto& [iterations, count] : counts) {
    if (count > best_count) {
      best = iterations;
      best_count = count;
    }
  }
  return best;
}

}  // namespace

std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const conf::Config> config,
                                              std::shared_ptr<const TlsContext> tls,
                                              std::vector<std::shared_ptr<const TlsContext>> server_tls) {
  auto snap = std::make_shared<Snapshot>();
  snap->tls = std::move(tls);
  snap->server_tls = std::move(server_tls);
  const std::string& secret = process_secret();
  for (const auto& user : config->users) {
    UserSecrets s;
    const std::string& pw = user.password;
    if (pw.rfind("SCRAM-SHA-256$", 0) == 0) {
      auto v = scram::Verifier::parse(pw);
      if (v.ok()) {
        s.has_scram = true;
        s.scram = v.value();
      }
    } else if (pw.rfind("md5", 0) == 0 && pw.size() == 35) {
      s.md5_hash = pw;
    } else if (!pw.empty()) {
      // The salt is derived as a decoy's is (same length, stable per name in this process), so a
      // configured user's server-first-message looks like an unknown user's. The verifier never
      // leaves the process.
      s.scram = scram::Verifier::from_password(pw, scram::Verifier::derived_salt(secret, user.name),
                                               scram::kDefaultIterations);
      s.has_scram = true;
      auto md5 = protocol::md5_stored_hash(user.name, pw);
      if (md5) {
        s.md5_hash = std::move(md5).value();
      } else {
        LOG_WARN("user " + user.name + ": MD5 is not available (FIPS?): md5 authentication is off");
      }
      s.server_password = pw;
    }
    if (!user.server_password.empty()) s.server_password = user.server_password;
    snap->secrets.emplace(user.name, std::move(s));
  }
  snap->decoy_iterations = typical_iterations(snap->secrets);
  snap->config = std::move(config);
  return snap;
}

}  // namespace pgs::proxy
