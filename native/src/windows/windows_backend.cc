// SPDX-License-Identifier: MIT
// gpa::Backend for Windows: adapts WinRedirector (eBPF-for-Windows) to native/src/backend.h, and
// defines the platform helpers backend.h declares. Built instead of linux/ and posix/ on Windows.
#include <winsock2.h>

#include "../backend.h"
#include "win_redirector.h"

#include <cerrno>
#include <cstring>

namespace gpa {
namespace {

using win::WinRedirector;

std::string ipv4_text(const IpAddr &a) {
  // Accept v4-mapped IPv6 too: eBPF-for-Windows hands those connects to the INET4 program.
  const std::uint8_t *b = a.bytes;
  if (a.family == 6) {
    static const std::uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes, prefix, sizeof prefix) != 0)
      return {};
    b = a.bytes + 12;
  } else if (a.family != 4) {
    return {};
  }
  return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + "." +
         std::to_string(b[3]);
}

// Dotted quad -> IpAddr. Hand-rolled: MSVC /W4 /WX rejects sscanf as deprecated (C4996).
bool ipv4_from_text(const std::string &text, IpAddr &out) {
  IpAddr a;
  a.family = 4;
  int part = 0, digits = 0;
  unsigned value = 0;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (++digits > 3 || value > 255)
        return false;
    } else if (c == '.' && digits > 0 && part < 3) {
      a.bytes[part++] = static_cast<std::uint8_t>(value);
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (part != 3 || digits == 0)
    return false;
  a.bytes[3] = static_cast<std::uint8_t>(value);
  out = a;
  return true;
}

std::string require_ipv4(const Endpoint &e, const char *what) {
  std::string text = ipv4_text(e.addr);
  if (text.empty())
    throw BackendError("rule", EINVAL,
                       std::string(what) +
                           " must be IPv4 (or v4-mapped IPv6): eBPF-for-Windows runs one "
                           "cgroup/connect4 program for both");
  return text;
}

State state_from(const std::string &s) {
  if (s == "running")
    return State::Running;
  if (s == "degraded")
    return State::Degraded;
  if (s == "failed")
    return State::Failed;
  if (s == "unsupported")
    return State::Unsupported;
  return State::Stopped;
}

Status status_from(const win::WinStatus &w) {
  Status s;
  s.state = state_from(w.state);
  s.pinned = false;
  s.cgroupPath = "compartment " + std::to_string(w.compartmentId);
  for (const auto &p : w.programs)
    s.programs.push_back({p.name, p.attached, p.fd > 0 ? static_cast<std::uint32_t>(p.fd) : 0});
  if (w.lastError)
    s.lastError = ErrorInfo{w.lastError->op, w.lastError->code, w.lastError->message, {}};
  else if (!w.reasons.empty())
    s.lastError = ErrorInfo{"probe", ENOSYS, w.reasons.front(), {}};
  if (!w.ebpfVersion.empty())
    s.warnings.push_back("eBPF-for-Windows " + w.ebpfVersion);
  return s;
}

void throw_if(const std::string &message, const char *op) {
  if (!message.empty())
    throw BackendError(op, message.find("not running") != std::string::npos ? ENOTCONN : EIO,
                       message);
}

class WindowsBackend final : public Backend {
public:
  ProbeResult ProbeKernel() override {
    auto [ok, reasons] = WinRedirector::probe();
    return ProbeResult{ok, reasons};
  }

  Status Start(const StartOptions &opts) override {
    win::WinStartOptions w;
    w.objectPath = opts.objectPath;
    w.exemptSelf = false; // exemption comes from opts.exemptPid, as on Linux
    win::WinStatus ws = redirector_.start(w);
    if (ws.state == "running" && opts.exemptPid != 0)
      throw_if(redirector_.addExemptPid(opts.exemptPid), "exempt");
    Status s = status_from(redirector_.status());
    if (!opts.pinDir.empty())
      s.warnings.push_back("pinDir ignored on Windows: the link lives with the agent process");
    return s;
  }

  void Stop(bool /*unpin*/) override { redirector_.stop(); }

  Status GetStatus() override { return status_from(redirector_.status()); }

  void SetRule(const Rule &rule) override {
    win::WinRule w{require_ipv4(rule.dst, "rule dst"), rule.dst.port,
                   require_ipv4(rule.proxy, "rule proxy"), rule.proxy.port};
    throw_if(redirector_.setRule(w), "setRule");
  }

  bool RemoveRule(const Endpoint &dst) override {
    bool removed = false;
    throw_if(redirector_.removeRule(require_ipv4(dst, "rule dst"), dst.port, removed),
             "removeRule");
    return removed;
  }

  std::vector<Rule> ListRules() override {
    std::vector<Rule> out;
    for (const auto &w : redirector_.listRules()) {
      Rule r;
      ipv4_from_text(w.dst, r.dst.addr);
      r.dst.port = w.dstPort;
      ipv4_from_text(w.proxy, r.proxy.addr);
      r.proxy.port = w.proxyPort;
      out.push_back(r);
    }
    return out;
  }

  void AddExemptPid(std::uint32_t pid) override {
    throw_if(redirector_.addExemptPid(pid), "addExemptPid");
  }

  bool RemoveExemptPid(std::uint32_t pid) override {
    throw_if(redirector_.removeExemptPid(pid), "removeExemptPid");
    return true;
  }

  // Windows keys attribution by {TCP, client source port}: every client is local, so the peer
  // port identifies it. A peer that is not loopback cannot have been redirected by us.
  std::optional<ConnOrigin> Lookup(const Endpoint &peer, const Endpoint & /*local*/,
                                   bool consume) override {
    std::string peer_ip = ipv4_text(peer.addr);
    if (peer_ip.rfind("127.", 0) != 0)
      return std::nullopt;
    auto w = redirector_.lookupConnection(peer.port, consume);
    if (!w)
      return std::nullopt;
    ConnOrigin o;
    o.pid = w->pid;
    o.tid = w->tid;
    ipv4_from_text(w->origDst, o.origDst.addr);
    o.origDst.port = w->origPort;
    o.viaV4Mapped = peer.addr.family == 6;
    o.hasLogonId = true;
    o.logonId = w->logonId;
    o.isAdmin = w->isAdmin;
    return o;
  }

  std::vector<std::pair<std::string, std::uint64_t>> Stats() override {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (const auto &kv : redirector_.stats())
      out.emplace_back(kv.first, kv.second);
    return out;
  }

private:
  WinRedirector redirector_;
};

} // namespace

std::unique_ptr<Backend> CreatePlatformBackend() { return std::make_unique<WindowsBackend>(); }

// Windows has no numeric uid/gid: identity is the logon id (see windows/logon_session.h).
std::optional<UserEntry> LookupUser(std::uint32_t /*uid*/) { return std::nullopt; }
std::optional<std::string> LookupGroupName(std::uint32_t /*gid*/) { return std::nullopt; }

std::int64_t CreateTcpListener(const std::string & /*host*/, std::uint16_t /*port*/, int /*backlog*/,
                               bool /*reusePort*/) {
  throw BackendError("listen", ENOSYS,
                     "SO_REUSEPORT listeners do not exist on Windows and Node cannot listen on "
                     "a SOCKET handle there; listen with net.Server in one thread instead");
}

LayoutSizes SharedLayoutSizes() {
  // The Windows program's structs (native/bpf/windows/redirect_win.h), not the Linux ones:
  // rule key ~ endpoint, record ~ origin, conn key ~ conn key.
  return LayoutSizes{sizeof(gpa_win_rule_key), sizeof(gpa_win_conn_record),
                     sizeof(gpa_win_conn_key)};
}

} // namespace gpa
