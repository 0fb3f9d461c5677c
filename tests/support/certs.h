// A throwaway PKI for TLS tests, made with the openssl command: a CA and a server certificate it
// signed (SAN DNS:localhost, IP:127.0.0.1, valid 2 days) in /tmp/pgs-tls-<pid>-<name>, removed with
// the object. Two objects are two unrelated authorities.
#pragma once

#include <string>

namespace pgs::test {

struct TestCertificates {
  explicit TestCertificates(const std::string& name);
  ~TestCertificates();
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  std::string dir, ca, cert, key;  // ca.crt, server.crt, server.key in dir
  std::string error;               // "" when made; else what openssl said
};

// Two unrelated authorities, made once per process (on first use) and kept until it exits: `main`
// signs the servers' certificates, `other` verifies nothing they present.
struct TwoAuthorities {
  TestCertificates main{"pki-main"};
  TestCertificates other{"pki-other"};
  std::string error() const { return main.error + other.error; }
};
const TwoAuthorities& two_authorities();

}  // namespace pgs::test
