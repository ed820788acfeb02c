#include "proxy/tls_read_ahead.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace mailshim::proxy {

void enableReadAhead(SSL* ssl) {
  SSL_set_read_ahead(ssl, 1);
  SSL_set_default_read_buffer_len(ssl, kReadAheadBytes);
}

PumpResult pump(bufferevent* bev) {
  PumpResult res;
  SSL* ssl = bufferevent_openssl_get_ssl(bev);
  if (!ssl || bufferevent_get_underlying(bev) || !SSL_is_init_finished(ssl) ||
      !(bufferevent_get_enabled(bev) & EV_READ))
    return res;
  evbuffer* in = bufferevent_get_input(bev);
  size_t high = 0;
  bufferevent_getwatermark(bev, EV_READ, nullptr, &high);
  while (SSL_has_pending(ssl) && (high == 0 || evbuffer_get_length(in) < high)) {
    evbuffer_iovec v;
    if (evbuffer_reserve_space(in, 16384, &v, 1) < 1) break;
    ERR_clear_error();
    int r = SSL_read(ssl, v.iov_base, static_cast<int>(v.iov_len));
    if (r <= 0) {
      int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_ZERO_RETURN) {
        res.eof = true;
      } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        res.error = true;
      }
      ERR_clear_error();
      break;
    }
    v.iov_len = static_cast<size_t>(r);
    evbuffer_commit_space(in, &v, 1);
    res.added += static_cast<size_t>(r);
  }
  return res;
}

}  // namespace mailshim::proxy
