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
#define MAILSHIM_RENDER(name) add(#name, name);
  MAILSHIM_COUNTERS(MAILSHIM_RENDER)
#undef MAILSHIM_RENDER
  for (const auto& row : proto::quirkRegistry())
    if (auto v = quirk_uses[static_cast<size_t>(row.quirk)]) add("quirk." + std::string(row.id), v);
  for (size_t i = 0; i < close_reasons.size(); ++i)
    if (close_reasons[i])
      add("close." + std::string(proto::closeReasonName(static_cast<proto::CloseReason>(i))), close_reasons[i]);
  return out;
}

}  // namespace mailshim::proxy
