// AdminConsole: the admin console on a Unix socket ([admin] socket), served
// on worker 0's loop. One command per connection (protocols/common/
// admin_command.h); the reply is text lines ending with "OK ..." or
// "ERR ...", then the connection is closed. `mailshim ctl` is the client.
//
// Access: the peer's credentials (SO_PEERCRED) must be root, mailshim's own
// user, or one of [admin] users; the socket file gets [admin] mode (0660).
// Refused peers get "ERR permission denied" and a log line.
//
// What it shows comes from the same places as /metrics (stats.h) and from
// every worker's sessions (collected on each worker's own thread).
//
// I/O: a Unix listening socket (libevent).
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "conf/config.h"

struct event_base;
struct evconnlistener;
struct sockaddr;

namespace mailshim::proxy {

class Server;

class AdminConsole {
 public:
  AdminConsole(Server& server, event_base* base);
  ~AdminConsole();
  AdminConsole(const AdminConsole&) = delete;
  AdminConsole& operator=(const AdminConsole&) = delete;

  // Opens the socket; false (logged) when it cannot.
  bool open(const conf::AdminSettings& settings);
  void close();

  struct Conn;
  void dispatch(std::shared_ptr<Conn> c, const std::string& line);

 private:
  static void acceptCb(evconnlistener*, int fd, ::sockaddr*, int, void* arg);
  void onAccept(int fd);
  bool allowed(uid_t uid) const;

  Server& server_;
  event_base* base_;
  evconnlistener* listener_ = nullptr;
  std::string path_;
  std::vector<uid_t> allowed_uids_;
};

}  // namespace mailshim::proxy
