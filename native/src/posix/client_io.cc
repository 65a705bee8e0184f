// See client_io.h. Level-triggered uv_poll per fd; one read per readable event.
#include "client_io.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "../backend.h"

namespace gpa {

namespace {
// An IPv4 or IPv6 socket address, the only kinds a TCP listener accepts (28 bytes, where a
// sockaddr_storage per end and connection would take 128).
union InetAddr {
  sockaddr sa;
  sockaddr_in in;
  sockaddr_in6 in6;
};

void CopyAddr(const sockaddr_storage& from, socklen_t len, InetAddr* to) {
  std::memcpy(to, &from, len < sizeof(InetAddr) ? len : sizeof(InetAddr));
}

// True for 0.0.0.0 and :: (a listener bound to every address: each connection's local one differs).
bool IsWildcard(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr == htonl(INADDR_ANY);
  if (ss.ss_family == AF_INET6) return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr);
  return true;
}

// One read takes at most this much: a request head is far smaller; a large body arrives in pieces.
constexpr std::size_t kReadBytes = 64 * 1024;
// Accepts per wake-up of a listener at most, so a connect storm cannot starve the connections'
// reads (the poll is level-triggered: connections still waiting make the next loop iteration
// report the listener again).
constexpr int kAcceptsPerWake = 32;
// Poll handles kept after their socket closed, for the next socket that gets the same fd number.
// The kernel hands out the lowest free number, so the same few come back, and a kept handle saves
// uv_poll_init's work: an epoll_ctl ADD and DEL (libuv's check that the fd can be polled) and an
// ioctl(FIONBIO) on a socket already made non-blocking by accept4 or socket. Bounded: past this
// many, a closed socket's handle goes back to libuv.
constexpr std::size_t kMaxSpareHandles = 1024;

// Connections waiting in a listener's accept queue (TCP_INFO's tcpi_unacked for a listening
// socket: the kernel's sk_ack_backlog), or 0 when the kernel does not say. After the first accept
// of a wake-up this says how many more to take. Accepting until EAGAIN would instead end every
// wake-up with a failed accept4, which costs about 1.7 µs here (the kernel allocates the new socket
// and its file before it looks at the queue) against 0.27 µs for this getsockopt: a whole wasted
// syscall per new connection when connections come one at a time, the common case.
unsigned AcceptQueueLength(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  if (len < offsetof(tcp_info, tcpi_unacked) + sizeof(info.tcpi_unacked)) return 0;
  return info.tcpi_unacked;
}

}  // namespace

struct ClientIo::Handle {
  uv_poll_t poll;
  ClientIo* io = nullptr;
  int fd = -1;
  bool listener = false;
  bool reading = true;   // wants readable events (paused: false)
  bool eof = false;      // the peer's FIN was read: no more read events
  bool endPending = false;  // shutdown once the queue is empty
  bool shutDown = false;
  bool closed = false;   // fd closed; the handle waits for libuv's close callback
  bool outbound = false;    // opened by Connect (not counted as a client connection)
  bool connecting = false;  // Connect in progress: only writability (the outcome) is polled
  // A listener: TCP_NODELAY is set on it, so its connections inherit it (Linux copies the option to
  // every accepted socket); hasLocal: bound to one address, which every connection shares.
  // A connection: the addresses it was accepted with (hasLocal: the local one is known).
  bool noDelay = false;
  bool hasLocal = false;
  InetAddr local{};
  InetAddr peer{};
  int events = 0;        // what the poll is started with now
  std::string queue;     // bytes the kernel did not take yet, from qoff
  std::size_t qoff = 0;
  std::size_t queued() const { return queue.size() - qoff; }

  // A kept handle (poll stopped, fd closed) made ready for a new socket: everything but the poll.
  void ResetFor(int newFd) {
    fd = newFd;
    listener = false;
    reading = true;
    eof = false;
    endPending = false;
    shutDown = false;
    closed = false;
    outbound = false;
    connecting = false;
    noDelay = false;
    hasLocal = false;
    local = InetAddr{};
    peer = InetAddr{};
    events = 0;
    qoff = 0;  // the queue was emptied and freed at release
  }
};

ClientIo::ClientIo(uv_loop_t* loop, IoSink* sink) : loop_(loop), sink_(sink), readBuf_(kReadBytes) {}

ClientIo::~ClientIo() {
  // CloseAll() has run (the addon's cleanup hook waits for it); anything left is only memory.
  for (Handle* h : byFd_)
    if (h != nullptr && !h->closed) ::close(h->fd);
}

ClientIo::Handle* ClientIo::Find(int fd) const {
  if (fd < 0 || static_cast<std::size_t>(fd) >= byFd_.size()) return nullptr;
  return byFd_[fd];
}

void ClientIo::Track(Handle* h) {
  if (static_cast<std::size_t>(h->fd) >= byFd_.size()) byFd_.resize(static_cast<std::size_t>(h->fd) * 2 + 64, nullptr);
  byFd_[h->fd] = h;
}

void ClientIo::KeepReleased() {
  for (Handle* h : released_) {
    const auto at = static_cast<std::size_t>(h->fd);
    if (at >= spares_.size()) spares_.resize(byFd_.size() > at ? byFd_.size() : at + 1, nullptr);
    // Two released with one number (a new socket got it while the first waited here): keep the
    // later. The other cannot be closed now: uv_close deletes its fd number from epoll, and that
    // number may belong to someone else by now. It is closed when a socket of this thread next
    // gets the number (HandleFor), or in CloseAll.
    if (spares_[at] != nullptr) strays_.push_back(spares_[at]);
    spares_[at] = h;
  }
  released_.clear();
}

ClientIo::Handle* ClientIo::HandleFor(int fd, int* err) {
  const auto at = static_cast<std::size_t>(fd);
  if (!strays_.empty()) {
    // This thread owns the number now and has not polled it yet: closing a stray handle kept for
    // it deletes nothing of anyone else's from epoll.
    for (std::size_t i = 0; i < strays_.size();) {
      Handle* s = strays_[i];
      if (s->fd != fd) {
        i++;
        continue;
      }
      strays_[i] = strays_.back();
      strays_.pop_back();
      spareCount_--;
      closing_++;
      uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), ClosedCb);
    }
  }
  if (at < spares_.size() && spares_[at] != nullptr) {
    Handle* h = spares_[at];
    spares_[at] = nullptr;
    spareCount_--;
    h->ResetFor(fd);
    handlesReused_++;
    return h;
  }
  auto* h = new Handle();
  h->io = this;
  h->fd = fd;
  const int rc = uv_poll_init(loop_, &h->poll, fd);
  if (rc != 0) {
    delete h;
    if (err != nullptr) *err = rc;
    return nullptr;
  }
  h->poll.data = h;
  handlesCreated_++;
  return h;
}

void ClientIo::Listen(int fd) {
  if (fd < 0) throw BackendError("ioListen", EBADF, "not a file descriptor");
  if (Find(fd) != nullptr) throw BackendError("ioListen", EEXIST, "fd " + std::to_string(fd) + " is already polled");
  int acceptConn = 0;
  socklen_t len = sizeof(acceptConn);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acceptConn, &len) != 0 || acceptConn == 0)
    throw BackendError("ioListen", errno != 0 ? errno : EINVAL, "fd " + std::to_string(fd) + " is not a listening socket");
  // No TCP_DEFER_ACCEPT: with it the kernel wakes the agent only once the request has arrived, so
  // the wake-up (20-30 µs on an idle vCPU) starts after the client's write. Without it the agent is
  // woken by the handshake and that delay overlaps the client's connect-to-write; the request is
  // usually there by the time the accept is done (read below). docs/data-plane.md has the numbers.
  auto* h = new Handle();
  h->io = this;
  h->fd = fd;
  h->listener = true;
  // Set once here instead of once per connection; where it fails, each accept sets it.
  const int one = 1;
  h->noDelay = ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0;
  sockaddr_storage local{};
  socklen_t localLen = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &localLen) == 0 && !IsWildcard(local)) {
    CopyAddr(local, localLen, &h->local);
    h->hasLocal = true;
  }
  int rc = uv_poll_init(loop_, &h->poll, fd);
  if (rc != 0) {
    delete h;
    throw BackendError("ioListen", -rc, std::string("uv_poll_init: ") + uv_strerror(rc));
  }
  h->poll.data = h;
  Track(h);
  Update(h);
}

bool ClientIo::Unlisten(int fd) {
  Handle* h = Find(fd);
  if (h == nullptr || !h->listener) return false;
  Release(h);
  return true;
}

void ClientIo::Update(Handle* h) {
  if (h->closed) return;
  int want = 0;
  if (h->connecting) want = UV_WRITABLE;
  else {
    if (h->reading && !h->eof) want |= UV_READABLE;
    if (h->queued() > 0) want |= UV_WRITABLE;
  }
  if (want == h->events) return;
  h->events = want;
  if (want == 0) uv_poll_stop(&h->poll);
  else uv_poll_start(&h->poll, want, PollCb);
}

// Closes the fd now and hands the handle to libuv; its memory goes in ClosedCb.
void ClientIo::Release(Handle* h) {
  if (h->closed) return;
  h->closed = true;
  byFd_[h->fd] = nullptr;
  if (!h->listener && !h->outbound) connections_--;
  if (!h->listener && !closingAll_ && spareCount_ < kMaxSpareHandles) {
    // Kept for the next socket with this number (see kMaxSpareHandles). Stopping the poll removes
    // the fd from epoll and from the events libuv is still dispatching, as uv_close does, before
    // the number can be reused by the next accept.
    uv_poll_stop(&h->poll);
    h->events = 0;
    ::close(h->fd);
    std::string().swap(h->queue);  // dropped bytes are not kept while the handle waits
    h->qoff = 0;
    // Not reusable yet: a caller up the stack (an event being handled, a write) may still hold the
    // handle and test h->closed once the sink returns. Kept ones become spares at the start of the
    // thread's next socket event (KeepReleased, from PollCb), when nothing holds them.
    released_.push_back(h);
    spareCount_++;
    return;
  }
  closing_++;
  // uv_close stops the poll and removes the fd from epoll (and from the events libuv is still
  // dispatching) before the fd number can be reused by the next accept.
  uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), ClosedCb);
  ::close(h->fd);
}

void ClientIo::ClosedCb(uv_handle_t* uh) {
  auto* h = static_cast<Handle*>(uh->data);
  ClientIo* io = h->io;
  delete h;
  if (--io->closing_ == 0 && io->allClosed_) {
    auto done = std::move(io->allClosed_);
    io->allClosed_ = nullptr;
    done();
  }
}

void ClientIo::PollCb(uv_poll_t* p, int status, int events) {
  auto* h = static_cast<Handle*>(p->data);
  // Called straight from libuv's poll: no other event of this thread is being handled, so no
  // caller holds a handle released before now.
  if (!h->io->released_.empty()) h->io->KeepReleased();
  if (h->closed) return;
  if (h->listener) h->io->OnListenerEvent(h, status);
  else h->io->OnClientEvent(h, status, events);
}

void ClientIo::OnListenerEvent(Handle* h, int status) {
  if (status < 0) {
    h->reading = false;
    Update(h);
    sink_->OnError(h->fd, -status);
    return;
  }
  // The wake-up says one connection is waiting; after it, the queue's length says how many more.
  unsigned left = 1;
  bool asked = false;
  for (int i = 0; i < kAcceptsPerWake && !h->closed && h->reading; i++) {
    if (left == 0) {
      if (asked) break;
      asked = true;
      left = AcceptQueueLength(h->fd);
      if (left == 0) break;
    }
    left--;
    sockaddr_storage peer{};
    socklen_t peerLen = sizeof(peer);
    int fd = ::accept4(h->fd, reinterpret_cast<sockaddr*>(&peer), &peerLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: stop accepting; JavaScript resumes after a pause.
      h->reading = false;
      Update(h);
      sink_->OnError(h->fd, e);
      return;
    }
    if (!h->noDelay) {
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    Handle* c = HandleFor(fd);
    if (c == nullptr) {
      ::close(fd);
      continue;
    }
    CopyAddr(peer, peerLen, &c->peer);
    c->hasLocal = h->hasLocal;
    if (h->hasLocal) c->local = h->local;
    Track(c);
    connections_++;
    Update(c);
    sink_->OnAccept(h->fd, fd);
    // The client has usually written its request while this thread was waking: read it now, not a
    // wake-up later (unless the accept handler paused or closed the connection). If it has not,
    // this costs one failed read and the poll reports the request when it comes.
    if (!c->closed && c->reading) Read(c);
  }
}

bool ClientIo::Addresses(int fd, sockaddr_storage* peer, sockaddr_storage* local) const {
  const Handle* h = Find(fd);
  if (h == nullptr || h->listener || h->closed || !h->hasLocal) return false;
  *peer = sockaddr_storage{};
  *local = sockaddr_storage{};
  std::memcpy(peer, &h->peer, sizeof(InetAddr));
  std::memcpy(local, &h->local, sizeof(InetAddr));
  return true;
}

int ClientIo::Connect(const sockaddr* addr, socklen_t len) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // EINTR: the connect goes on in the background, as with EINPROGRESS (calling it again is EALREADY).
  const int rc = ::connect(fd, addr, len);
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
    const int e = errno;
    ::close(fd);
    return -e;
  }
  int prc = 0;
  Handle* h = HandleFor(fd, &prc);
  if (h == nullptr) {
    ::close(fd);
    return prc;  // libuv errors are -errno
  }
  h->outbound = true;
  // Even a connect that completed at once (loopback) is reported from the loop, never from inside
  // this call: the caller has not registered the fd yet.
  h->connecting = true;
  Track(h);
  Update(h);
  return fd;
}

void ClientIo::OnClientEvent(Handle* h, int status, int events) {
  const int fd = h->fd;
  if (status < 0) {
    // libuv reports a socket error condition (POLLERR: a refused connect, a reset) as UV_EBADF and
    // stops the poll: the socket's own error says what happened.
    int err = 0;
    socklen_t len = sizeof(err);
    if (status == UV_EBADF && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) status = -err;
    h->events = 0;  // libuv has stopped the poll
    // Bytes that arrived before the reset are still readable (an upstream that answered early and
    // reset the rest of an upload, in one wake-up): deliver them first, as net.Socket does.
    if (!h->connecting) {
      for (int i = 0; i < 16 && !h->closed && h->reading && !h->eof; i++) {
        ssize_t n = ::read(fd, readBuf_.data(), readBuf_.size());
        if (n > 0) {
          sink_->OnData(fd, readBuf_.data(), static_cast<std::size_t>(n));
        } else if (n == 0) {
          h->eof = true;
          sink_->OnEnd(fd);
        } else {
          break;
        }
      }
      if (h->closed) return;
    }
    sink_->OnError(fd, -status);
    return;
  }
  if (h->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;  // not decided yet
    if (err != 0) {
      sink_->OnError(fd, err);
      return;
    }
    h->connecting = false;
    Update(h);
    sink_->OnConnect(fd);
    // Whatever was written while connecting (or by the handler) leaves now.
    if (h->closed) return;
    if (h->queued() > 0) Flush(h);
    else if (h->endPending && !h->shutDown) {
      h->endPending = false;
      h->shutDown = true;
      ::shutdown(fd, SHUT_WR);
    }
    return;
  }
  if ((events & UV_WRITABLE) != 0) {
    Flush(h);
    if (h->closed) return;
  }
  if ((events & UV_READABLE) == 0 || !h->reading || h->eof) return;
  Read(h);
}

void ClientIo::Read(Handle* h) {
  const int fd = h->fd;
  ssize_t n = ::read(fd, readBuf_.data(), readBuf_.size());
  if (n > 0) {
    sink_->OnData(fd, readBuf_.data(), static_cast<std::size_t>(n));
  } else if (n == 0) {
    h->eof = true;
    Update(h);
    sink_->OnEnd(fd);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    sink_->OnError(fd, errno);
  }
}

std::int64_t ClientIo::Write(int fd, const char* data, std::size_t n) {
  Handle* h = Find(fd);
  if (h == nullptr || h->listener) return -EBADF;
  if (h->shutDown || h->endPending) return -EPIPE;
  if (h->connecting) {
    h->queue.append(data, n);
    return static_cast<std::int64_t>(h->queued());
  }
  if (h->queued() == 0) {
    std::size_t off = 0;
    while (off < n) {
      ssize_t w = ::send(fd, data + off, n - off, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return -errno;
      }
      off += static_cast<std::size_t>(w);
    }
    if (off == n) return 0;
    h->queue.assign(data + off, n - off);
    h->qoff = 0;
  } else {
    h->queue.append(data, n);
  }
  Update(h);
  return static_cast<std::int64_t>(h->queued());
}

void ClientIo::Flush(Handle* h) {
  while (h->queued() > 0) {
    ssize_t w = ::send(h->fd, h->queue.data() + h->qoff, h->queued(), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      sink_->OnError(h->fd, errno);
      return;
    }
    h->qoff += static_cast<std::size_t>(w);
  }
  std::string().swap(h->queue);  // a slow client's buffer is not kept for the connection's life
  h->qoff = 0;
  if (h->endPending && !h->shutDown) {
    h->endPending = false;
    h->shutDown = true;
    ::shutdown(h->fd, SHUT_WR);
  }
  Update(h);
  sink_->OnDrain(h->fd);
}

bool ClientIo::End(int fd) {
  Handle* h = Find(fd);
  if (h == nullptr || h->listener) return false;
  if (h->shutDown || h->endPending) return true;
  if (h->queued() > 0 || h->connecting) {
    h->endPending = true;
  } else {
    h->shutDown = true;
    ::shutdown(fd, SHUT_WR);
  }
  return true;
}

bool ClientIo::Close(int fd) {
  Handle* h = Find(fd);
  if (h == nullptr || h->listener) return false;
  Release(h);
  return true;
}

bool ClientIo::SetReading(int fd, bool on) {
  Handle* h = Find(fd);
  if (h == nullptr) return false;
  h->reading = on;
  Update(h);
  return true;
}

void ClientIo::CloseAll(std::function<void()> done) {
  closingAll_ = true;
  for (Handle* h : byFd_)
    if (h != nullptr) Release(h);
  KeepReleased();
  for (Handle* h : strays_) {
    closing_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), ClosedCb);
  }
  strays_.clear();
  for (Handle*& h : spares_) {
    if (h == nullptr) continue;
    closing_++;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->poll), ClosedCb);
    h = nullptr;
  }
  spareCount_ = 0;
  if (closing_ == 0) {
    done();
    return;
  }
  allClosed_ = std::move(done);
}

}  // namespace gpa
