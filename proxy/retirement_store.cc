// RetirementStore. See retirement_store.h.
#include "proxy/retirement_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace mailshim::proxy {
namespace {

constexpr const char* kHeader = "# mailshim retirement v1: user\tclient\tfingerprint\tquirk\trule\tcount\toverdue\tfirst_seen\tlast_seen";

// TSV fields never contain tabs or line breaks.
std::string field(const std::string& s) {
  std::string out = s.empty() ? "-" : s;
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r' || c == '\0') c = ' ';
  return out;
}

}  // namespace

void RetirementStore::record(const std::string& user, const std::string& client, const std::string& fingerprint,
                             const std::string& quirk, const std::string& rule, uint64_t count, uint64_t overdue,
                             int64_t now) {
  std::lock_guard<std::mutex> lock(mu_);
  Key key{field(user), field(client), field(fingerprint), field(quirk)};
  auto [it, inserted] = entries_.try_emplace(key);
  RetirementEntry& e = it->second;
  if (inserted) {
    e.user = std::get<0>(key);
    e.client = std::get<1>(key);
    e.fingerprint = std::get<2>(key);
    e.quirk = std::get<3>(key);
    e.first_seen = now;
  }
  e.rule = field(rule);
  e.count += count;
  e.overdue += overdue;
  e.last_seen = now;
  dirty_ = true;
  evictIfNeeded();
}

void RetirementStore::evictIfNeeded() {
  if (entries_.size() <= kMaxEntries) return;
  // Drop the 1% seen longest ago (amortises the scan).
  std::vector<std::pair<int64_t, Key>> by_age;
  by_age.reserve(entries_.size());
  for (const auto& [k, e] : entries_) by_age.emplace_back(e.last_seen, k);
  size_t drop = entries_.size() - kMaxEntries + kMaxEntries / 100;
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<long>(drop), by_age.end());
  for (size_t i = 0; i < drop; ++i) entries_.erase(by_age[i].second);
}

std::vector<RetirementEntry> RetirementStore::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RetirementEntry> out;
  out.reserve(entries_.size());
  for (const auto& [k, e] : entries_) out.push_back(e);
  return out;
}

bool RetirementStore::readFile(const std::string& path, std::vector<RetirementEntry>& out, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return true;  // nothing recorded yet
    error = path + ": " + std::strerror(errno);
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string part;
    while (std::getline(ss, part, '\t')) f.push_back(part);
    if (f.size() != 9) continue;  // damaged line: skip, never fail the whole report
    RetirementEntry e;
    e.user = f[0];
    e.client = f[1];
    e.fingerprint = f[2];
    e.quirk = f[3];
    e.rule = f[4];
    try {
      e.count = std::stoull(f[5]);
      e.overdue = std::stoull(f[6]);
      e.first_seen = std::stoll(f[7]);
      e.last_seen = std::stoll(f[8]);
    } catch (...) {
      continue;
    }
    out.push_back(std::move(e));
  }
  return true;
}

bool RetirementStore::load(std::string& error) {
  std::vector<RetirementEntry> list;
  if (!readFile(path_, list, error)) return false;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : list) {
    Key key{e.user, e.client, e.fingerprint, e.quirk};
    entries_[key] = std::move(e);
  }
  evictIfNeeded();
  return true;
}

bool RetirementStore::save(std::string& error) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!dirty_) return true;
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  std::string data = std::string(kHeader) + "\n";
  for (const auto& [k, e] : entries_) {
    data += e.user + '\t' + e.client + '\t' + e.fingerprint + '\t' + e.quirk + '\t' + e.rule + '\t' +
            std::to_string(e.count) + '\t' + std::to_string(e.overdue) + '\t' + std::to_string(e.first_seen) + '\t' +
            std::to_string(e.last_seen) + '\n';
  }
  dirty_ = false;  // a failed write marks it dirty again below
  lock.unlock();
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      markDirty();
      return false;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    error = path_ + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    markDirty();
    return false;
  }
  return true;
}

}  // namespace mailshim::proxy
