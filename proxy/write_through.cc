#include "proxy/write_through.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>

namespace mailshim::proxy {

namespace {

// libevent's bufferevent_openssl retries a blocked SSL_write with the
// buffer's first chain, up to one write frame; a TLS write-through that
// blocks must leave the same bytes there (OpenSSL requires the retry to
// repeat them: SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, which libevent sets,
// allows a new address and a longer length, never a shorter one).
constexpr size_t kMaxTlsWriteThrough = 15000;  // libevent 2.1's WRITE_FRAME
constexpr size_t kMaxBufferWriteThrough = 16384;

// Per worker thread: a shared atomic would bounce one cache line between
// the workers on every reply.
thread_local WriteThroughStats t_stats;

// Nothing queued and no filter below: bytes written now keep their order.
bool canWriteNow(bufferevent* bev) {
  return evbuffer_get_length(bufferevent_get_output(bev)) == 0 && bufferevent_get_underlying(bev) == nullptr;
}

// send() on the plain socket of `bev`; returns the bytes the socket took
// (0 on EAGAIN or an error, which libevent's own write then reports).
size_t sendNow(bufferevent* bev, const char* p, size_t n) {
  evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0) return 0;
  ssize_t r;
  do {
    r = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  return r > 0 ? static_cast<size_t>(r) : 0;
}

}  // namespace

void writeQueued(bufferevent* bev, const char* p, size_t n) {
  ++t_stats.queued;
  bufferevent_write(bev, p, n);
  ensureWriting(bev);
}

void ensureWriting(bufferevent* bev) {
  if (!(bufferevent_get_enabled(bev) & EV_WRITE)) bufferevent_enable(bev, EV_WRITE);
}

bufferevent* newTlsSocketBufferevent(event_base* base, int fd, ssl_st* ssl, int state, int options) {
  // Created without its fd, write interest off, then given the fd: nothing
  // is armed until the caller enables EV_READ.
  bufferevent* bev =
      bufferevent_openssl_socket_new(base, -1, ssl, static_cast<bufferevent_ssl_state>(state), options);
  if (!bev) return nullptr;
  bufferevent_disable(bev, EV_WRITE);
  if (bufferevent_setfd(bev, fd) != 0) {
    // As bufferevent_openssl_socket_new fails: the SSL and the fd stay the
    // caller's (the free would close the fd through the SSL's BIO and free
    // the SSL).
    SSL_set_bio(ssl, nullptr, nullptr);
    SSL_up_ref(ssl);
    bufferevent_free(bev);
    return nullptr;
  }
  return bev;
}

void writeThrough(bufferevent* bev, const char* p, size_t n) {
  if (n == 0) return;
  if (!canWriteNow(bev)) {
    writeQueued(bev, p, n);
    return;
  }
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
    if (n > kMaxTlsWriteThrough || !SSL_is_init_finished(ssl)) {
      writeQueued(bev, p, n);
      return;
    }
    ERR_clear_error();
    int r = SSL_write(ssl, p, static_cast<int>(n));
    if (r == static_cast<int>(n)) {
      ++t_stats.direct;
      return;
    }
    // Blocked (or failed): OpenSSL may hold a part-sent record of these
    // bytes; libevent's next SSL_write repeats them from the queue, and
    // reports an error through the event callback as usual.
    if (r <= 0) {
      int e = SSL_get_error(ssl, r);
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ERR_clear_error();
    }
    writeQueued(bev, p, n);
    return;
  }
  size_t sent = sendNow(bev, p, n);
  if (sent == n) {
    ++t_stats.direct;
    return;
  }
  writeQueued(bev, p + sent, n - sent);
}

void writeThroughOwned(bufferevent* bev, std::string& bytes) {
  if (bytes.empty()) return;
  size_t sent = 0;
  if (canWriteNow(bev) && bufferevent_openssl_get_ssl(bev) == nullptr) {
    sent = sendNow(bev, bytes.data(), bytes.size());
    if (sent == bytes.size()) {
      ++t_stats.direct;
      // Freed, not just emptied: `bytes = std::string()` keeps the buffer
      // (libstdc++ copies a short string into it), and the caller's wipe()
      // would then clear all of its capacity for every block relayed.
      std::string().swap(bytes);
      return;
    }
  }
  ++t_stats.queued;
  auto* held = new std::string(std::move(bytes));
  bytes = std::string();
  auto done = [](const void*, size_t, void* p) { delete static_cast<std::string*>(p); };
  if (evbuffer_add_reference(bufferevent_get_output(bev), held->data() + sent, held->size() - sent, done, held) != 0) {
    bufferevent_write(bev, held->data() + sent, held->size() - sent);
    delete held;
  }
  ensureWriting(bev);
}

void writeThroughBuffer(bufferevent* bev, evbuffer* in) {
  size_t n = evbuffer_get_length(in);
  if (n == 0) return;
  // One reply: made contiguous (usually one chain already) and sent now.
  const char* p = n <= kMaxBufferWriteThrough && evbuffer_get_length(bufferevent_get_output(bev)) == 0
                      ? reinterpret_cast<const char*>(evbuffer_pullup(in, -1))
                      : nullptr;
  if (p) {
    writeThrough(bev, p, n);
    evbuffer_drain(in, n);
    return;
  }
  bufferevent_write_buffer(bev, in);  // moved, not copied
  ensureWriting(bev);
}

WriteThroughStats writeThroughStats() { return t_stats; }

}  // namespace mailshim::proxy
