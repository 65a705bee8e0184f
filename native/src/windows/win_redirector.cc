// SPDX-License-Identifier: MIT
// Windows redirector: load, attach, rules, exemption, attribution lookups.
#include <winsock2.h>
#include <ws2tcpip.h>

#include "win_redirector.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#ifdef _MSC_VER
#include <mstcpip.h>
#pragma comment(lib, "ws2_32.lib")
#endif

// mstcpip.h (Windows SDK): _WSAIOW(IOC_VENDOR, 221). mingw-w64's headers lack it.
#ifndef SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT
#define SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT _WSAIOW(IOC_VENDOR, 221)
#endif

namespace gpa::win {

struct WinRedirector::Lock {
  explicit Lock(SRWLOCK &l) : l_(l) { AcquireSRWLockExclusive(&l_); }
  ~Lock() { ReleaseSRWLockExclusive(&l_); }
  Lock(const Lock &) = delete;
  Lock &operator=(const Lock &) = delete;
  SRWLOCK &l_;
};

namespace {

constexpr uint32_t kIpprotoTcp = 6;

bool parse_ipv4(const std::string &text, uint32_t &out_network_order) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1)
    return false;
  out_network_order = a.s_addr;
  return true;
}

std::string format_ipv4(uint32_t network_order) {
  in_addr a{};
  a.s_addr = network_order;
  char buf[INET_ADDRSTRLEN] = {0};
  if (!inet_ntop(AF_INET, &a, buf, sizeof buf))
    return {};
  return buf;
}

WinOrigin origin_from(const gpa_win_conn_record &rec, bool from_context) {
  WinOrigin o;
  o.pid = rec.pid;
  o.tid = rec.tid;
  o.logonId = rec.logon_id;
  o.adminKnown = (rec.flags & GPA_WIN_FLAG_ADMIN_KNOWN) != 0;
  o.isAdmin = o.adminKnown && rec.is_admin != 0;
  o.origDst = format_ipv4(rec.orig_addr);
  o.origPort = ntohs(rec.orig_port);
  o.fromRedirectContext = from_context;
  return o;
}

const char *const kStatNames[GPA_WIN_STAT_COUNT] = {
    "redirected4", "exempted", "published", "context_set", "publish_failed", "not_tcp"};

} // namespace

WinRedirector::WinRedirector() = default;

WinRedirector::~WinRedirector() {
  Lock guard(lock_);
  close_locked();
  unload_efw_api(api_);
}

std::pair<bool, std::vector<std::string>> WinRedirector::probe() {
  EfwApi api;
  EfwLoadResult r = load_efw_api(api);
  unload_efw_api(api);
  if (r.ok)
    return {true, {}};
  return {false, {r.reason}};
}

std::string WinRedirector::fail(const char *op, int code, const std::string &message) {
  status_.state = "failed";
  status_.lastError = WinLastError{op, code, message};
  return message;
}

int WinRedirector::map_fd_locked(const char *name) const {
  bpf_map *m = api_.find_map(object_, name);
  return m ? api_.map_fd(m) : -1;
}

void WinRedirector::close_locked() {
  if (link_) {
    api_.link_destroy(link_); // detaches gpa_connect4
    link_ = nullptr;
  }
  if (object_) {
    api_.object_close(object_);
    object_ = nullptr;
  }
  fd_rules_ = fd_exempt_ = fd_conn_ = fd_stats_ = -1;
  status_.programs.clear();
}

WinStatus WinRedirector::start(const WinStartOptions &opts) {
  Lock guard(lock_);
  close_locked();
  status_ = WinStatus{};
  status_.objectPath = opts.objectPath;
  status_.compartmentId = opts.compartmentId;

  if (!api_.module) {
    EfwLoadResult r = load_efw_api(api_);
    if (!r.ok) {
      status_.state = "unsupported";
      status_.reasons.push_back(r.reason);
      return status_;
    }
  }
  char version[48];
  std::snprintf(version, sizeof version, "%u.%u.%u.%u", api_.version[0], api_.version[1],
                api_.version[2], api_.version[3]);
  status_.ebpfVersion = version;

  if (opts.objectPath.empty()) {
    fail("open", 0,
         "no BPF object path: pass objectPath (the redirect_win.sys native driver built as in "
         "docs/windows.md)");
    return status_;
  }
  object_ = api_.object_open(opts.objectPath.c_str());
  if (!object_) {
    fail("open", errno,
         "cannot open " + opts.objectPath + " (errno " + std::to_string(errno) +
             "); build it with docs/windows.md step 3 and check the path");
    return status_;
  }
  int rc = api_.object_load(object_);
  if (rc != 0) {
    fail("load", rc,
         "loading " + opts.objectPath + " failed (" + std::to_string(rc) +
             "): the driver must be signed (or test signing on) and built by a bpf2c no newer "
             "than the installed eBPF-for-Windows");
    close_locked();
    return status_;
  }
  bpf_program *prog = api_.find_program(object_, GPA_WIN_PROGRAM_NAME);
  fd_rules_ = map_fd_locked(GPA_WIN_MAP_RULES);
  fd_exempt_ = map_fd_locked(GPA_WIN_MAP_EXEMPT);
  fd_conn_ = map_fd_locked(GPA_WIN_MAP_CONN);
  fd_stats_ = map_fd_locked(GPA_WIN_MAP_STATS);
  if (!prog || fd_rules_ < 0 || fd_exempt_ < 0 || fd_conn_ < 0 || fd_stats_ < 0) {
    fail("load", 0,
         opts.objectPath + " lacks program " GPA_WIN_PROGRAM_NAME
                           " or one of its maps; rebuild it from native/bpf/windows");
    close_locked();
    return status_;
  }

  // Exempt ourselves before attaching: our own upstream connects must never loop back.
  if (opts.exemptSelf) {
    uint32_t pid = GetCurrentProcessId();
    uint32_t one = 1;
    rc = api_.map_update(fd_exempt_, &pid, &one, 0);
    if (rc != 0) {
      fail("exempt", rc, "cannot exempt the agent's pid " + std::to_string(pid));
      close_locked();
      return status_;
    }
  }

  uint32_t compartment = opts.compartmentId;
  ebpf_result_t ar = api_.program_attach(prog, nullptr, &compartment, sizeof compartment, &link_);
  status_.programs.push_back({GPA_WIN_PROGRAM_NAME, ar == kEbpfSuccess, api_.program_fd(prog)});
  if (ar != kEbpfSuccess) {
    link_ = nullptr;
    fail("attach", ar,
         "ebpf_program_attach(" GPA_WIN_PROGRAM_NAME ", compartment " +
             std::to_string(compartment) + ") failed with ebpf_result_t " + std::to_string(ar) +
             "; is netebpfext running (sc query netebpfext)?");
    close_locked();
    return status_;
  }
  status_.state = "running";
  return status_;
}

void WinRedirector::stop() {
  Lock guard(lock_);
  close_locked();
  status_.state = "stopped";
}

WinStatus WinRedirector::status() const {
  Lock guard(lock_);
  return status_;
}

std::string WinRedirector::setRule(const WinRule &rule) {
  gpa_win_rule_key key{};
  gpa_win_rule_value value{};
  if (!parse_ipv4(rule.dst, key.addr))
    return "rule destination '" + rule.dst +
           "' is not an IPv4 literal; eBPF-for-Windows redirects IPv4 (v4-mapped included) only";
  if (!parse_ipv4(rule.proxy, value.addr))
    return "rule proxy '" + rule.proxy + "' is not an IPv4 literal such as 127.0.0.1";
  key.port = htons(rule.dstPort);
  value.port = htons(rule.proxyPort);
  Lock guard(lock_);
  if (fd_rules_ < 0)
    return "redirector is not running; call start() first";
  int rc = api_.map_update(fd_rules_, &key, &value, 0);
  return rc == 0 ? std::string() : "bpf_map_update_elem(gpa_rules) failed: " + std::to_string(rc);
}

std::string WinRedirector::removeRule(const std::string &dst, uint16_t dstPort, bool &removed) {
  removed = false;
  gpa_win_rule_key key{};
  if (!parse_ipv4(dst, key.addr))
    return "rule destination '" + dst + "' is not an IPv4 literal";
  key.port = htons(dstPort);
  Lock guard(lock_);
  if (fd_rules_ < 0)
    return "redirector is not running; call start() first";
  removed = api_.map_delete(fd_rules_, &key) == 0;
  return {};
}

std::vector<WinRule> WinRedirector::listRules() const {
  Lock guard(lock_);
  std::vector<WinRule> out;
  if (fd_rules_ < 0)
    return out;
  gpa_win_rule_key key{}, next{};
  const void *prev = nullptr; // NULL asks for the first key
  while (api_.map_next_key(fd_rules_, prev, &next) == 0 && out.size() < 1024) {
    gpa_win_rule_value value{};
    if (api_.map_lookup(fd_rules_, &next, &value) == 0)
      out.push_back({format_ipv4(next.addr), ntohs(next.port), format_ipv4(value.addr),
                     ntohs(value.port)});
    key = next;
    prev = &key;
  }
  return out;
}

std::string WinRedirector::addExemptPid(uint32_t pid) {
  Lock guard(lock_);
  if (fd_exempt_ < 0)
    return "redirector is not running; call start() first";
  uint32_t one = 1;
  int rc = api_.map_update(fd_exempt_, &pid, &one, 0);
  return rc == 0 ? std::string() : "bpf_map_update_elem(gpa_exempt_pid) failed: " + std::to_string(rc);
}

std::string WinRedirector::removeExemptPid(uint32_t pid) {
  Lock guard(lock_);
  if (fd_exempt_ < 0)
    return "redirector is not running; call start() first";
  api_.map_delete(fd_exempt_, &pid); // absent is fine
  return {};
}

std::optional<WinOrigin> WinRedirector::lookupConnection(uint16_t sourcePort, bool consume) {
  gpa_win_conn_key key{};
  key.protocol = kIpprotoTcp;
  key.source_port = htons(sourcePort);
  gpa_win_conn_record rec{};
  Lock guard(lock_);
  if (fd_conn_ < 0)
    return std::nullopt;
  if (api_.map_lookup(fd_conn_, &key, &rec) != 0)
    return std::nullopt;
  // Consume first, then judge: a malformed entry must not stay to be borrowed later.
  if (consume)
    api_.map_delete(fd_conn_, &key);
  if (rec.magic != GPA_WIN_RECORD_MAGIC)
    return std::nullopt;
  return origin_from(rec, false);
}

std::optional<WinOrigin> WinRedirector::lookupRedirectContext(uintptr_t socket, bool consume) {
  gpa_win_conn_record rec{};
  DWORD returned = 0;
  int rc = WSAIoctl(static_cast<SOCKET>(socket), SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT,
                    nullptr, 0, &rec, sizeof rec, &returned, nullptr, nullptr);
  if (rc != 0 || returned != sizeof rec || rec.magic != GPA_WIN_RECORD_MAGIC)
    return std::nullopt;
  // The program also published under the source port when it had one: drop that copy so it
  // cannot be claimed by a later connection reusing the port.
  if (consume && (rec.flags & GPA_WIN_FLAG_IN_MAP)) {
    sockaddr_in peer{};
    int len = sizeof peer;
    if (getpeername(static_cast<SOCKET>(socket), reinterpret_cast<sockaddr *>(&peer), &len) == 0 &&
        peer.sin_family == AF_INET) {
      gpa_win_conn_key key{};
      key.protocol = kIpprotoTcp;
      key.source_port = peer.sin_port;
      Lock guard(lock_);
      if (fd_conn_ >= 0)
        api_.map_delete(fd_conn_, &key);
    }
  }
  return origin_from(rec, true);
}

std::map<std::string, uint64_t> WinRedirector::stats() const {
  Lock guard(lock_);
  std::map<std::string, uint64_t> out;
  if (fd_stats_ < 0)
    return out;
  int cpus = api_.num_possible_cpus();
  if (cpus <= 0 || cpus > 4096)
    return out;
  // Per-CPU array lookups return one 8-byte slot per possible CPU.
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t i = 0; i < GPA_WIN_STAT_COUNT; i++) {
    if (api_.map_lookup(fd_stats_, &i, per_cpu.data()) != 0)
      continue;
    uint64_t sum = 0;
    for (uint64_t v : per_cpu)
      sum += v;
    out[kStatNames[i]] = sum;
  }
  return out;
}

} // namespace gpa::win
