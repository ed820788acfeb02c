#include "proxy/write_through.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
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

std::atomic<unsigned long> g_direct{0};
std::atomic<unsigned long> g_queued{0};

void queue(bufferevent* bev, const char* p, size_t n) {
  g_queued.fetch_add(1, std::memory_order_relaxed);
  bufferevent_write(bev, p, n);
  ensureWriting(bev);
}

}  // namespace

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
  if (evbuffer_get_length(bufferevent_get_output(bev)) != 0 || bufferevent_get_underlying(bev) != nullptr) {
    queue(bev, p, n);
    return;
  }
  if (SSL* ssl = bufferevent_openssl_get_ssl(bev)) {
    if (n > kMaxTlsWriteThrough || !SSL_is_init_finished(ssl)) {
      queue(bev, p, n);
      return;
    }
    ERR_clear_error();
    int r = SSL_write(ssl, p, static_cast<int>(n));
    if (r == static_cast<int>(n)) {
      g_direct.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Blocked (or failed): OpenSSL may hold a part-sent record of these
    // bytes; libevent's next SSL_write repeats them from the queue, and
    // reports an error through the event callback as usual.
    if (r <= 0) {
      int e = SSL_get_error(ssl, r);
      if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ERR_clear_error();
    }
    queue(bev, p, n);
    return;
  }
  evutil_socket_t fd = bufferevent_getfd(bev);
  if (fd < 0) {
    queue(bev, p, n);
    return;
  }
  ssize_t r;
  do {
    r = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  if (r == static_cast<ssize_t>(n)) {
    g_direct.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  size_t sent = r > 0 ? static_cast<size_t>(r) : 0;  // an error is reported by libevent's own write
  queue(bev, p + sent, n - sent);
}

void writeThroughOwned(bufferevent* bev, std::string& bytes) {
  if (bytes.empty()) return;
  size_t sent = 0;
  evutil_socket_t fd = bufferevent_getfd(bev);
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 && bufferevent_get_underlying(bev) == nullptr &&
      bufferevent_openssl_get_ssl(bev) == nullptr && fd >= 0) {
    ssize_t r;
    do {
      r = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r > 0) sent = static_cast<size_t>(r);
    if (sent == bytes.size()) {
      g_direct.fetch_add(1, std::memory_order_relaxed);
      bytes = std::string();
      return;
    }
  }
  g_queued.fetch_add(1, std::memory_order_relaxed);
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
  if (n > kMaxBufferWriteThrough || evbuffer_get_length(bufferevent_get_output(bev)) != 0) {
    bufferevent_write_buffer(bev, in);
    ensureWriting(bev);
    return;
  }
  const char* p = reinterpret_cast<const char*>(evbuffer_pullup(in, -1));
  if (!p) {
    bufferevent_write_buffer(bev, in);
    ensureWriting(bev);
    return;
  }
  writeThrough(bev, p, n);
  evbuffer_drain(in, n);
}

WriteThroughStats writeThroughStats() {
  return {g_direct.load(std::memory_order_relaxed), g_queued.load(std::memory_order_relaxed)};
}

}  // namespace mailshim::proxy
