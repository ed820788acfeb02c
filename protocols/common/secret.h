// Secret: a std::string wrapper for passwords and AUTH payloads. Its storage is
// wiped (explicit_bzero) when it is destroyed, cleared or moved from, and it
// has no operator<< so it cannot be formatted into a log line by accident.
//
// No I/O. Standard library (+ <string.h> explicit_bzero from glibc).
#pragma once

#include <string>
#include <string_view>

namespace mailshim::proto {

// Overwrites the bytes of `s` (including spare capacity) with zeros in a way
// the compiler may not elide.
void wipe(std::string& s);

// Appends `tail` to `s` without leaving a copy of `s` in freed memory: when
// `s` must grow, its old buffer is wiped. For lines that carry credentials
// (a plain `+`/`+=` may reallocate and free the old buffer unwiped).
void appendWiped(std::string& s, std::string_view tail);

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string v) : value_(std::move(v)) {}
  Secret(const Secret&) = default;
  Secret& operator=(const Secret& o) {
    if (this != &o) {
      wipe(value_);
      value_ = o.value_;
    }
    return *this;
  }
  Secret(Secret&& o) noexcept : value_(std::move(o.value_)) { wipe(o.value_); }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) {
      wipe(value_);
      value_ = std::move(o.value_);
      wipe(o.value_);
    }
    return *this;
  }
  ~Secret() { wipe(value_); }

  std::string_view reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  size_t size() const { return value_.size(); }
  void clear() { wipe(value_); }

 private:
  std::string value_;
};

}  // namespace mailshim::proto
