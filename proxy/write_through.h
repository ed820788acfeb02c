// Write-through for bufferevents.
//
// libevent queues everything written to a bufferevent and sends it from the
// next loop iteration: it arms EPOLLOUT when an empty output buffer gets data
// and disarms it when the buffer is drained, so every protocol reply costs two
// epoll_ctl calls and one more trip through epoll_wait on top of its send.
// When nothing is queued, writeThrough() sends at once (send() on a plain
// socket, SSL_write() on an OpenSSL socket bufferevent whose handshake is
// done) and queues only what the socket did not take. Order is kept: a
// bufferevent with anything queued, a filter stack, or a TLS write larger
// than one libevent write frame always takes the queue.
//
// Write interest is enabled lazily: the session enables only EV_READ on its
// sockets (enabling EV_WRITE with nothing to write arms EPOLLOUT just to
// disarm it on the next wakeup), and whatever puts bytes into an output
// buffer calls ensureWriting() — writeThrough() and writeThroughBuffer() do
// it themselves when they queue.
#pragma once

#include <cstddef>
#include <string>

struct bufferevent;
struct evbuffer;
struct event_base;
struct ssl_st;

namespace mailshim::proxy {

// Sends `p[0..n)` on `bev` now where it can, queues the rest (or all of it).
void writeThrough(bufferevent* bev, const char* p, size_t n);

// Queues `p[0..n)` on `bev` (libevent writes it from the loop) with write
// interest on: for a socket whose connect has not completed.
void writeQueued(bufferevent* bev, const char* p, size_t n);

// Moves all of `in` to `bev` the same way: a small `in` (one reply) is sent
// at once when nothing is queued; anything else is moved as
// bufferevent_write_buffer() would.
void writeThroughBuffer(bufferevent* bev, evbuffer* in);

// Like writeThrough() for a large block the caller gives up (SMTP message
// content): on a plain socket with nothing queued it is sent at once, and
// whatever the socket does not take is queued by reference, without a copy.
// Leaves `bytes` empty, its buffer given up (sent and freed, or queued).
void writeThroughOwned(bufferevent* bev, std::string& bytes);

// Enables EV_WRITE on `bev` if it is not (after appending to its output by
// other means than the functions above).
void ensureWriting(bufferevent* bev);

// An OpenSSL socket bufferevent for `fd` in `state` whose write interest is
// off: libevent would otherwise arm EPOLLOUT on the fresh socket before the
// handshake (which is read-driven on the server side) and disarm it on the
// first wakeup. The caller enables EV_READ.
bufferevent* newTlsSocketBufferevent(event_base* base, int fd, ssl_st* ssl, int state, int options);

// Counters for tests: this thread's writes (each worker counts its own).
struct WriteThroughStats {
  unsigned long direct = 0;  // writes that left in full at once
  unsigned long queued = 0;  // writes (or remainders) that took the queue
};
WriteThroughStats writeThroughStats();

}  // namespace mailshim::proxy
