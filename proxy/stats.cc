// Stats rendering. See stats.h.
#include "proxy/stats.h"

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
