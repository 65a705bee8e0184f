// Client-socket I/O for the data plane without a net.Socket per connection (Linux).
//
// A data-plane worker accepts every client connection of the agent port. With net.Socket, each one
// costs a TCPWrap, a Readable and a Writable stream and their teardown: measured here, about 30 µs
// of CPU per connection, more than the rest of a memoised request. ClientIo does the same socket
// work on the worker's own libuv loop with one uv_poll_t per fd: accept4, read into one buffer per
// thread, write straight from the caller's bytes (queueing only what the kernel did not take),
// shutdown and close; and the same for the upstream connections it opens (Connect). JavaScript still does everything HTTP: it gets one event per accept, read,
// end of stream, error, drain and connect, through IoSink. No N-API here: addon.cc implements the sink.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gpa {

class IoSink {
 public:
  virtual ~IoSink() = default;
  virtual void OnAccept(int listenFd, int fd) = 0;
  virtual void OnData(int fd, const char* data, std::size_t n) = 0;
  virtual void OnEnd(int fd) = 0;  // the peer sent its FIN
  virtual void OnError(int fd, int err) = 0;  // a client: read/write failed; a listener: accept failed, paused
  virtual void OnDrain(int fd) = 0;  // every queued byte is in the kernel now
  virtual void OnConnect(int fd) = 0;  // an outbound connection (Connect) is established
};

// One per JavaScript thread (the addon instance owns it). Not thread-safe: every call comes from
// the thread whose loop it polls on, and every sink call happens on that thread too.
class ClientIo {
 public:
  ClientIo(uv_loop_t* loop, IoSink* sink);
  ~ClientIo();
  ClientIo(const ClientIo&) = delete;
  ClientIo& operator=(const ClientIo&) = delete;

  // Starts accepting on a listening, non-blocking socket. Throws BackendError.
  void Listen(int fd);
  // Stops accepting and closes the listening fd. False when fd is not a listener of this thread.
  bool Unlisten(int fd);
  // Opens an outbound TCP connection (the data plane's upstream) to addr, polled like an accepted
  // one once it is established: OnConnect when it is, OnError(fd, errno) when it fails. Bytes
  // written meanwhile are queued. Returns the fd, or -errno when the connect failed at once.
  int Connect(const sockaddr* addr, socklen_t len);
  // Writes n bytes: what the kernel does not take now is copied and sent when the socket drains.
  // Returns the bytes still queued (0: all in the kernel) or -errno (the connection is broken).
  std::int64_t Write(int fd, const char* data, std::size_t n);
  // Half-closes (shutdown SHUT_WR) once the queue is empty. False when fd is unknown.
  bool End(int fd);
  // Closes now: queued bytes are dropped. False when fd is unknown (already closed).
  bool Close(int fd);
  // Starts or stops reading (a client) or accepting (a listener). False when fd is unknown.
  bool SetReading(int fd, bool on);
  // The addresses an accepted connection was accepted with: the peer from accept4, the local one
  // from its listener's when that is bound to one address (not a wildcard). False when fd is not a
  // connection of this thread or its local address was not known at accept: ask the socket.
  bool Addresses(int fd, sockaddr_storage* peer, sockaddr_storage* local) const;
  // Closes every socket; `done` runs once libuv has released every handle (loop still running).
  void CloseAll(std::function<void()> done);

  std::size_t connectionCount() const { return connections_; }
  // Poll handles made with uv_poll_init, and kept ones given to a new socket (see kMaxSpareHandles).
  std::uint64_t handlesCreated() const { return handlesCreated_; }
  std::uint64_t handlesReused() const { return handlesReused_; }

 private:
  struct Handle;
  Handle* Find(int fd) const;
  // A polled handle for a new socket: a kept one with this fd number, or a new one (nullptr and
  // *err = the libuv error when uv_poll_init fails).
  Handle* HandleFor(int fd, int* err = nullptr);
  // Makes the handles released since the last call spares (only where none can be in use).
  void KeepReleased();
  void Track(Handle* h);
  void Update(Handle* h);
  void Release(Handle* h);
  void Flush(Handle* h);
  void Read(Handle* h);
  void OnClientEvent(Handle* h, int status, int events);
  void OnListenerEvent(Handle* h, int status);
  static void PollCb(uv_poll_t* p, int status, int events);
  static void ClosedCb(uv_handle_t* h);

  uv_loop_t* loop_;
  IoSink* sink_;
  std::vector<Handle*> byFd_;
  std::size_t connections_ = 0;
  std::size_t closing_ = 0;
  bool closingAll_ = false;
  // Kept handles by fd number (poll stopped, fd closed), and how many there are.
  std::vector<Handle*> spares_;
  // Released (poll stopped, fd closed) and not yet spares; counted in spareCount_ too.
  std::vector<Handle*> released_;
  // Kept handles displaced by a later one with the same fd number (see KeepReleased); counted too.
  std::vector<Handle*> strays_;
  std::size_t spareCount_ = 0;
  std::uint64_t handlesCreated_ = 0;
  std::uint64_t handlesReused_ = 0;
  std::function<void()> allClosed_;
  std::vector<char> readBuf_;
};

}  // namespace gpa
