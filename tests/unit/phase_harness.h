// Test harness for the pure phases: feeds input whole, byte by byte or at
// random split points, and flattens the returned Actions into something easy
// to assert on (all bytes sent each way, the last Authenticate, close reason).
// Header-only; used by every protocol's unit and transcript tests.
#pragma once

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocols/common/phase.h"

namespace mailshim::testing {

enum class Split { Whole, ByteByByte, Random };
inline const Split kAllSplits[] = {Split::Whole, Split::ByteByByte, Split::Random};
inline const char* splitName(Split s) {
  return s == Split::Whole ? "whole" : s == Split::ByteByByte ? "bytewise" : "random";
}

// Flattened view of a list of actions.
struct Outcome {
  std::string down;  // concatenation of SendDownstream
  std::string up;    // concatenation of SendUpstream
  int starttls_down = 0;
  int starttls_up = 0;
  int connect_up = 0;
  std::vector<proto::Authenticate> auths;
  std::optional<proto::EnterRelay> relay;
  std::optional<proto::CloseReason> close;
  std::optional<proto::LoginResult> login_done;
  std::vector<proto::QuirkUsed> quirks;
  std::vector<proto::LogNote> notes;
  std::vector<proto::ClientInfo> infos;
  std::vector<std::string> users;
  std::vector<uint32_t> timers;
  // Order-preserving trace: "D:<bytes>", "U:<bytes>", "TLS-DOWN", ... handy for
  // checking that nothing is sent after a STARTTLS go-ahead.
  std::vector<std::string> trace;

  void add(proto::Actions&& actions) {
    for (auto& a : actions) add(std::move(a));
  }
  void add(proto::Action&& a) {
    std::visit(
        [this](auto&& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, proto::SendDownstream>) {
            down += v.bytes;
            trace.push_back("D:" + v.bytes);
          } else if constexpr (std::is_same_v<T, proto::SendUpstream>) {
            up += v.bytes;
            trace.push_back("U:" + v.bytes);
          } else if constexpr (std::is_same_v<T, proto::StartTlsDownstream>) {
            ++starttls_down;
            trace.push_back("TLS-DOWN");
          } else if constexpr (std::is_same_v<T, proto::StartTlsUpstream>) {
            ++starttls_up;
            trace.push_back("TLS-UP");
          } else if constexpr (std::is_same_v<T, proto::ConnectUpstream>) {
            ++connect_up;
            trace.push_back("CONNECT");
          } else if constexpr (std::is_same_v<T, proto::Authenticate>) {
            trace.push_back("AUTH:" + v.creds.user);
            auths.push_back(std::move(v));
          } else if constexpr (std::is_same_v<T, proto::EnterRelay>) {
            trace.push_back("RELAY");
            relay = std::move(v);
          } else if constexpr (std::is_same_v<T, proto::Close>) {
            trace.push_back("CLOSE");
            close = v.reason;
          } else if constexpr (std::is_same_v<T, proto::LoginDone>) {
            trace.push_back("LOGIN-DONE");
            login_done = std::move(v.result);
          } else if constexpr (std::is_same_v<T, proto::QuirkUsed>) {
            quirks.push_back(std::move(v));
          } else if constexpr (std::is_same_v<T, proto::LogNote>) {
            notes.push_back(std::move(v));
          } else if constexpr (std::is_same_v<T, proto::ClientInfo>) {
            infos.push_back(std::move(v));
          } else if constexpr (std::is_same_v<T, proto::UserKnown>) {
            users.push_back(v.user);
          } else if constexpr (std::is_same_v<T, proto::ArmTimer>) {
            timers.push_back(v.ms);
          }
        },
        std::move(a));
  }
  bool hasQuirk(proto::Quirk q) const {
    for (const auto& u : quirks)
      if (u.quirk == q) return true;
    return false;
  }
};

// Feeds `input` through `sink` (e.g. a lambda calling phase.onDownstreamData)
// in the chosen split pattern and collects every action into `out`.
inline void feedSplit(std::string_view input, Split split, uint32_t seed,
                      const std::function<proto::Actions(std::string_view)>& sink, Outcome& out) {
  if (split == Split::Whole) {
    out.add(sink(input));
    return;
  }
  if (split == Split::ByteByByte) {
    for (size_t i = 0; i < input.size(); ++i) out.add(sink(input.substr(i, 1)));
    return;
  }
  std::mt19937 rng(seed);
  size_t pos = 0;
  while (pos < input.size()) {
    size_t n = 1 + rng() % 7;
    if (n > input.size() - pos) n = input.size() - pos;
    out.add(sink(input.substr(pos, n)));
    pos += n;
  }
}

inline proto::SessionContext defaultContext() {
  proto::SessionContext c;
  c.session_id = "T0001";
  c.server_name = "mail.example.test";
  c.client_ip = "127.0.0.1";
  c.client_port = 50000;
  c.local_ip = "127.0.0.1";
  c.local_port = 10587;
  c.client_tls = false;
  c.starttls_available = true;
  c.max_message_bytes = 15728640;
  return c;
}

}  // namespace mailshim::testing
