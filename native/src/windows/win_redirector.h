// SPDX-License-Identifier: MIT
// The eBPF-for-Windows redirector: loads the native driver (redirect_win.sys) through EbpfApi.dll,
// attaches gpa_connect4 to network compartment 1, and answers "who opened this connection".
// Plain C++ (no N-API) so it is testable and adaptable to the addon's platform-neutral backend
// interface; all state lives in one instance, guarded by one SRW lock, shared by every worker.
#pragma once

#include "efw_api.h"

#include "../../bpf/windows/redirect_win.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gpa::win {

// Mirrors RedirectorStatus in lib/redirector (state strings identical).
struct WinLastError {
  std::string op;
  int code = 0; // errno-style value from EbpfApi.dll, or ebpf_result_t for attach
  std::string message;
};

struct WinProgramStatus {
  std::string name;
  bool attached = false;
  int fd = -1;
};

struct WinStatus {
  std::string state = "stopped"; // stopped | running | degraded | failed | unsupported
  std::string mode = "links";    // Windows keeps the link in-process only
  uint32_t compartmentId = 1;
  std::string objectPath;
  std::string ebpfVersion; // "major.minor.build.revision" of EbpfApi.dll, "" if not loaded
  std::vector<WinProgramStatus> programs;
  std::optional<WinLastError> lastError;
  std::vector<std::string> reasons; // why unsupported
};

struct WinStartOptions {
  std::string objectPath;     // redirect_win.sys (native) — required on Windows
  uint32_t compartmentId = 1; // default network compartment
  bool exemptSelf = true;     // put GetCurrentProcessId() into gpa_exempt_pid
};

// A rule as the TypeScript side sees it: IPv4 literals and host-order ports.
struct WinRule {
  std::string dst;
  uint16_t dstPort = 0;
  std::string proxy;
  uint16_t proxyPort = 0;
};

// Attribution result; lib/redirector turns it into ConnOrigin { pid, tid, logonId, isAdmin, ... }.
struct WinOrigin {
  uint32_t pid = 0;
  uint32_t tid = 0;
  uint64_t logonId = 0;
  bool isAdmin = false;
  bool adminKnown = false;
  std::string origDst; // dotted IPv4
  uint16_t origPort = 0; // host order
  bool fromRedirectContext = false;
};

class WinRedirector {
public:
  WinRedirector();
  ~WinRedirector();
  WinRedirector(const WinRedirector &) = delete;
  WinRedirector &operator=(const WinRedirector &) = delete;

  // No side effects beyond loading/unloading EbpfApi.dll.
  static std::pair<bool, std::vector<std::string>> probe();

  WinStatus start(const WinStartOptions &opts);
  void stop();
  WinStatus status() const;

  // Each returns an empty string on success, else a message naming the problem and the fix.
  std::string setRule(const WinRule &rule);
  std::string removeRule(const std::string &dst, uint16_t dstPort, bool &removed);
  std::vector<WinRule> listRules() const;
  std::string addExemptPid(uint32_t pid);
  std::string removeExemptPid(uint32_t pid);

  // Look up (and by default delete) the record for a client TCP source port (host order).
  std::optional<WinOrigin> lookupConnection(uint16_t sourcePort, bool consume);

  // Fallback when the source port was 0 at connect time: read the record the program attached
  // to the accepted connection. `socket` is the accepted SOCKET (the addon owns the listener).
  std::optional<WinOrigin> lookupRedirectContext(uintptr_t socket, bool consume);

  std::map<std::string, uint64_t> stats() const;

private:
  struct Lock; // RAII over SRWLOCK
  std::string fail(const char *op, int code, const std::string &message);
  void close_locked();
  int map_fd_locked(const char *name) const;

  mutable SRWLOCK lock_ = SRWLOCK_INIT;
  EfwApi api_;
  bpf_object *object_ = nullptr;
  bpf_link *link_ = nullptr;
  int fd_rules_ = -1, fd_exempt_ = -1, fd_conn_ = -1, fd_stats_ = -1;
  WinStatus status_;
};

} // namespace gpa::win
