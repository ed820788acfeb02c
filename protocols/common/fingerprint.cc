// Client fingerprint heuristics. See fingerprint.h. No I/O.
#include "protocols/common/fingerprint.h"

#include <cctype>
#include <string_view>

#include "protocols/common/text.h"

namespace mailshim::proto {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = asciiLower(c);
  return out;
}

bool contains(std::string_view hay, std::string_view needle) { return lower(hay).find(lower(needle)) != std::string::npos; }

// The leading dotted number of `s` after `prefix` (case-insensitive), e.g.
// versionAfter("Microsoft Outlook 16.0.5456", "outlook ") -> "16.0.5456".
std::string versionAfter(std::string_view s, std::string_view prefix) {
  std::string l = lower(s);
  auto pos = l.find(lower(prefix));
  if (pos == std::string::npos) return {};
  pos += prefix.size();
  while (pos < s.size() && s[pos] == ' ') ++pos;
  std::string v;
  while (pos < s.size() && (std::isdigit(static_cast<unsigned char>(s[pos])) || s[pos] == '.')) v += s[pos++];
  while (!v.empty() && v.back() == '.') v.pop_back();
  return v;
}

std::string major(const std::string& v) { return v.substr(0, v.find('.')); }
std::string majorMinor(const std::string& v) {
  auto a = v.find('.');
  if (a == std::string::npos) return v;
  auto b = v.find('.', a + 1);
  return v.substr(0, b);
}

// Outlook's internal version -> marketing name where it is unambiguous.
std::string outlookName(const std::string& v) {
  std::string mm = majorMinor(v);
  if (mm == "12.0") return "Outlook 2007";
  if (mm == "14.0") return "Outlook 2010";
  if (mm == "15.0") return "Outlook 2013";
  if (mm == "11.0") return "Outlook 2003";
  if (!mm.empty()) return "Outlook " + mm;  // 16.0 covers 2016/2019/2021/365
  return "Outlook";
}

std::string fromMailer(std::string_view m) {
  if (m.empty()) return {};
  if (contains(m, "Windows Live Mail")) {
    std::string v = versionAfter(m, "Windows Live Mail ");
    if (major(v) == "16") return "Windows Live Mail 2012";
    if (major(v) == "15") return "Windows Live Mail 2011";
    return "Windows Live Mail" + (v.empty() ? std::string() : " " + major(v));
  }
  if (contains(m, "Outlook Express")) {
    std::string v = versionAfter(m, "Outlook Express ");
    return "Outlook Express" + (v.empty() ? std::string() : " " + major(v));
  }
  if (contains(m, "Outlook")) {
    std::string v = versionAfter(m, "Outlook ");
    if (v.empty()) v = versionAfter(m, "Outlook, Build ");
    return outlookName(v);
  }
  if (contains(m, "Thunderbird")) {
    std::string v = versionAfter(m, "Thunderbird/");
    if (v.empty()) v = versionAfter(m, "Thunderbird ");
    return "Thunderbird" + (v.empty() ? std::string() : " " + major(v));
  }
  if (contains(m, "Becky!")) {
    std::string v = versionAfter(m, "Becky! ver. ");
    return "Becky!" + (v.empty() ? std::string() : " " + major(v));
  }
  if (contains(m, "Apple Mail")) return "Apple Mail";
  if (contains(m, "PHPMailer")) return "PHPMailer";
  if (contains(m, "swaks")) return "swaks";
  // Unknown mailer: its first word, as is.
  std::string word;
  for (char c : m) {
    if (c == ' ' || c == '/' || word.size() >= 32) break;
    word += c;
  }
  return word;
}

std::string fromImapId(const std::map<std::string, std::string>& id) {
  auto it = id.find("name");
  if (it == id.end() || it->second.empty()) return {};
  std::string name = it->second;
  auto v = id.find("version");
  std::string version = v == id.end() ? std::string() : v->second;
  if (contains(name, "Thunderbird")) return "Thunderbird" + (version.empty() ? "" : " " + major(version));
  if (contains(name, "Microsoft Office") || contains(name, "Outlook"))
    return "Outlook" + (version.empty() ? std::string() : " " + majorMinor(version));
  if (contains(name, "iPhone Mail") || contains(name, "Mac OS X Mail") || contains(name, "Apple"))
    return "Apple Mail";
  return name + (version.empty() ? "" : " " + major(version));
}

// HELO argument shape: a bare NetBIOS-style name (WIN7-PC) is what Windows
// desktop clients send; an address literal is what Thunderbird sends.
std::string heloShape(std::string_view helo) {
  if (helo.empty()) return {};
  if (helo.front() == '[') return "address literal";
  if (helo.find('.') == std::string_view::npos) return "bare host name";
  if (iequals(helo, "localhost.localdomain") || contains(helo, ".local")) return "local name";
  return {};
}

std::string sanitize(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f || c == '\t') c = '?';
  if (s.size() > 80) s.resize(80);
  return s;
}

}  // namespace

std::string fingerprint(const FingerprintInput& in) {
  std::string tls;
  if (in.tls_max_offered == "TLSv1" || in.tls_max_offered == "TLSv1.1")
    tls = in.tls_max_offered == "TLSv1" ? "TLS 1.0" : "TLS 1.1";

  std::string software = fromMailer(!in.x_mailer.empty() ? in.x_mailer : in.user_agent);
  if (software.empty()) software = fromImapId(in.id);

  std::string detail;
  auto add = [&detail](const std::string& part) {
    if (part.empty()) return;
    detail += detail.empty() ? "" : ", ";
    detail += part;
  };
  if (software.empty()) {
    // No software name: describe the behaviour instead.
    if (in.helo_only) {
      add("HELO only");
      add(tls);
      return sanitize("scanner (" + detail + ")");
    }
    std::string shape = heloShape(in.helo);
    if (shape == "bare host name") add("Windows-style HELO");
    else add(shape);
    add(tls);
    if (in.tls_before_greeting) add("TLS before greeting");
    return detail.empty() ? "unknown" : sanitize("unknown (" + detail + ")");
  }
  add(tls);
  if (in.tls_before_greeting) add("TLS before greeting");
  return sanitize(detail.empty() ? software : software + " (" + detail + ")");
}

}  // namespace mailshim::proto
