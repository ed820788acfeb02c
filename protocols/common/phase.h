// The whole interface between the pure protocol phases (protocols/) and the
// network shell (proxy/). A phase never does I/O: the shell feeds it events
// (bytes, "TLS is up", "upstream connected", a login verdict, a timeout) and
// carries out the Actions it returns, in order. Keeping this vocabulary small
// and closed is what lets every phase be unit-tested by transcript.
//
// No I/O here. Standard library only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "protocols/common/directory.h"
#include "protocols/common/quirks.h"
#include "protocols/common/secret.h"

namespace mailshim::proto {

enum class Protocol : uint8_t { Smtp, Imap, Pop3 };
std::string_view protocolName(Protocol p);

// Every close has a reason with a stable name (logs, stats).
enum class CloseReason : uint8_t {
  ClientQuit,          // client said QUIT/LOGOUT
  ClientEof,           // client closed the connection
  ClientError,         // socket error on the client side
  TooManyErrors,       // max_errors protocol errors before login
  LineTooLong,         // line/literal bound exceeded and we gave up
  Timeout,             // a phase timeout fired
  TlsHandshakeFailed,  // downstream TLS handshake failed
  TlsRequired,         // plaintext where TLS is mandatory (e.g. implicit port)
  UpstreamUnavailable, // could not connect / backend refused greeting
  UpstreamTlsFailed,   // upstream STARTTLS refused/absent or certificate bad
  UpstreamProtocol,    // backend said something we cannot accept
  UpstreamLost,        // backend closed or failed mid-session
  UpstreamEof,         // backend closed normally after relay (e.g. after QUIT)
  AuthRetired,         // a sunset rule refused the client
  Shutdown,            // mailshim is stopping
  Killed,              // admin KILL
  MessageRefused,      // a message mailshim refused itself (bare CR/LF); its reply was sent
  TooManyConnections,  // per-client-address session limit ([limits] max_sessions_per_address)
  TooManyAuthFailures, // max_auth_failures failed logins in one session
  LoginTimeout,        // no completed login within login_timeout_ms of connecting
  ServerBusy,          // max_preauth_sessions reached: refused at accept
  Internal,            // a bug; logged with details (keep last: arrays are sized by it)
};
std::string_view closeReasonName(CloseReason r);

// Which downstream SASL-ish mechanism the client used; kept for logs and so the
// upstream login can pick a mechanism (it always uses PLAIN or the protocol's
// LOGIN command toward the backend).
enum class AuthMethod : uint8_t { Plain, Login, ImapLogin, Pop3User };
std::string_view authMethodName(AuthMethod m);

// Credentials collected by a front phase. The password lives in a Secret that
// wipes itself (explicit_bzero) when destroyed or moved from.
struct Credentials {
  std::string authzid;  // usually empty
  std::string user;     // validated: no CR, LF or NUL
  Secret password;      // validated: no CR, LF or NUL
  AuthMethod method = AuthMethod::Plain;
};

// --- actions (phase -> shell) ----------------------------------------------

struct SendDownstream { std::string bytes; };
struct SendUpstream { std::string bytes; };
// Begin the TLS handshake on the client leg. The phase has already queued the
// go-ahead reply (e.g. "220 2.0.0 Ready to start TLS") before this action and
// has discarded every byte it had buffered after the STARTTLS command.
struct StartTlsDownstream {};
// Begin the TLS handshake on the backend leg (after the backend's go-ahead).
struct StartTlsUpstream {};
// Open the backend connection (the shell picks the upstream from the config,
// connects from the configured source address, and for implicit TLS upstreams
// completes the handshake before reporting UpstreamConnected).
struct ConnectUpstream {};
// Hand the collected credentials to the upstream login phase, with what the
// client told us about itself that the backend should see (XCLIENT HELO=, the
// IMAP ID fields to forward). Values are already validated/normalised.
struct Authenticate {
  Credentials creds;
  std::string helo;  // SMTP: HELO/EHLO argument to pass on (after smtp.helo_normalize)
  bool esmtp = true; // SMTP: client used EHLO (XCLIENT PROTO=ESMTP) or HELO (PROTO=SMTP)
  std::vector<std::pair<std::string, std::string>> id_fields;  // IMAP: client's ID fields
};
// Login done: switch to the relay. `to_upstream` holds client bytes the front
// phase had already received after the login command (pipelined), to be sent
// once the relay runs; `to_downstream` likewise for backend bytes.
struct EnterRelay {
  std::string to_upstream;
  std::string to_downstream;
};
// The phase noticed something an admin wants in the log (a quirk applied, a
// client misbehaving). Never contains secrets: phases redact before emitting.
struct LogNote {
  enum class Level : uint8_t { Debug, Info, Warn } level = Level::Info;
  std::string text;
};
// A named quirk changed the session's behaviour. The shell counts it and logs
// one line per use (quirk id + `detail`).
struct QuirkUsed {
  Quirk quirk;
  std::string detail;
};
// The client identified itself (HELO argument, IMAP ID fields, ...). Kept for
// the session log line and XCLIENT HELO=. Values are already sanitised.
struct ClientInfo {
  std::string key;    // "helo", "id.name", ...
  std::string value;
};
// The user name is known (for the session log); never a password.
struct UserKnown { std::string user; };
// Arm (or re-arm) the session's inactivity timer for the current phase.
struct ArmTimer { uint32_t ms; };
// Close the session. Any SendDownstream queued before this is flushed first.
struct Close { CloseReason reason; };

// Result of the upstream login, produced by an UpstreamLogin phase and fed to
// the FrontPhase by the shell.
struct LoginResult {
  enum class Kind : uint8_t {
    Ok,          // backend accepted the credentials
    AuthFailed,  // backend refused the credentials (client may retry)
    TempFail,    // backend unavailable / TLS failed / protocol trouble
  } kind = Kind::TempFail;
  // The backend's final response text, already validated to be a single
  // protocol-correct line for the client's protocol without the tag or status
  // word, e.g. "[AUTHENTICATIONFAILED] Authentication failed." (IMAP),
  // "5.7.8 Error: authentication failed: ..." (SMTP, with `code`="535").
  std::string code;  // SMTP reply code ("235", "535", "454") or IMAP status ("OK"/"NO"/"BAD")
  std::string text;
  // Backend lines that must reach the client before the final reply (IMAP
  // untagged responses such as "* CAPABILITY ..." are carried inside `text`
  // as response codes instead; kept for completeness).
  std::string preface;
  // Bytes the backend sent after its final login reply (normally empty).
  std::string leftover;
};
struct LoginDone { LoginResult result; };

using Action = std::variant<SendDownstream, SendUpstream, StartTlsDownstream, StartTlsUpstream,
                            ConnectUpstream, Authenticate, EnterRelay, LogNote, QuirkUsed,
                            ClientInfo, UserKnown, ArmTimer, Close, LoginDone>;
using Actions = std::vector<Action>;

// What a phase knows about the session when it starts. Plain data, copied in.
struct SessionContext {
  std::string session_id;          // short id used in logs and x-session-ext-id
  std::string server_name;         // mailshim's host name (greeting, EHLO)
  std::string client_ip;           // textual, no brackets, e.g. "127.0.0.2" or "::1"
  uint16_t client_port = 0;
  std::string local_ip;            // the listener address the client connected to
  uint16_t local_port = 0;
  bool client_tls = false;         // downstream leg is TLS now (implicit TLS listener)
  bool starttls_available = false; // listener allows STARTTLS (tls = starttls/auto)
  QuirkSet quirks;                 // quirks enabled by the matching rule
  std::string rule_name;           // the matching rule, "" if none
  uint32_t max_line_bytes = 4096;  // pre-auth line bound
  uint32_t max_errors = 10;        // protocol errors before we close
  uint32_t preauth_timeout_ms = 60000;
  uint64_t max_message_bytes = 0;  // SMTP SIZE to advertise; 0 = no SIZE keyword

  // Retirement: quirks whose rule's sunset date has passed with
  // after_sunset = "refuse". They are NOT in `quirks`; a client that would
  // have needed one gets `retired_message` (the admin's words, any language,
  // already validated: one line, no CR/LF/NUL) in the protocol's refusal
  // instead of the standard text, and the phase emits QuirkUsed with the
  // quirk and a detail starting "retired:" so it is counted as overdue.
  QuirkSet retired_quirks;
  std::string retired_message;

  // Set by the shell after a successful login, before the relay filter is
  // made: the authenticated user (smtp.sender_align) and the quirks of the
  // rule matched with everything known at login time (user, fingerprint) —
  // the message-level quirks (smtp.display_name, smtp.rcpt_strip_quotes,
  // smtp.bare_lf, smtp.sender_align) come from these.
  std::string user;
  // smtp.display_name: account -> display name, and whether to fall back to
  // the address's local part when the directory has no name.
  DirectoryConstSharedPtr directory;
  bool display_name_fallback_local_part = false;
  size_t max_header_bytes = 256 * 1024;  // header block buffered for display_name
};

// Pre-login handling toward the client: greeting, capabilities, STARTTLS,
// collecting credentials. Implementations live in protocols/<proto>/.
class FrontPhase {
 public:
  virtual ~FrontPhase() = default;
  // Session accepted (and, for implicit TLS listeners, the handshake is done).
  virtual Actions start() = 0;
  // Bytes from the client (already decrypted). May be any split.
  virtual Actions onDownstreamData(std::string_view bytes) = 0;
  // The downstream TLS handshake finished after StartTlsDownstream.
  virtual Actions onDownstreamTls() = 0;
  // Verdict of the upstream login for the last Authenticate action.
  virtual Actions onLoginResult(const LoginResult& result) = 0;
  // The phase timer armed with ArmTimer fired.
  virtual Actions onTimeout() = 0;
};

// Pre-relay handling toward the backend: banner, EHLO/CAPABILITY, STARTTLS,
// client address forwarding (XCLIENT / ID), then the login itself.
// It reports the outcome with a LoginDone action and, after an Ok, the shell
// enters the relay. After AuthFailed the phase stays usable: the shell may
// call login() again with new credentials on the same backend connection.
class UpstreamLogin {
 public:
  virtual ~UpstreamLogin() = default;
  // TCP (and, for implicit-TLS upstreams, TLS) connection is up.
  virtual Actions onConnected() = 0;
  virtual Actions onUpstreamData(std::string_view bytes) = 0;
  // Upstream TLS handshake finished after StartTlsUpstream (certificate verified).
  virtual Actions onUpstreamTls() = 0;
  // Credentials to try. May arrive before the backend is ready; the phase
  // queues them until it is.
  virtual Actions login(Authenticate auth) = 0;
};

// Post-login stream filter for protocols whose relay is not fully opaque
// (SMTP: command/DATA awareness for message fixes and the bare-LF defence).
// It may emit SendUpstream, SendDownstream, QuirkUsed, LogNote and Close.
// IMAP and POP3 use no filter: their relay splices bytes untouched.
class RelayFilter {
 public:
  virtual ~RelayFilter() = default;
  virtual Actions onDownstreamData(std::string_view bytes) = 0;
  virtual Actions onUpstreamData(std::string_view bytes) = 0;
  // The backend closed the connection (or failed) during the relay. The
  // filter may answer the client (SMTP: a 421 unless the client had said
  // QUIT) before the shell closes the session.
  virtual Actions onUpstreamClosed() { return {}; }
};

// How the upstream connection carries the client's real address.
enum class ClientAddressMode : uint8_t { None, Xclient, ImapId, ProxyV2 };
enum class UpstreamTls : uint8_t { None, Starttls, Implicit };

struct UpstreamContext {
  std::string helo_name;         // mailshim's name for EHLO toward the backend
  UpstreamTls tls = UpstreamTls::Starttls;
  ClientAddressMode client_address = ClientAddressMode::None;
  uint32_t max_line_bytes = 8192;
};

}  // namespace mailshim::proto
