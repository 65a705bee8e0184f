// The one interface every platform backend implements (Linux: libbpf in linux/; Windows:
// eBPF-for-Windows in windows/). Platform-neutral types only: no libbpf, no Win32, no N-API here.
// addon.cc converts between these types and JavaScript; a backend never sees Napi::Env.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gpa {

// An IPv4 or IPv6 address. IPv4 uses bytes[0..3] (network order), the rest is zero.
struct IpAddr {
  std::uint8_t family = 0;  // 4 or 6
  std::uint8_t bytes[16] = {};
};

struct Endpoint {
  IpAddr addr;
  std::uint16_t port = 0;  // host order
};

struct Rule {
  Endpoint dst;    // what the client asked for
  Endpoint proxy;  // where the connect goes instead (same family as dst)
};

// Who made a redirected connect, captured by the kernel in the caller's context.
struct ConnOrigin {
  std::uint32_t pid = 0;  // tgid in the initial pid namespace
  std::uint32_t tid = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string comm;
  std::uint64_t cgroupId = 0;
  std::uint64_t cookie = 0;
  Endpoint origDst;
  bool viaV4Mapped = false;
  // Linux: the caller's executable at connect time, as stat() reports it (st_dev in the userspace
  // encoding, st_ino). hasExeId false when the kernel could not read it (then the exe is unknown).
  bool hasExeId = false;
  std::uint64_t exeDev = 0;
  std::uint64_t exeIno = 0;
  // Linux: the process's start time in ns since boot (with the pid, a unique process key); 0 unknown.
  std::uint64_t startTimeNs = 0;
  // Windows identity (zero/false on Linux).
  bool hasLogonId = false;
  std::uint64_t logonId = 0;
  bool isAdmin = false;
};

struct ProgramInfo {
  std::string name;
  bool attached = false;
  std::uint32_t id = 0;
};

struct ErrorInfo {
  std::string op;       // e.g. "load", "attach connect4", "open cgroup"
  int err = 0;          // errno (positive)
  std::string message;  // names the thing and the fix
  std::string verifierLog;
};

enum class State { Stopped, Running, Degraded, Failed, Unsupported };

struct Status {
  State state = State::Stopped;
  bool pinned = false;
  std::string cgroupPath;
  std::vector<ProgramInfo> programs;
  std::optional<ErrorInfo> lastError;
  std::vector<std::string> warnings;  // e.g. foreign programs on the same hook
};

struct StartOptions {
  std::string objectPath;   // compiled BPF object (Linux) or native driver (Windows)
  std::string cgroupPath;   // Linux: cgroup v2 directory to attach to
  std::string pinDir;       // empty: links live with the process; else pinned mode
  std::uint32_t connMapSize = 16384;
  std::uint32_t exemptPid = 0;       // 0: none; replaces a stale self-exemption in pinned maps
  std::uint64_t exemptCgroupId = 0;  // 0: none; used in a pid namespace instead of exemptPid
};

struct ProbeResult {
  bool supported = false;
  std::vector<std::string> reasons;
};

// Thrown by backends for failures of one call (bad argument, not running, syscall error).
// addon.cc turns it into a Napi::Error with `code`, `errno` and `op`; it never crosses N-API.
class BackendError : public std::runtime_error {
 public:
  BackendError(std::string op, int err, const std::string& message)
      : std::runtime_error(message), op_(std::move(op)), err_(err) {}
  const std::string& op() const { return op_; }
  int err() const { return err_; }

 private:
  std::string op_;
  int err_;
};

// One loaded program set. Thread-safe: every method may be called from any JS thread at once.
// Start() reports failure in the returned Status (state Failed/Unsupported + lastError), not by throwing.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual ProbeResult ProbeKernel() = 0;  // no lasting side effects
  virtual Status Start(const StartOptions& opts) = 0;
  virtual void Stop(bool unpin) = 0;
  virtual Status GetStatus() = 0;
  virtual void SetRule(const Rule& rule) = 0;
  virtual bool RemoveRule(const Endpoint& dst) = 0;
  virtual std::vector<Rule> ListRules() = 0;
  virtual void AddExemptPid(std::uint32_t pid) = 0;
  virtual bool RemoveExemptPid(std::uint32_t pid) = 0;
  // peer = the accepted socket's remote end, local = its local end. Hot path: one map syscall.
  virtual std::optional<ConnOrigin> Lookup(const Endpoint& peer, const Endpoint& local, bool consume) = 0;
  virtual std::vector<std::pair<std::string, std::uint64_t>> Stats() = 0;
};

// Defined once per platform (linux/linux_backend.cc, windows/...). Called once per process.
std::unique_ptr<Backend> CreatePlatformBackend();

// ---- Platform helpers (posix/*.cc on Linux, windows/*.cc on Windows) ----

struct GroupEntry {
  std::uint32_t gid = 0;
  std::optional<std::string> name;
};

struct UserEntry {
  std::string name;
  std::uint32_t gid = 0;  // primary group
  std::vector<GroupEntry> groups;  // primary first, then supplementary (NSS: files, LDAP, SSSD...)
};

// Nullopt when the system knows no such user/group. Throws BackendError on lookup failure.
std::optional<UserEntry> LookupUser(std::uint32_t uid);
std::optional<std::string> LookupGroupName(std::uint32_t gid);

// A listening TCP socket (non-blocking, close-on-exec); returns the fd/handle. With reusePort,
// SO_REUSEPORT: Node 20 cannot set it itself, so each worker thread does `listen({ fd })` on its
// own. Without it the port is this socket's alone (a second agent gets EADDRINUSE).
std::int64_t CreateTcpListener(const std::string& host, std::uint16_t port, int backlog, bool reusePort);

// Sizes of the structs in native/bpf/redirect.h as this build sees them (asserted against TS).
struct LayoutSizes {
  std::uint32_t endpoint, origin, connKey;
};
LayoutSizes SharedLayoutSizes();

}  // namespace gpa
