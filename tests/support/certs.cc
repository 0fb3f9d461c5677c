#include "tests/support/certs.h"

#include <unistd.h>

#include <filesystem>

#include "tests/support/process.h"

namespace pgs::test {

TestCertificates::TestCertificates(const std::string& name)
    : dir("/tmp/pgs-tls-" + std::to_string(getpid()) + "-" + name),
      ca(dir + "/ca.crt"),
      cert(dir + "/server.crt"),
      key(dir + "/server.key") {
  std::string script =
      "set -e; mkdir -p '" + dir + "'; cd '" + dir + "'\n"
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pgsidecar-test-ca-" + name +
      " -keyout ca.key -out ca.crt\n"
      "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr\n"
      "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf\n"
      "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf "
      "-out server.crt\n";
  RunResult r = run_program({"bash", "-c", script}, {}, Millis(30000));
  if (r.exit_code != 0) error = r.describe();
}

const TwoAuthorities& two_authorities() {
  static TwoAuthorities pki;
  return pki;
}

TestCertificates::~TestCertificates() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace pgs::test
