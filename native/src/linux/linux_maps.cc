// Map reads and writes of the Linux backend: rules, exemptions, the by_conn lookup (hot path)
// and the per-CPU counters.
#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "../../bpf/redirect.h"
#include "linux_backend.h"

namespace gpa::linux_bpf {
namespace {

gpa_endpoint ToKernel(const Endpoint& e) {
  gpa_endpoint k;
  std::memset(&k, 0, sizeof(k));
  std::memcpy(k.addr, e.addr.bytes, e.addr.family == 4 ? 4 : 16);
  k.port = e.port;
  k.family = e.addr.family;
  return k;
}

Endpoint FromKernel(const std::uint32_t addr[4], std::uint16_t port, std::uint8_t family) {
  Endpoint e;
  e.addr.family = family;
  std::memcpy(e.addr.bytes, addr, family == 4 ? 4 : 16);
  e.port = port;
  return e;
}

[[noreturn]] void Fail(const char* op, int err, const std::string& what) {
  throw BackendError(op, err, what + ": " + std::strerror(err));
}

}  // namespace

void LinuxBackend::SetRule(const Rule& rule) {
  std::unique_lock lock(mu_);
  RequireRunning("setRule");
  if (rule.dst.addr.family != rule.proxy.addr.family) {
    throw BackendError("setRule", EINVAL, "rule destination and proxy must be the same address family");
  }
  gpa_endpoint k = ToKernel(rule.dst), v = ToKernel(rule.proxy);
  MarkRulePorts("setRule", k.port, v.port);
  if (bpf_map_update_elem(rulesFd_, &k, &v, BPF_ANY) != 0) Fail("setRule", errno, "cannot write rules map");
  SyncRulePorts("setRule");  // drops the bit of a listener this rule no longer uses
}

bool LinuxBackend::RemoveRule(const Endpoint& dst) {
  std::unique_lock lock(mu_);
  RequireRunning("removeRule");
  gpa_endpoint k = ToKernel(dst);
  if (bpf_map_delete_elem(rulesFd_, &k) != 0) {
    if (errno == ENOENT) return false;
    Fail("removeRule", errno, "cannot delete from rules map");
  }
  SyncRulePorts("removeRule");
  return true;
}

// rule_ports and listener_ports: one bit per destination / proxy port of the rules. A missing bit
// means no redirect (rule_ports) or no attribution (listener_ports); an extra bit only costs a
// lookup. So bits are added before a rule is written and removed after it is gone.
void LinuxBackend::MarkRulePorts(const char* op, std::uint16_t dstPort, std::uint16_t proxyPort) {
  int err = rulePorts_.Mark(dstPort);
  if (err == 0) err = listenerPorts_.Mark(proxyPort);
  if (err != 0) Fail(op, err, "cannot write rule_ports/listener_ports");
}

void LinuxBackend::SyncRulePorts(const char* op) {
  std::set<std::uint16_t> dst, proxy;
  gpa_endpoint key, next;
  gpa_endpoint* prev = nullptr;
  for (int n = 0; n < GPA_RULES_MAX && bpf_map_get_next_key(rulesFd_, prev, &next) == 0; n++) {
    gpa_endpoint v;
    if (bpf_map_lookup_elem(rulesFd_, &next, &v) == 0) {
      dst.insert(next.port);
      proxy.insert(v.port);
    }
    key = next;
    prev = &key;
  }
  int err = rulePorts_.Assign(dst);
  if (err == 0) err = listenerPorts_.Assign(proxy);
  if (err != 0) Fail(op, err, "cannot write rule_ports/listener_ports");
}

std::vector<Rule> LinuxBackend::ListRules() {
  std::shared_lock lock(mu_);
  RequireRunning("listRules");
  std::vector<Rule> out;
  gpa_endpoint key, next;
  gpa_endpoint* prev = nullptr;
  while (out.size() < GPA_RULES_MAX && bpf_map_get_next_key(rulesFd_, prev, &next) == 0) {
    gpa_endpoint v;
    if (bpf_map_lookup_elem(rulesFd_, &next, &v) == 0) {
      out.push_back({FromKernel(next.addr, next.port, next.family), FromKernel(v.addr, v.port, v.family)});
    }
    key = next;
    prev = &key;
  }
  return out;
}

void LinuxBackend::AddExemptPid(std::uint32_t pid) {
  std::unique_lock lock(mu_);
  RequireRunning("addExemptPid");
  const gpa_exempt e{GPA_EXEMPT_USER, 0, ProcessStartTicks(pid)};
  if (e.start_ticks == 0) Fail("addExemptPid", ESRCH, "no process with pid " + std::to_string(pid));
  if (bpf_map_update_elem(exemptFd_, &pid, &e, BPF_ANY) != 0) Fail("addExemptPid", errno, "cannot exempt pid");
}

bool LinuxBackend::RemoveExemptPid(std::uint32_t pid) {
  std::unique_lock lock(mu_);
  RequireRunning("removeExemptPid");
  if (bpf_map_delete_elem(exemptFd_, &pid) == 0) return true;
  if (errno == ENOENT) return false;
  Fail("removeExemptPid", errno, "cannot delete from exempt_tgid");
}

// One syscall: lookup-and-delete when consuming (LRU hash supports it since 5.14), so two
// threads can never both take the same record.
std::optional<ConnOrigin> LinuxBackend::Lookup(const Endpoint& peer, const Endpoint& local, bool consume) {
  std::shared_lock lock(mu_);
  RequireRunning("lookupConnection");
  if (peer.addr.family != local.addr.family) return std::nullopt;
  gpa_conn_key k;
  std::memset(&k, 0, sizeof(k));
  const size_t n = peer.addr.family == 4 ? 4 : 16;
  std::memcpy(k.client_addr, peer.addr.bytes, n);
  std::memcpy(k.listener_addr, local.addr.bytes, n);
  k.client_port = peer.port;
  k.listener_port = local.port;
  k.family = peer.addr.family;
  gpa_origin o;
  int rc = consume ? bpf_map_lookup_and_delete_elem(byConnFd_, &k, &o) : bpf_map_lookup_elem(byConnFd_, &k, &o);
  if (rc != 0) {
    if (errno == ENOENT) return std::nullopt;
    Fail("lookupConnection", errno, "cannot read by_conn");
  }
  ConnOrigin out;
  out.pid = o.pid;
  out.tid = o.tid;
  out.uid = o.uid;
  out.gid = o.gid;
  out.comm.assign(o.comm, strnlen(o.comm, sizeof(o.comm)));
  out.cgroupId = o.cgroup_id;
  out.cookie = o.cookie;
  out.origDst = FromKernel(o.orig_addr, o.orig_port, o.family);
  out.viaV4Mapped = (o.flags & GPA_ORIGIN_V4_MAPPED) != 0;
  if (o.exe_ino != 0) {
    // Kernel dev_t is major << 20 | minor; stat() reports glibc's makedev(major, minor).
    const std::uint64_t major = o.exe_dev >> 20, minor = o.exe_dev & 0xfffff;
    out.hasExeId = true;
    out.exeDev = ((major & 0xfffff000ULL) << 32) | ((major & 0xfffULL) << 8) | ((minor & 0xffffff00ULL) << 12) |
                 (minor & 0xffULL);
    out.exeIno = o.exe_ino;
  }
  out.startTimeNs = o.start_time;
  return out;
}

std::vector<std::pair<std::string, std::uint64_t>> LinuxBackend::Stats() {
  std::shared_lock lock(mu_);
  RequireRunning("stats");
  static const char* const kNames[] = GPA_STAT_NAMES;
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == GPA_STAT_MAX, "GPA_STAT_NAMES matches enum gpa_stat");
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) Fail("stats", -cpus, "cannot count possible CPUs");
  std::vector<std::uint64_t> perCpu(static_cast<size_t>(cpus));
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (std::uint32_t i = 0; i < GPA_STAT_MAX; i++) {
    std::uint64_t sum = 0;
    if (bpf_map_lookup_elem(statsFd_, &i, perCpu.data()) == 0) {
      for (auto v : perCpu) sum += v;
    }
    out.emplace_back(kNames[i], sum);
  }
  // Occupancy of by_conn: what the agent has not consumed and the kernel has not cleaned yet.
  std::uint64_t entries = 0;
  gpa_conn_key key, next;
  gpa_conn_key* prev = nullptr;
  while (entries < opts_.connMapSize && bpf_map_get_next_key(byConnFd_, prev, &next) == 0) {
    entries++;
    key = next;
    prev = &key;
  }
  out.emplace_back("conn_entries", entries);
  out.emplace_back("conn_map_size", opts_.connMapSize);
  return out;
}

}  // namespace gpa::linux_bpf
