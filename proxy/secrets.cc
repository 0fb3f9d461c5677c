#include "proxy/secrets.h"

namespace pgs::proxy {

std::shared_ptr<const Snapshot> make_snapshot(std::shared_ptr<const conf::Config> config) {
  auto snap = std::make_shared<Snapshot>();
  for (const auto& user : config->users) {
    UserSecrets s;
    const std::string& pw = user.password;
    if (pw.rfind("SCRAM-SHA-256$", 0) == 0) {
      auto v = protocol::scram::Verifier::parse(pw);
      if (v.ok()) {
        s.has_scram = true;
        s.scram = v.value();
      }
    } else if (pw.rfind("md5", 0) == 0 && pw.size() == 35) {
      s.md5_hash = pw;
    } else if (!pw.empty()) {
      // A fresh random salt per snapshot: the verifier never leaves the process.
      std::string salt = protocol::scram::random_nonce().substr(0, 16);
      s.scram = protocol::scram::Verifier::from_password(pw, salt, 4096);
      s.has_scram = true;
      s.md5_hash = protocol::md5_stored_hash(user.name, pw);
      s.server_password = pw;
    }
    if (!user.server_password.empty()) s.server_password = user.server_password;
    snap->secrets.emplace(user.name, std::move(s));
  }
  snap->config = std::move(config);
  return snap;
}

}  // namespace pgs::proxy
