// Stats rendering. See stats.h.
#include "proxy/stats.h"

#include <string_view>

namespace mailshim::proxy {

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
#define MAILSHIM_RENDER(name) add(#name, name.load());
  MAILSHIM_COUNTERS(MAILSHIM_RENDER)
#undef MAILSHIM_RENDER
  for (const auto& row : proto::quirkRegistry())
    if (auto v = quirk_uses[static_cast<size_t>(row.quirk)].load()) add("quirk." + std::string(row.id), v);
  for (size_t i = 0; i < worker_sessions.size(); ++i)
    if (auto v = worker_sessions[i].load()) add("worker." + std::to_string(i) + ".sessions", v);
  for (size_t i = 0; i < close_reasons.size(); ++i)
    if (auto v = close_reasons[i].load())
      add("close." + std::string(proto::closeReasonName(static_cast<proto::CloseReason>(i))), v);
  return out;
}

}  // namespace mailshim::proxy

namespace mailshim::proxy {

std::string renderPrometheus(const Stats& s, const std::string& extra) {
  std::string out;
  auto counter = [&out](const std::string& name, uint64_t v) {
    out += "# TYPE mailshim_" + name + " counter\nmailshim_" + name + " " + std::to_string(v) + "\n";
  };
#define MAILSHIM_PROM(name)                                        \
  if (std::string_view(#name) == "sessions_active") {              \
    out += "# TYPE mailshim_sessions_active gauge\n"               \
           "mailshim_sessions_active " + std::to_string(s.name.load()) + "\n"; \
  } else {                                                         \
    counter(std::string(#name) + "_total", s.name.load());         \
  }
  MAILSHIM_COUNTERS(MAILSHIM_PROM)
#undef MAILSHIM_PROM
  out += "# TYPE mailshim_quirk_uses_total counter\n";
  for (const auto& row : proto::quirkRegistry())
    out += "mailshim_quirk_uses_total{quirk=\"" + std::string(row.id) + "\"} " +
           std::to_string(s.quirk_uses[static_cast<size_t>(row.quirk)].load()) + "\n";
  out += "# TYPE mailshim_sessions_closed_total counter\n";
  for (size_t i = 0; i < s.close_reasons.size(); ++i)
    out += "mailshim_sessions_closed_total{reason=\"" +
           std::string(proto::closeReasonName(static_cast<proto::CloseReason>(i))) + "\"} " +
           std::to_string(s.close_reasons[i].load()) + "\n";
  out += "# TYPE mailshim_worker_sessions_total counter\n";
  for (size_t i = 0; i < s.worker_sessions.size(); ++i)
    if (auto v = s.worker_sessions[i].load())
      out += "mailshim_worker_sessions_total{worker=\"" + std::to_string(i) + "\"} " + std::to_string(v) + "\n";
  out += extra;
  return out;
}

}  // namespace mailshim::proxy
