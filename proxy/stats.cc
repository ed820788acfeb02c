// Stats rendering. See stats.h.
#include "proxy/stats.h"

#include <cstdio>
#include <sstream>

namespace mailshim::proxy {

namespace {

std::vector<std::string> splitLabels(const char* labels) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = labels; *p; ++p) {
    if (*p == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Prometheus label value escaping: backslash, double quote, line feed.
std::string escapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string labelSet(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i) out += ',';
    out += names[i] + "=\"" + escapeLabel(values[i]) + "\"";
  }
  return out + "}";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// Walks every declared figure; `emit(name, type, help, lines)` gets the
// sample lines (without the "mailshim_" prefix) of one metric.
template <typename Emit>
void walk(const Stats& s, Emit emit) {
#define MAILSHIM_WALK(name, help)                                                               \
  {                                                                                             \
    bool gauge = std::string_view(#name) == "sessions_active";                                  \
    std::string metric = gauge ? std::string(#name) : std::string(#name) + "_total";            \
    emit(metric, gauge ? "gauge" : "counter", help,                                             \
         std::vector<std::string>{metric + " " + std::to_string(s.name.load())});               \
  }
  MAILSHIM_COUNTERS(MAILSHIM_WALK)
#undef MAILSHIM_WALK
  {
    std::vector<std::string> lines;
    for (const auto& row : proto::quirkRegistry())
      lines.push_back("quirk_uses_total{quirk=\"" + std::string(row.id) + "\"} " +
                      std::to_string(s.quirk_uses[static_cast<size_t>(row.quirk)].load()));
    emit("quirk_uses_total", "counter", "Quirk uses, by quirk", lines);
  }
  {
    std::vector<std::string> lines;
    for (size_t i = 0; i < s.worker_sessions.size(); ++i)
      if (auto v = s.worker_sessions[i].load())
        lines.push_back("worker_sessions_total{worker=\"" + std::to_string(i) + "\"} " + std::to_string(v));
    emit("worker_sessions_total", "counter", "Client connections accepted, by worker thread", lines);
  }
#define MAILSHIM_WALK(name, kind, label_names, help)                                                    \
  {                                                                                                \
    std::string metric = std::string_view(#kind) == "counter" ? std::string(#name) + "_total"      \
                                                              : std::string(#name);                \
    std::vector<std::string> lines;                                                                \
    for (const auto& row : s.name.rows())                                                          \
      lines.push_back(metric + labelSet(s.name.labels(), row.values) + " " + std::to_string(row.value)); \
    emit(metric, #kind, help, lines);                                                              \
  }
  MAILSHIM_FAMILIES(MAILSHIM_WALK)
#undef MAILSHIM_WALK
#define MAILSHIM_WALK(name, label, help)                                                           \
  {                                                                                                \
    std::vector<std::string> lines;                                                                \
    std::string metric = #name;                                                                    \
    for (const auto& row : s.name.rows()) {                                                        \
      std::string l = std::string(label) + "=\"" + escapeLabel(row.label_value) + "\"";            \
      uint64_t cum = 0;                                                                            \
      for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {                                     \
        cum += row.buckets[i];                                                                     \
        lines.push_back(metric + "_bucket{" + l + ",le=\"" + number(Histogram::kBounds[i]) + "\"} " + \
                        std::to_string(cum));                                                      \
      }                                                                                            \
      lines.push_back(metric + "_bucket{" + l + ",le=\"+Inf\"} " + std::to_string(row.count));     \
      lines.push_back(metric + "_sum{" + l + "} " + number(row.sum));                              \
      lines.push_back(metric + "_count{" + l + "} " + std::to_string(row.count));                  \
    }                                                                                              \
    emit(metric, "histogram", help, lines);                                                        \
  }
  MAILSHIM_HISTOGRAMS(MAILSHIM_WALK)
#undef MAILSHIM_WALK
}

}  // namespace

Family::Family(const char* name, const char* kind, const char* labels, const char* help)
    : name_(name), kind_(kind), help_(help), labels_(splitLabels(labels)) {}

void Family::add(std::initializer_list<std::string_view> values, int64_t delta) {
  std::lock_guard lock(mu_);
  auto it = rows_.find(values);
  if (it == rows_.end()) it = rows_.emplace(std::vector<std::string>(values.begin(), values.end()), 0).first;
  it->second += delta;
}

std::vector<Family::Row> Family::rows() const {
  std::lock_guard lock(mu_);
  std::vector<Row> out;
  out.reserve(rows_.size());
  for (const auto& [k, v] : rows_) out.push_back(Row{k, v});
  return out;
}

Histogram::Histogram(const char* name, const char* label, const char* help) : name_(name), label_(label), help_(help) {}

void Histogram::observe(std::string_view label_value, double seconds) {
  std::lock_guard lock(mu_);
  auto it = rows_.find(label_value);
  if (it == rows_.end()) it = rows_.emplace(std::string(label_value), Row{std::string(label_value)}).first;
  Row& r = it->second;
  for (size_t i = 0; i < kBounds.size(); ++i)
    if (seconds <= kBounds[i]) {
      r.buckets[i]++;
      break;
    }
  r.count++;
  r.sum += seconds;
}

std::vector<Histogram::Row> Histogram::rows() const {
  std::lock_guard lock(mu_);
  std::vector<Row> out;
  for (const auto& [k, v] : rows_) out.push_back(v);
  return out;
}

Stats::Stats() {
  for (size_t i = 0; i <= static_cast<size_t>(proto::CloseReason::Internal); ++i)
    sessions_closed.add({proto::closeReasonName(static_cast<proto::CloseReason>(i))}, 0);
}

Stats& stats() {
  static Stats s;
  return s;
}

std::string Stats::render() const {
  std::string out;
  auto add = [&out](std::string_view name, uint64_t v) {
    if (!out.empty()) out += ' ';
    out += name;
    out += '=';
    out += std::to_string(v);
  };
#define MAILSHIM_RENDER(name, help) \
  if (auto v = name.load()) add(#name, v);
  MAILSHIM_COUNTERS(MAILSHIM_RENDER)
#undef MAILSHIM_RENDER
  for (const auto& row : proto::quirkRegistry())
    if (auto v = quirk_uses[static_cast<size_t>(row.quirk)].load()) add("quirk." + std::string(row.id), v);
  for (const auto& row : sessions_closed.rows())
    if (row.value && !row.values.empty()) add("close." + row.values[0], static_cast<uint64_t>(row.value));
  return out;
}

std::string renderPrometheus(const Stats& s, const std::string& extra) {
  std::string out;
  walk(s, [&out](const std::string& metric, std::string_view type, std::string_view help,
                 const std::vector<std::string>& lines) {
    out += "# HELP mailshim_" + metric + " " + std::string(help) + "\n";
    out += "# TYPE mailshim_" + metric + " " + std::string(type) + "\n";
    for (const auto& l : lines) out += "mailshim_" + l + "\n";
  });
  out += extra;
  return out;
}

std::string renderText(const Stats& s) {
  std::string out;
  walk(s, [&out](const std::string&, std::string_view, std::string_view, const std::vector<std::string>& lines) {
    for (const auto& l : lines) out += l + "\n";
  });
  return out;
}

}  // namespace mailshim::proxy
