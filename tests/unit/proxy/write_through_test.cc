// writeThrough(): replies leave at once when nothing is queued (plain socket
// and OpenSSL socket bufferevents), and everything else keeps libevent's
// queue and its order — socket full, data already queued, writing disabled,
// handshake not done, filter stacks. Real sockets (socketpair), a real TLS
// handshake with a throwaway certificate, no mocks.
#include "proxy/write_through.h"
#include "proxy/tls_read_ahead.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace mailshim::proxy {
namespace {

struct Pair {
  event_base* base = event_base_new();
  int fd[2] = {-1, -1};
  Pair() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    evutil_make_socket_nonblocking(fd[0]);
    evutil_make_socket_nonblocking(fd[1]);
  }
  ~Pair() {
    if (fd[1] >= 0) ::close(fd[1]);
    event_base_free(base);
  }
  // Everything readable on fd[1] right now, without running the loop.
  std::string readPeer() {
    std::string out;
    char b[65536];
    for (;;) {
      ssize_t r = ::recv(fd[1], b, sizeof b, MSG_DONTWAIT);
      if (r <= 0) break;
      out.append(b, static_cast<size_t>(r));
    }
    return out;
  }
  void loopOnce() { event_base_loop(base, EVLOOP_NONBLOCK); }
  // What fd[1] receives while the loop runs, until `want` bytes (bounded).
  std::string receive(size_t want) {
    std::string got;
    for (int i = 0; i < 10000 && got.size() < want; ++i) {
      got += readPeer();
      loopOnce();
    }
    return got + readPeer();
  }
  // A plain socket bufferevent on fd[0] with `events` enabled, optionally
  // with a small send buffer (so that the socket fills up).
  bufferevent* plain(short events, int sndbuf = 0) {
    if (sndbuf) setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    bufferevent* bev = bufferevent_socket_new(base, fd[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_enable(bev, events);
    return bev;
  }
};

size_t queued(bufferevent* bev) { return evbuffer_get_length(bufferevent_get_output(bev)); }

TEST(WriteThrough, PlainSocketSendsAtOnceWithoutTheLoop) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ | EV_WRITE);
  auto before = writeThroughStats();
  writeThrough(bev, "220 ready\r\n", 11);
  EXPECT_EQ(queued(bev), 0u);
  EXPECT_EQ(p.readPeer(), "220 ready\r\n");  // no loop iteration needed
  EXPECT_EQ(writeThroughStats().direct, before.direct + 1);
  bufferevent_free(bev);
}

TEST(WriteThrough, QueuedDataKeepsItsPlaceInFront) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ | EV_WRITE);
  bufferevent_write(bev, "first\r\n", 7);  // waits for the loop
  writeThrough(bev, "second\r\n", 8);
  EXPECT_EQ(p.readPeer(), "");  // nothing overtook the queue
  EXPECT_EQ(queued(bev), 15u);
  p.loopOnce();
  p.loopOnce();
  EXPECT_EQ(p.readPeer(), "first\r\nsecond\r\n");
  bufferevent_free(bev);
}

TEST(WriteThrough, WriteInterestIsEnabledWhenSomethingIsQueued) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ);
  bufferevent_disable(bev, EV_WRITE);  // enabled by default
  writeThrough(bev, "x\r\n", 3);     // nothing queued: sent, interest stays off
  EXPECT_EQ(p.readPeer(), "x\r\n");
  EXPECT_FALSE(bufferevent_get_enabled(bev) & EV_WRITE);
  bufferevent_write(bev, "y\r\n", 3);  // something queued by other means ...
  writeThrough(bev, "z\r\n", 3);       // ... keeps its place, and writing is on
  EXPECT_TRUE(bufferevent_get_enabled(bev) & EV_WRITE);
  p.loopOnce();
  p.loopOnce();
  EXPECT_EQ(p.readPeer(), "y\r\nz\r\n");
  bufferevent_free(bev);
}

TEST(WriteThrough, FullSocketQueuesTheRestInOrder) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ | EV_WRITE, /*sndbuf=*/4096);
  std::string big;
  for (int i = 0; big.size() < 600000; ++i) big += "line " + std::to_string(i) + "\r\n";
  writeThrough(bev, big.data(), big.size());
  EXPECT_GT(queued(bev), 0u);  // the socket could not take it all
  writeThrough(bev, "tail\r\n", 6);
  EXPECT_EQ(p.receive(big.size() + 6), big + "tail\r\n");
  bufferevent_free(bev);
}

TEST(WriteThrough, BufferMovesSmallRepliesAtOnceAndLargeOnesByQueue) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ | EV_WRITE);
  evbuffer* in = evbuffer_new();
  evbuffer_add(in, "* OK ", 5);
  evbuffer_add(in, "NOOP done\r\n", 11);
  writeThroughBuffer(bev, in);
  EXPECT_EQ(evbuffer_get_length(in), 0u);
  EXPECT_EQ(p.readPeer(), "* OK NOOP done\r\n");
  std::string big(100000, 'a');
  evbuffer_add(in, big.data(), big.size());
  writeThroughBuffer(bev, in);  // bulk: moved, not pulled up and sent here
  EXPECT_EQ(evbuffer_get_length(in), 0u);
  EXPECT_EQ(queued(bev), big.size());
  EXPECT_EQ(p.receive(big.size()), big);
  evbuffer_free(in);
  bufferevent_free(bev);
}

TEST(WriteThrough, OwnedBlockIsSentOrQueuedByReferenceInOrder) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ, /*sndbuf=*/4096);
  std::string a = "small block\r\n";
  writeThroughOwned(bev, a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(queued(bev), 0u);
  EXPECT_EQ(p.readPeer(), "small block\r\n");
  std::string big;
  for (int i = 0; big.size() < 500000; ++i) big += "content " + std::to_string(i) + "\r\n";
  std::string b = big, c = "after\r\n";
  writeThroughOwned(bev, b);  // part sent, the rest held by reference
  EXPECT_TRUE(b.empty());
  EXPECT_LT(b.capacity(), 100u);  // the block went with it
  EXPECT_GT(queued(bev), 0u);
  writeThroughOwned(bev, c);  // behind it
  EXPECT_EQ(p.receive(big.size() + 7), big + "after\r\n");
  bufferevent_free(bev);
}

// A block the socket takes whole is freed, not kept in the caller's string:
// the session wipes every SendUpstream it has run, and would otherwise clear
// the whole block's capacity once more for nothing.
TEST(WriteThrough, OwnedBlockSentWholeIsFreed) {
  Pair p;
  bufferevent* bev = p.plain(EV_READ);
  std::string block(16384, 'x');
  writeThroughOwned(bev, block);
  EXPECT_TRUE(block.empty());
  EXPECT_LT(block.capacity(), 100u);
  EXPECT_EQ(queued(bev), 0u);
  EXPECT_EQ(p.receive(16384), std::string(16384, 'x'));
  bufferevent_free(bev);
}

// --- TLS ---------------------------------------------------------------------

struct Tls {
  SSL_CTX* server = SSL_CTX_new(TLS_server_method());
  SSL_CTX* client = SSL_CTX_new(TLS_client_method());
  Tls() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mail.test"), -1,
                               -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(server, cert);
    SSL_CTX_use_PrivateKey(server, key);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~Tls() {
    SSL_CTX_free(server);
    SSL_CTX_free(client);
  }
};

struct TlsPair {
  Pair p;
  Tls t;
  bufferevent* srv = nullptr;
  bufferevent* cli = nullptr;
  std::string received;  // plaintext the client read
  bool up[2] = {false, false};
  size_t srv_reads = 0;    // server read callbacks
  bool srv_eof = false;    // libevent reported the server side's EOF
  bool srv_pump = false;   // pump() in the server's read callback, as Session does
  explicit TlsPair(bool read_ahead = false) {
    // The server side as mailshim makes it: no write interest, read only.
    SSL* ssl = SSL_new(t.server);
    if (read_ahead) enableReadAhead(ssl);
    srv = newTlsSocketBufferevent(p.base, p.fd[0], ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    cli = bufferevent_openssl_socket_new(p.base, p.fd[1], SSL_new(t.client), BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    p.fd[1] = -1;  // owned by cli
    bufferevent_setcb(srv, srvReadCb, nullptr, eventCb, this);
    bufferevent_setcb(cli, readCb, nullptr, eventCb, this);
    bufferevent_enable(srv, EV_READ);
    bufferevent_enable(cli, EV_READ | EV_WRITE);
  }
  ~TlsPair() {
    bufferevent_free(cli);
    bufferevent_free(srv);
  }
  static void eventCb(bufferevent* bev, short what, void* arg) {
    auto* self = static_cast<TlsPair*>(arg);
    if (what & BEV_EVENT_CONNECTED) self->up[bev == self->srv ? 0 : 1] = true;
    if ((what & BEV_EVENT_EOF) && bev == self->srv) self->srv_eof = true;
  }
  static void srvReadCb(bufferevent* bev, void* arg) {
    auto* self = static_cast<TlsPair*>(arg);
    ++self->srv_reads;
    if (self->srv_pump) pump(bev);
  }
  static void readCb(bufferevent* bev, void* arg) {
    auto* self = static_cast<TlsPair*>(arg);
    evbuffer* in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    std::string s(n, '\0');
    evbuffer_remove(in, s.data(), n);
    self->received += s;
  }
  bool handshake() {
    for (int i = 0; i < 1000 && !(up[0] && up[1]); ++i) p.loopOnce();
    return up[0] && up[1];
  }
};

TEST(WriteThrough, TlsWritesAtOnceAfterTheHandshake) {
  TlsPair tp;
  auto before = writeThroughStats();
  writeThrough(tp.srv, "* BAD too early\r\n", 17);  // handshake not done: queued
  EXPECT_EQ(writeThroughStats().queued, before.queued + 1);
  ASSERT_TRUE(tp.handshake());
  for (int i = 0; i < 100 && tp.received.size() < 17; ++i) tp.p.loopOnce();
  EXPECT_EQ(tp.received, "* BAD too early\r\n");
  tp.received.clear();
  before = writeThroughStats();
  writeThrough(tp.srv, "* OK ready\r\n", 12);
  EXPECT_EQ(writeThroughStats().direct, before.direct + 1);
  EXPECT_EQ(queued(tp.srv), 0u);
  for (int i = 0; i < 100 && tp.received.size() < 12; ++i) tp.p.loopOnce();
  EXPECT_EQ(tp.received, "* OK ready\r\n");
}

TEST(WriteThrough, TlsLargerThanOneFrameTakesTheQueueInOrder) {
  TlsPair tp;
  ASSERT_TRUE(tp.handshake());
  std::string big(40000, 'b');
  auto before = writeThroughStats();
  writeThrough(tp.srv, big.data(), big.size());
  writeThrough(tp.srv, "end\r\n", 5);
  EXPECT_EQ(writeThroughStats().direct, before.direct);  // both queued: the first was too big, then order
  for (int i = 0; i < 1000 && tp.received.size() < big.size() + 5; ++i) tp.p.loopOnce();
  EXPECT_EQ(tp.received, big + "end\r\n");
}

// libevent 2.1 drains only SSL_pending() (the current record) after a read
// event; with read-ahead the next records sit inside OpenSSL and the socket
// never becomes readable again for them. This is why Session pumps.
TEST(TlsReadAhead, LibeventAloneStrandsRecordsOpenSslReadAhead) {
  TlsPair tp(/*read_ahead=*/true);
  ASSERT_TRUE(tp.handshake());
  std::string data(60000, 'd');  // 4 records of <= 15000 bytes (libevent's write frame)
  bufferevent_write(tp.cli, data.data(), data.size());
  for (int i = 0; i < 200; ++i) tp.p.loopOnce();
  SSL* ssl = bufferevent_openssl_get_ssl(tp.srv);
  size_t got = evbuffer_get_length(bufferevent_get_input(tp.srv));
  EXPECT_GT(tp.srv_reads, 0u);
  EXPECT_LT(got, data.size());
  EXPECT_TRUE(SSL_has_pending(ssl));
  // pump() delivers the rest without any socket event.
  PumpResult r = pump(tp.srv);
  EXPECT_EQ(got + r.added, data.size());
  EXPECT_FALSE(r.eof || r.error);
  EXPECT_FALSE(SSL_has_pending(ssl));
}

TEST(TlsReadAhead, PumpInTheReadCallbackDeliversEverything) {
  TlsPair tp(/*read_ahead=*/true);
  tp.srv_pump = true;
  ASSERT_TRUE(tp.handshake());
  std::string data;
  for (int i = 0; data.size() < 200000; ++i) data += "line " + std::to_string(i) + "\r\n";
  bufferevent_write(tp.cli, data.data(), data.size());
  std::string got;
  evbuffer* in = bufferevent_get_input(tp.srv);
  for (int i = 0; i < 2000 && got.size() < data.size(); ++i) {
    tp.p.loopOnce();
    size_t n = evbuffer_get_length(in);
    std::string chunk(n, '\0');
    evbuffer_remove(in, chunk.data(), n);
    got += chunk;
  }
  EXPECT_EQ(got, data);
}

TEST(TlsReadAhead, PumpRespectsDisabledReadingAndTheHighWaterMark) {
  TlsPair tp(/*read_ahead=*/true);
  ASSERT_TRUE(tp.handshake());
  std::string data(60000, 'e');
  bufferevent_write(tp.cli, data.data(), data.size());
  for (int i = 0; i < 200; ++i) tp.p.loopOnce();
  size_t before = evbuffer_get_length(bufferevent_get_input(tp.srv));
  ASSERT_LT(before, data.size());
  bufferevent_disable(tp.srv, EV_READ);
  EXPECT_EQ(pump(tp.srv).added, 0u);  // paused: nothing taken
  bufferevent_enable(tp.srv, EV_READ);
  bufferevent_setwatermark(tp.srv, EV_READ, 0, before + 1);
  PumpResult r = pump(tp.srv);  // stops once the input reaches the mark
  EXPECT_GT(r.added, 0u);
  EXPECT_LT(before + r.added, data.size());
  bufferevent_setwatermark(tp.srv, EV_READ, 0, 0);
  r = pump(tp.srv);
  EXPECT_EQ(evbuffer_get_length(bufferevent_get_input(tp.srv)), data.size());
}

TEST(TlsReadAhead, PumpReportsCloseNotify) {
  TlsPair tp(/*read_ahead=*/true);
  ASSERT_TRUE(tp.handshake());
  SSL* cssl = bufferevent_openssl_get_ssl(tp.cli);
  const char* msg = "QUIT\r\n";
  ASSERT_EQ(SSL_write(cssl, msg, 6), 6);
  SSL_shutdown(cssl);  // close_notify right behind the data, socket kept open
  for (int i = 0; i < 200 && tp.srv_reads == 0; ++i) tp.p.loopOnce();
  PumpResult r = pump(tp.srv);
  EXPECT_EQ(evbuffer_get_length(bufferevent_get_input(tp.srv)), 6u);
  // Either libevent read the close_notify itself (record by record) or it
  // was read ahead and pump() reports it: never lost while the socket stays open.
  EXPECT_TRUE(tp.srv_eof || r.eof) << "close_notify neither reported by libevent nor by pump()";
}

}  // namespace
}  // namespace mailshim::proxy
