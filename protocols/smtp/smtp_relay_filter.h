// SmtpRelayFilter: the SMTP relay after login. Bytes pass through unchanged in
// both directions, but the filter follows the conversation: client command
// lines versus message content (RFC 5321 sections 3.3 and 4.1.1.4, BDAT of
// RFC 3030), and one backend reply per forwarded command with pipelining
// (RFC 2920). DATA enters content mode only when its reply is 354; client
// bytes arriving while a DATA reply is outstanding are held until then.
// Content is streamed, never buffered whole, up to the end-of-data
// "\r\n.\r\n" (dot-stuffing untouched). The backend's answer to the end of
// data is logged ("message accepted: ..." / "message rejected: ...").
//
// XCLIENT and XFORWARD from the client are answered locally with 502 and never
// forwarded (security invariant 8: the client must not be able to claim
// another address toward a backend that trusts mailshim).
//
// Extension points for later quirks: rewriteCommand() sees every complete
// command line before it is forwarded, and emitContent() sees the message
// content in order (the place to buffer a bounded header block).
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "protocols/common/phase.h"
#include "protocols/smtp/smtp_reply.h"

namespace mailshim::proto::smtp {

class SmtpRelayFilter final : public RelayFilter {
 public:
  // Longest command line interpreted; longer lines are streamed to the
  // backend uninterpreted (it will refuse them) and counted as one command.
  static constexpr size_t kMaxCommandLine = 4096;
  // Client bytes held while a DATA reply is outstanding, beyond which the
  // session is closed (CloseReason::LineTooLong).
  static constexpr size_t kMaxHeldBytes = 1024 * 1024;
  // Backend reply lines (multi-line EHLO replies included) are bounded too.
  static constexpr size_t kMaxReplyLine = 8192;

  explicit SmtpRelayFilter(const SessionContext& ctx);

  Actions onDownstreamData(std::string_view bytes) override;
  Actions onUpstreamData(std::string_view bytes) override;

 private:
  enum class Expect : uint8_t { Normal, Data, EndOfData, Bdat, BdatLast, Local };
  struct Pending {
    Expect kind;
    std::string local;  // reply bytes for Expect::Local
  };
  enum class Mode : uint8_t { Command, LongLine, WaitDataReply, Content, BdatChunk, Closed };
  // End-of-data matcher over "\r\n.\r\n".
  enum class Eod : uint8_t { Mid, Cr, LineStart, Dot, DotCr };

  void processClient();
  void handleCommandLine(std::string_view line);
  void expect(Expect kind);
  void localReply(std::string bytes);
  void onReply(const Reply& r);
  void drainLocal();
  void goOpaque(std::string why);
  // Hooks (identity today).
  std::string rewriteCommand(std::string_view line);
  void emitContent(std::string_view chunk);
  Actions take();

  std::string name_;
  std::string held_;  // client bytes not yet forwarded
  Mode mode_ = Mode::Command;
  Eod eod_ = Eod::LineStart;
  uint64_t bdat_left_ = 0;
  std::deque<Pending> queue_;
  ReplyParser parser_;
  bool opaque_ = false;  // tracking lost: plain splice from now on

  Actions acts_;
  std::string up_;
  std::string down_;
};

}  // namespace mailshim::proto::smtp
