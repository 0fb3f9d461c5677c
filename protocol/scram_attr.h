// SCRAM attribute syntax (RFC 5802 section 7): "a=value" items separated by ','.
// Internal to protocol/. Views borrow from the message being parsed.
#pragma once

#include <string_view>

#include "protocol/result.h"

namespace pgs::protocol::scram {

class AttrReader {
 public:
  explicit AttrReader(std::string_view text) : rest_(text) {}

  bool at_end() const { return rest_.empty(); }
  std::string_view rest() const { return rest_; }
  // The attribute letter at the cursor, or '\0' at the end.
  char peek() const { return rest_.empty() ? '\0' : rest_.front(); }

  // Reads "<name>=<value>" followed by ',' or the end; the value may be empty.
  Result<std::string_view> expect(char name) {
    if (peek() != name) return make_error(Errc::malformed, "unexpected SCRAM attribute");
    return any_value();
  }

  // Reads any "<letter>=<value>" item (an extension); returns the value.
  Result<std::string_view> any_value() {
    if (rest_.size() < 2 || !is_alpha(rest_[0]) || rest_[1] != '=') {
      return make_error(Errc::malformed, "bad SCRAM attribute");
    }
    rest_.remove_prefix(2);
    size_t comma = rest_.find(',');
    std::string_view value = rest_.substr(0, comma);
    if (comma == std::string_view::npos) {
      rest_ = {};
    } else {
      rest_.remove_prefix(comma + 1);
      if (rest_.empty()) return make_error(Errc::malformed, "SCRAM message ends with ','");
    }
    return value;
  }

 private:
  static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
  std::string_view rest_;
};

// RFC 5802 "printable": %x21-2B / %x2D-7E (no ','); a nonce must be non-empty.
inline bool is_valid_nonce(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

}  // namespace pgs::protocol::scram
