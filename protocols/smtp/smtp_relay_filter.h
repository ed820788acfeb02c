// SmtpRelayFilter: the SMTP relay after login. Bytes pass through unchanged in
// both directions unless a quirk of the session says otherwise, but the
// filter follows the conversation: client command lines versus message
// content (RFC 5321 sections 3.3 and 4.1.1.4, BDAT of RFC 3030), and one
// backend reply per forwarded command with pipelining (RFC 2920). DATA enters
// content mode only when its reply is 354; client bytes arriving while a DATA
// reply is outstanding are held until then. The message body is streamed,
// never buffered whole, up to the end-of-data "\r\n.\r\n" (dot-stuffing
// untouched). The backend's answer to the end of data is logged ("message
// accepted: ..." / "message rejected: ...").
//
// XCLIENT and XFORWARD from the client are answered locally with 502 and never
// forwarded (security invariant 8: the client must not be able to claim
// another address toward a backend that trusts mailshim).
//
// Command quirks (each use reported with QuirkUsed, nothing changed silently):
// * smtp.rcpt_strip_quotes: `RCPT TO:<'a@b'>` -> `RCPT TO:<a@b>` (iRedMail's
//   command_filter.pcre rule, byte for byte).
// * smtp.sender_align: MAIL FROM's reverse-path becomes the login name
//   (SessionContext::user, when it is a plain address), ESMTP parameters kept
//   byte-exact, the null sender <> left alone.
//
// Message content (DATA only; BDAT chunks are length-framed, so neither the
// smuggling question nor a header rewrite applies and they pass untouched):
// * SMTP smuggling defence (client-quirks.md section 6 case 29). The only
//   end-of-data is "\r\n.\r\n". A bare LF, or a CR not followed by LF, makes
//   the message unacceptable: a backend could read such a line end
//   differently from mailshim and find an end-of-data (and smuggled
//   commands) that mailshim did not see. Once DATA content has started, the
//   only ways to end the backend's transaction are an end-of-data (which
//   would DELIVER the truncated message) or closing the connection (Postfix
//   discards an unfinished message: "lost connection after DATA"). So at the
//   first bare CR or LF the filter stops forwarding — nothing after it, and
//   no CR that is not yet known to be followed by LF, ever reaches the
//   backend, and a "." line is never sent — and keeps reading the client's
//   content. At the end of the refused message (a "." line after any line
//   end: the client's own end-of-data, however it spells it) the client gets
//   "550 5.6.11 Bare CR or LF in message content; use CRLF line ends" (the
//   code Exchange Online uses for the same refusal; the admin's retirement
//   message instead when smtp.bare_lf was retired), and the filter emits
//   Close(ClientError): the shell closes both legs, the backend drops the
//   unfinished message, and no byte the client sent after that "." line is
//   ever interpreted. A permanent 5xx after the client's end-of-data is what
//   it can show its user; a 421 mid-DATA would make it retry forever.
// * smtp.bare_lf: bare LF and bare CR become CRLF toward the backend, and a
//   "." line after any line end (e.g. "\n.\n") is the end-of-data, sent as
//   ".\r\n" — mailshim and the backend then read the same message. Reported
//   once per message with the counts.
// * Header block: the first max_header_bytes of content are held until the
//   header section ends (see smtp_header.h); larger sections are forwarded
//   unchanged (LogNote). The first X-Mailer and User-Agent fields become
//   ClientInfo{"x-mailer"|"user-agent"} (client fingerprints).
//   smtp.display_name: when the FIRST From field is a single mailbox with an
//   address and no display name, the directory's name for THAT address (the
//   name must belong to the mailbox shown, e.g. a shared info@ address is
//   not given the sender's personal name), else its local part when
//   display_name_fallback_local_part, is inserted (rfc2047.h). Every other
//   byte of the message is forwarded unchanged.
//
// No I/O. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "protocols/common/phase.h"
#include "protocols/smtp/smtp_command.h"
#include "protocols/smtp/smtp_header.h"
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
  // Standard refusal text for a message with a bare CR or LF.
  static constexpr std::string_view kBareLineEndText = "Bare CR or LF in message content; use CRLF line ends";

  // Reads quirks, retired_quirks, retired_message, user, directory,
  // display_name_fallback_local_part and max_header_bytes from `ctx`.
  explicit SmtpRelayFilter(const SessionContext& ctx);

  Actions onDownstreamData(std::string_view bytes) override;
  Actions onUpstreamData(std::string_view bytes) override;
  // The backend went away: "421 4.4.2 ... backend connection lost" and
  // Close(UpstreamLost), unless the client said QUIT or the backend's last
  // reply already announced the close (421, 221). A client in the middle of a
  // transaction is told, as with a reset, instead of seeing a bare close.
  Actions onUpstreamClosed() override;

 private:
  enum class Expect : uint8_t { Normal, Data, EndOfData, Bdat, BdatLast, Local };
  struct Pending {
    Expect kind;
    std::string local;  // reply bytes for Expect::Local
  };
  enum class Mode : uint8_t { Command, LongLine, WaitDataReply, Content, BdatChunk, Closed };
  // Position in the current content line. Strict mode holds a CR (Cr, DotCr)
  // and a line-initial dot (Dot, DotCr) until the next byte tells what they are.
  enum class Line : uint8_t { Start, Mid, Cr, Dot, DotCr };

  void processClient();  // scans held_
  // Interprets client bytes; returns how many were consumed (the rest must be held).
  size_t scanClient(std::string_view data);
  void handleCommandLine(std::string_view line);
  void expect(Expect kind);
  void localReply(std::string bytes);
  void onReply(const Reply& r);
  void drainLocal();
  void goOpaque(std::string why);
  std::string rewriteCommand(std::string_view text, Verb verb);

  // DATA content.
  void startMessage();
  // Consumes content bytes up to and including the end-of-data; sets `end`
  // when it was reached (or the refused message ended).
  size_t scanContent(std::string_view in, bool& end);
  size_t scanStrict(std::string_view in, std::string& out, bool& end);
  size_t scanLenient(std::string_view in, std::string& out, bool& end);
  size_t scanRefused(std::string_view in, bool& end);
  void refuse(bool bare_lf);
  void endOfData();
  void emitContent(std::string_view chunk);
  void processHeader();
  void rewriteFrom(std::string& block, const HeaderField& from);

  Actions take();

  std::string name_;
  QuirkSet quirks_;
  QuirkSet retired_;
  std::string retired_message_;  // "" when unset or not a safe reply text
  std::string user_;             // login name when it is a plain address
  std::string raw_user_;         // as set by the shell (for a log note)
  DirectoryConstSharedPtr directory_;
  bool fallback_local_part_ = false;
  size_t max_header_bytes_;
  bool sender_note_done_ = false;

  std::string held_;  // client bytes not yet forwarded
  Mode mode_ = Mode::Command;
  uint64_t bdat_left_ = 0;
  std::deque<Pending> queue_;
  ReplyParser parser_;
  bool opaque_ = false;  // tracking lost: plain splice from now on
  bool quit_ = false;    // the client said QUIT
  bool said_bye_ = false;  // the backend's last reply was 421 or 221

  // The message being received.
  Line line_ = Line::Start;
  bool swallow_lf_ = false;  // smtp.bare_lf: a CR went out as CRLF; an LF right after it belongs to it
  bool refusing_ = false;    // strict: a bare CR/LF was seen; discarding to the end of the message
  uint64_t bare_lf_ = 0;
  uint64_t bare_cr_ = 0;
  bool in_header_ = true;
  HeaderCollector header_;

  Actions acts_;
  std::string up_;
  std::string down_;
  std::optional<CloseReason> close_;  // emitted by take() after the last send
};

}  // namespace mailshim::proto::smtp
