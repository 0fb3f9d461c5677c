// Errors as values on the data path (STYLE.md 8).
#pragma once

#include <string_view>
#include <utility>
#include <variant>

namespace pgs {

// Why a decode or an exchange failed. `detail` is a static string (never owns memory).
enum class Errc {
  truncated,        // the bytes end before the message says they do
  malformed,        // a field has an impossible value
  too_large,        // a length is above the configured cap
  unsupported,      // a valid message we do not implement
  auth_failed,      // wrong password / proof
  unavailable,      // a primitive the platform refuses (MD5 under a FIPS provider)
  mismatch,         // SCRAM pass-through: the server's secret is not the one the keys came from
};

struct Error {
  Errc code;
  std::string_view detail;
};

// A value or an Error. Small and explicit; no exceptions cross the data path.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(implicit)
  Result(Error error) : v_(error) {}                  // NOLINT(implicit)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
inline Error make_error(Errc c, std::string_view detail) { return Error{c, detail}; }

}  // namespace pgs
