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

}  // namespace pgs::test
