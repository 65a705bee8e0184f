// Linux backend: libbpf loads native/bpf/redirect.bpf.o, attaches it to one cgroup v2 directory,
// and reads/writes its maps. See docs/redirector.md for the lifecycle (links vs pinned mode).
#pragma once

#include <array>
#include <mutex>
#include <shared_mutex>

#include "../backend.h"
#include "libbpf_raii.h"
#include "port_bitmap.h"

namespace gpa::linux_bpf {

// The three programs, in attach order; names match SEC() functions in redirect.bpf.c.
struct ProgramSpec {
  const char* shortName;  // "connect4": used in status and pin file names
  const char* progName;   // "gpa_connect4"
  bpf_attach_type attachType;
};
constexpr size_t kProgramCount = 5;
extern const std::array<ProgramSpec, kProgramCount> kPrograms;

class LinuxBackend final : public Backend {
 public:
  LinuxBackend();
  ~LinuxBackend() override;

  ProbeResult ProbeKernel() override;
  Status Start(const StartOptions& opts) override;
  void Stop(bool unpin) override;
  Status GetStatus() override;
  void SetRule(const Rule& rule) override;
  bool RemoveRule(const Endpoint& dst) override;
  std::vector<Rule> ListRules() override;
  void AddExemptPid(std::uint32_t pid) override;
  bool RemoveExemptPid(std::uint32_t pid) override;
  std::optional<ConnOrigin> Lookup(const Endpoint& peer, const Endpoint& local, bool consume) override;
  std::vector<std::pair<std::string, std::uint64_t>> Stats() override;

 private:
  // Everything below is guarded by mu_: exclusive for lifecycle and admin calls, shared for lookups.
  std::shared_mutex mu_;
  ObjectPtr obj_;
  std::array<LinkPtr, kProgramCount> links_;
  UniqueFd cgroupFd_;
  Status status_;
  StartOptions opts_;
  int rulesFd_ = -1, exemptFd_ = -1, exemptCgFd_ = -1, byConnFd_ = -1, statsFd_ = -1;
  PortBitmap rulePorts_;      // rule_ports: destination ports of the rules (connect4/6 leave others at once)
  PortBitmap listenerPorts_;  // listener_ports: proxy ports of the rules (sockops looks only there)

  void StartLocked(const StartOptions& opts);  // throws BackendError; caller records it
  void PreparePins(bpf_object* obj, const std::string& pinDir);
  void AttachOrUpdate(size_t i, bpf_program* prog, std::uint64_t cgroupId);
  void SetLoadConstants(bpf_object* obj);
  void ApplySelfExemption(const StartOptions& opts);
  void MarkRulePorts(const char* op, std::uint16_t dstPort, std::uint16_t proxyPort);
  void SyncRulePorts(const char* op);
  void CheckForeignPrograms();
  void ReleaseLocked(bool unpin);
  void RequireRunning(const char* op) const;
};

// A process's start time in clock ticks since boot (/proc/<pid>/stat field 22); 0 when it does not exist.
std::uint64_t ProcessStartTicks(std::uint32_t pid);

void CaptureLibbpfLogBegin();  // starts capturing libbpf output on this thread
std::string CaptureLibbpfLogEnd();    // stops and returns what was captured

}  // namespace gpa::linux_bpf
