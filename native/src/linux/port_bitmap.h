// A BPF array of 64-bit words with one bit per TCP port (rule_ports, listener_ports in
// redirect.bpf.c), owned by this process: the set of ports it has marked is kept here, so a change
// writes only the words that differ. Callers hold the backend's exclusive lock.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <set>

namespace gpa::linux_bpf {

class PortBitmap {
 public:
  // fd of the map; the map is fresh (all zero) when a backend starts, so the set starts empty.
  void Reset(int fd) {
    fd_ = fd;
    ports_.clear();
  }

  // Adds one port; returns 0 or an errno.
  int Mark(std::uint16_t port) {
    if (ports_.count(port) != 0) return 0;
    std::set<std::uint16_t> next = ports_;
    next.insert(port);
    return Assign(next);
  }

  // Makes the map hold exactly `want`; returns 0 or an errno.
  int Assign(const std::set<std::uint16_t>& want) {
    std::set<std::uint32_t> words;
    for (std::uint16_t p : want) words.insert(p >> 6);
    for (std::uint16_t p : ports_) words.insert(p >> 6);
    for (std::uint32_t word : words) {
      std::uint64_t bits = 0;
      for (std::uint16_t p : want) {
        if ((p >> 6) == word) bits |= 1ULL << (p & 63);
      }
      if (bpf_map_update_elem(fd_, &word, &bits, BPF_ANY) != 0) return errno;
    }
    ports_ = want;
    return 0;
  }

 private:
  int fd_ = -1;
  std::set<std::uint16_t> ports_;
};

}  // namespace gpa::linux_bpf
