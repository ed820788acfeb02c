// Directory: account address -> display name, for the smtp.display_name quirk.
// An immutable map built by conf/ (inline TOML table or a TSV export of
// iRedMail's vmail.mailbox / LDAP cn) and shared read-only by sessions.
//
// No I/O. Standard library only.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mailshim::proto {

class Directory {
 public:
  Directory() = default;
  explicit Directory(std::map<std::string, std::string> names) : names_(std::move(names)) {}

  // Case-insensitive on the whole address (keys are stored lowercase).
  std::optional<std::string> displayName(std::string_view address) const {
    std::string key(address);
    for (char& c : key)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    auto it = names_.find(key);
    if (it == names_.end()) return std::nullopt;
    return it->second;
  }
  size_t size() const { return names_.size(); }

 private:
  std::map<std::string, std::string> names_;
};

using DirectoryConstSharedPtr = std::shared_ptr<const Directory>;

}  // namespace mailshim::proto
