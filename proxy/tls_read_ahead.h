// OpenSSL read-ahead for socket-level TLS bufferevents.
//
// Without read-ahead OpenSSL reads a TLS record with two read() calls (the
// 5-byte header, then the body): 6,313 reads for a 50 MB upload in 3,053
// records. With read-ahead it reads what the socket has, up to its buffer
// (kReadAheadBytes), and decrypts records from there. libevent 2.1 does not
// know about those bytes: after a read event it only drains SSL_pending(),
// the rest of the current record, and waits for the socket to become
// readable again — which it will not if the next records are already inside
// OpenSSL. pump() moves them into the bufferevent's input; the session calls
// it after every read callback, after the handshake and whenever it resumes
// reading. (libevent 2.2 asks SSL_has_pending() itself.)
#pragma once

#include <cstddef>

struct bufferevent;
struct ssl_st;

namespace mailshim::proxy {

constexpr int kReadAheadBytes = 65536;  // up to 4 full records per read(); released when empty

// Turns read-ahead on for a server-side SSL used by a socket bufferevent,
// once its handshake is done (a trickled, unfinished handshake must not hold
// the large buffer: the slowloris soak measured +74 MB for 5,000 of them).
void enableReadAhead(ssl_st* ssl);

struct PumpResult {
  size_t added = 0;   // bytes appended to the input
  bool eof = false;   // the peer's close_notify was read
  bool error = false; // a fatal TLS error (bad record, ...)
};

// Appends what OpenSSL already holds for `bev` (a socket-level OpenSSL
// bufferevent after its handshake, reading enabled) to its input, up to its
// read high-water mark. Reads the socket only to complete a record that is
// partly buffered.
PumpResult pump(bufferevent* bev);

}  // namespace mailshim::proxy
