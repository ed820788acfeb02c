// bench_util.h: small helpers shared by the bench tools (mailshim-load,
// mailshim-stub): monotonic time, a log-bucketed latency histogram, a tiny
// JSON writer, /proc sampling of a target process, loopback checks and
// the fd limit. Header-only, standard library + POSIX.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

inline uint64_t nowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// Log-bucketed histogram of microsecond values: exact below 64 µs, then 64
// sub-buckets per power of two (relative error <= 1/64). Fixed memory.
class Hist {
 public:
  static constexpr uint64_t kSub = 64;
  static constexpr size_t kBuckets = kSub + 58 * kSub;

  Hist() : b_(kBuckets, 0) {}

  void add(uint64_t us) {
    b_[index(us)]++;
    n_++;
    sum_ += us;
    max_ = std::max(max_, us);
    if (us >= 40000) ge40ms_++;
  }
  uint64_t count() const { return n_; }
  uint64_t max() const { return max_; }
  double mean() const { return n_ ? double(sum_) / double(n_) : 0.0; }
  uint64_t ge40ms() const { return ge40ms_; }
  // Value at quantile q (0..1), bucket midpoint, never above max().
  uint64_t quantile(double q) const {
    if (n_ == 0) return 0;
    uint64_t target = static_cast<uint64_t>(std::ceil(q * double(n_)));
    if (target == 0) target = 1;
    uint64_t cum = 0;
    for (size_t i = 0; i < b_.size(); ++i) {
      cum += b_[i];
      if (cum >= target) return std::min(value(i), max_);
    }
    return max_;
  }
  // Counts of samples in 10 ms bins from 0 to 200 ms: shows 40 ms quantization.
  std::vector<uint64_t> bins10ms() const {
    std::vector<uint64_t> out(21, 0);
    for (size_t i = 0; i < b_.size(); ++i) {
      if (!b_[i]) continue;
      uint64_t v = value(i) / 10000;
      out[std::min<uint64_t>(v, 20)] += b_[i];
    }
    return out;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int e = 63 - __builtin_clzll(v);  // >= 6
    uint64_t m = v >> (e - 6);        // 64..127
    return static_cast<size_t>(kSub + uint64_t(e - 6) * kSub + (m - kSub));
  }
  static uint64_t value(size_t i) {
    if (i < kSub) return i;
    uint64_t e = (i - kSub) / kSub + 6;
    uint64_t m = (i - kSub) % kSub + kSub;
    uint64_t lo = m << (e - 6);
    return lo + ((uint64_t{1} << (e - 6)) / 2);
  }
  std::vector<uint64_t> b_;
  uint64_t n_ = 0, sum_ = 0, max_ = 0, ge40ms_ = 0;
};

// Concatenation by appending (gcc 12 -O3 warns falsely on "lit" + std::string&&).
template <typename... A>
std::string cat(const A&... a) {
  std::string s;
  (s.append(std::string_view(a)), ...);
  return s;
}

// Joins JSON values into an array.
inline std::string jarray(const std::vector<std::string>& items) {
  std::string s = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) s += ',';
    s += items[i];
  }
  s += ']';
  return s;
}

// Minimal JSON building: values are appended as text.
inline std::string jstr(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o += char(c);
    }
  }
  return o + "\"";
}
inline std::string jnum(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
inline std::string jnum(uint64_t v) { return std::to_string(v); }

class JObj {
 public:
  JObj& add(const std::string& k, const std::string& raw) {
    if (!s_.empty()) s_ += ',';
    s_ += jstr(k);
    s_ += ':';
    s_ += raw;
    return *this;
  }
  JObj& str(const std::string& k, const std::string& v) { return add(k, jstr(v)); }
  JObj& num(const std::string& k, double v) { return add(k, jnum(v)); }
  JObj& num(const std::string& k, uint64_t v) { return add(k, jnum(v)); }
  JObj& boolean(const std::string& k, bool v) { return add(k, v ? "true" : "false"); }
  std::string done() const { return "{" + s_ + "}"; }

 private:
  std::string s_;
};

inline std::string histJson(const Hist& h) {
  std::string bins = "[";
  auto b = h.bins10ms();
  for (size_t i = 0; i < b.size(); ++i) {
    if (i) bins += ',';
    bins += std::to_string(b[i]);
  }
  bins += "]";
  return JObj()
      .num("n", h.count())
      .num("mean_us", h.mean())
      .num("p50_us", h.quantile(0.50))
      .num("p90_us", h.quantile(0.90))
      .num("p99_us", h.quantile(0.99))
      .num("p999_us", h.quantile(0.999))
      .num("max_us", h.max())
      .num("ge_40ms", h.ge40ms())
      .add("bins_10ms", bins)
      .done();
}

// --- /proc sampling of a target process --------------------------------------

struct ProcSample {
  bool ok = false;
  double cpu_ms_stat = 0;   // utime+stime from /proc/PID/stat (10 ms ticks)
  double cpu_ms_sched = 0;  // sum of /proc/PID/task/*/schedstat run time (ns precision)
  long rss_kb = 0;          // VmRSS
};

inline ProcSample sampleProc(int pid) {
  ProcSample s;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::ifstream st(path);
  std::string line;
  if (!std::getline(st, line)) return s;
  size_t rp = line.rfind(')');
  if (rp == std::string::npos) return s;
  std::istringstream fields(line.substr(rp + 2));
  std::vector<std::string> f;
  std::string tok;
  while (fields >> tok) f.push_back(tok);
  if (f.size() < 13) return s;
  double tick = double(sysconf(_SC_CLK_TCK));
  s.cpu_ms_stat = (std::strtod(f[11].c_str(), nullptr) + std::strtod(f[12].c_str(), nullptr)) * 1000.0 / tick;
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  std::ifstream status(path);
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  std::snprintf(path, sizeof path, "/proc/%d/task", pid);
  if (DIR* d = opendir(path)) {
    double ns = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string p = std::string(path) + "/" + e->d_name + "/schedstat";
      std::ifstream ss(p);
      double v = 0;
      if (ss >> v) ns += v;
    }
    closedir(d);
    s.cpu_ms_sched = ns / 1e6;
  }
  s.ok = true;
  return s;
}

// --- safety ----------------------------------------------------------------

// True for 127.0.0.0/8 and ::1 (and ::ffff:127.x).
inline bool isLoopback(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return a->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// Parses a numeric host and port; no name resolution.
inline bool parseAddr(const std::string& host, int port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (inet_pton(AF_INET, h.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, h.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

// Raises the soft NOFILE limit to the hard limit; returns the usable number
// of connections (soft limit minus a margin for stdio, epoll, logs).
inline long raiseFdLimit(long margin = 64) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024 - margin;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  long cur = rl.rlim_cur == RLIM_INFINITY ? 1048576 : static_cast<long>(rl.rlim_cur);
  return std::max<long>(cur - margin, 1);
}

inline double cpuSelfMs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (double(ru.ru_utime.tv_sec) + double(ru.ru_stime.tv_sec)) * 1000.0 +
         (double(ru.ru_utime.tv_usec) + double(ru.ru_stime.tv_usec)) / 1000.0;
}

// The lines of a generated message body: 76 printable characters + CRLF,
// never starting with '.', so no dot-stuffing is needed.
inline std::string bodyBlock(size_t bytes) {
  static const char kAlpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string out;
  out.reserve(bytes + 80);
  size_t k = 0;
  while (out.size() + 78 <= bytes) {
    for (int i = 0; i < 76; ++i) out += kAlpha[(k + size_t(i)) % 62];
    out += "\r\n";
    ++k;
  }
  if (out.size() < bytes) {
    size_t rest = bytes - out.size();
    if (rest >= 3) {
      out.append(rest - 2, 'x');
      out += "\r\n";
    } else {
      out.append(rest, ' ');  // can only happen for tiny sizes
    }
  }
  return out;
}

}  // namespace bench
