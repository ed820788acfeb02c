// RetirementStore: who still needs which quirk. Per (user, client address,
// fingerprint, quirk) it keeps the rule, a use count, first and last seen,
// and how many of the uses were overdue (the rule's sunset had passed). It is
// the data behind `mailshim report`, the list an admin works through to
// retire legacy clients.
//
// Persisted to <state_dir>/retirement.tsv, written atomically (temp file +
// rename) every flush interval, on reload and at shutdown; loaded at start,
// so counts survive restarts. Bounded: beyond kMaxEntries the entries seen
// longest ago are dropped.
//
// I/O: reads/writes one file.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace mailshim::proxy {

struct RetirementEntry {
  std::string user;         // "-" when the client never logged in
  std::string client;       // client IP
  std::string fingerprint;
  std::string quirk;        // quirk id
  std::string rule;
  uint64_t count = 0;
  uint64_t overdue = 0;     // uses after the rule's sunset
  int64_t first_seen = 0;   // unix seconds
  int64_t last_seen = 0;
};

class RetirementStore {
 public:
  static constexpr size_t kMaxEntries = 100000;

  explicit RetirementStore(std::string path) : path_(std::move(path)) {}

  // Loads the file if present. Returns false (with `error`) if unreadable.
  bool load(std::string& error);
  // Writes atomically if anything changed since the last save.
  bool save(std::string& error);
  void record(const std::string& user, const std::string& client, const std::string& fingerprint,
              const std::string& quirk, const std::string& rule, uint64_t count, uint64_t overdue, int64_t now);

  std::vector<RetirementEntry> entries() const;
  const std::string& path() const { return path_; }

  // Parses a retirement.tsv (for `mailshim report`).
  static bool readFile(const std::string& path, std::vector<RetirementEntry>& out, std::string& error);

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  void evictIfNeeded();
  void markDirty() {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ = true;
  }

  std::string path_;
  mutable std::mutex mu_;  // record() comes from every worker thread
  std::map<Key, RetirementEntry> entries_;
  bool dirty_ = false;
};

}  // namespace mailshim::proxy
