// A value or an error, without exceptions (STYLE.md 8). The app does not link pgs_protocol (it talks
// to the proxy over TCP only), so it carries its own small variant of pgs::Result.
#pragma once

#include <utility>
#include <variant>

namespace pgs::app {

template <typename T, typename E>
class [[nodiscard]] Outcome {
 public:
  Outcome(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(implicit)
  Outcome(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(implicit)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

}  // namespace pgs::app
