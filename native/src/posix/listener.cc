// Listening sockets for the data-plane workers: SO_REUSEPORT ones (Node 20 cannot set the option),
// and the ones the addon's own client-socket I/O polls (client_io.h).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "../backend.h"
#include "../linux/libbpf_raii.h"

namespace gpa {

std::int64_t CreateTcpListener(const std::string& host, std::uint16_t port, int backlog, bool reusePort) {
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(*v6);
  } else {
    throw BackendError("createReusePortListener", EINVAL, "host must be an IPv4 or IPv6 literal: " + host);
  }
  linux_bpf::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw BackendError("createReusePortListener", errno, std::strerror(errno));
  const int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (reusePort && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
    throw BackendError("createReusePortListener", errno, std::string("setsockopt: ") + std::strerror(errno));
  }
  if (family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    throw BackendError("createReusePortListener", e,
                       "cannot bind " + host + ":" + std::to_string(port) + ": " + std::strerror(e));
  }
  if (::listen(fd.get(), backlog > 0 ? backlog : 511) != 0) {
    throw BackendError("createReusePortListener", errno, std::string("listen: ") + std::strerror(errno));
  }
  return fd.release();
}

}  // namespace gpa
