// Lifecycle of the Linux backend: open, size and pin the maps, load, attach (or swap programs in
// pinned links), exempt the agent, and release in reverse order.
#include "linux_backend.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "../../bpf/redirect.h"

namespace gpa::linux_bpf {

const std::array<ProgramSpec, kProgramCount> kPrograms = {{
    {"connect4", "gpa_connect4", BPF_CGROUP_INET4_CONNECT},
    {"connect6", "gpa_connect6", BPF_CGROUP_INET6_CONNECT},
    {"sockops", "gpa_sockops", BPF_CGROUP_SOCK_OPS},
    {"bind4", "gpa_bind4", BPF_CGROUP_INET4_BIND},
    {"bind6", "gpa_bind6", BPF_CGROUP_INET6_BIND},
}};

namespace {

const char* kMapNames[] = {"rules", "exempt_tgid", "exempt_cgroup", "handoff", "handoff_spill", "by_conn", "stats"};
// Pins of maps earlier builds had (socket storage before the hand-off array): removed on start and
// unpin, so an upgrade leaves nothing behind under the pin directory.
const char* kObsoleteMapNames[] = {"sk_origin", "sk_connkey"};

[[noreturn]] void Fail(const std::string& op, int err, const std::string& what) {
  throw BackendError(op, err, what + ": " + std::strerror(err));
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

}  // namespace

// A process's start time in clock ticks since boot: field 22 of /proc/<pid>/stat (after the comm,
// which may itself hold spaces and parentheses, so counting starts after the last ')'). 0 when the
// process does not exist.
std::uint64_t ProcessStartTicks(std::uint32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!f || !std::getline(f, line)) return 0;
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  // After the comm: field 3 (state) ... field 22 (starttime).
  for (int n = 3; n <= 22; n++) {
    if (!(rest >> field)) return 0;
  }
  return std::strtoull(field.c_str(), nullptr, 10);
}

namespace {

std::string LinkPinPath(const std::string& pinDir, const ProgramSpec& p) {
  return pinDir + "/link_" + p.shortName;
}

/**
 * Blocks every signal on the calling thread while it lives. The verifier gives up with EAGAIN when a
 * signal is pending during a long verification, and libbpf retries only a few times: a process
 * under a sampling profiler (SIGPROF every millisecond, e.g. node --prof) could then never load.
 * Blocked signals stay pending and are delivered when the mask is restored.
 */
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    ok_ = ::pthread_sigmask(SIG_BLOCK, &all, &saved_) == 0;
  }
  ~SignalsBlocked() {
    if (ok_) ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_{};
  bool ok_ = false;
};

bool PathExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// The verifier's own words, if libbpf printed them; otherwise everything libbpf said.
std::string ExtractVerifierLog(const std::string& all) {
  auto begin = all.find("-- BEGIN PROG LOAD LOG --");
  if (begin == std::string::npos) return all;
  auto end = all.find("-- END PROG LOAD LOG --", begin);
  return all.substr(begin, end == std::string::npos ? std::string::npos : end + 23 - begin);
}

}  // namespace

LinuxBackend::LinuxBackend() = default;
LinuxBackend::~LinuxBackend() {
  std::unique_lock lock(mu_);
  ReleaseLocked(false);
}

ProbeResult LinuxBackend::ProbeKernel() {
  ProbeResult r;
  struct Need {
    const char* what;
    int ok;
  } needs[] = {
      {"cgroup/connect programs (BPF_PROG_TYPE_CGROUP_SOCK_ADDR)",
       libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, nullptr)},
      {"sockops programs (BPF_PROG_TYPE_SOCK_OPS)", libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SOCK_OPS, nullptr)},
      {"socket-local storage maps (BPF_MAP_TYPE_SK_STORAGE)",
       libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, nullptr)},
      {"LRU hash maps (BPF_MAP_TYPE_LRU_HASH)", libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, nullptr)},
  };
  for (const auto& n : needs) {
    if (n.ok == 1) continue;
    if (n.ok < 0) {
      r.reasons.push_back(std::string("kernel refused to load a test for ") + n.what + ": " + std::strerror(-n.ok) +
                          " (run as root, or with CAP_BPF and CAP_NET_ADMIN)");
    } else {
      r.reasons.push_back(std::string("kernel lacks ") + n.what);
    }
  }
  r.supported = r.reasons.empty();
  return r;
}

Status LinuxBackend::Start(const StartOptions& opts) {
  std::unique_lock lock(mu_);
  if (status_.state == State::Running || status_.state == State::Degraded) {
    throw BackendError("start", EALREADY, "redirector already running in this process; call stop() first");
  }
  status_ = Status{};
  status_.cgroupPath = opts.cgroupPath;
  status_.pinned = !opts.pinDir.empty();
  CaptureLibbpfLogBegin();
  try {
    StartLocked(opts);
    CaptureLibbpfLogEnd();
    status_.state = State::Running;
  } catch (const BackendError& e) {
    std::string log = CaptureLibbpfLogEnd();
    ErrorInfo info{e.op(), e.err(), e.what(), ""};
    if (e.op() == "load") info.verifierLog = ExtractVerifierLog(log);
    ReleaseLocked(false);
    status_.state = State::Failed;
    status_.lastError = info;
  }
  return status_;
}

void LinuxBackend::StartLocked(const StartOptions& opts) {
  opts_ = opts;
  cgroupFd_.reset(::open(opts.cgroupPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroupFd_.valid()) Fail("open cgroup", errno, "cannot open cgroup v2 directory " + opts.cgroupPath);
  struct stat st;
  if (::fstat(cgroupFd_.get(), &st) != 0) Fail("open cgroup", errno, "cannot stat " + opts.cgroupPath);
  const std::uint64_t cgroupId = st.st_ino;  // a cgroup v2 directory's inode number is its id

  bpf_object* raw = bpf_object__open_file(opts.objectPath.c_str(), nullptr);
  if (raw == nullptr) Fail("open object", errno, "cannot open BPF object " + opts.objectPath + " (run npm run build)");
  obj_.reset(raw);

  bpf_map* byConn = bpf_object__find_map_by_name(raw, "by_conn");
  if (byConn == nullptr) Fail("open object", ENOENT, "BPF object has no by_conn map");
  if (opts.connMapSize < 64) Fail("start", EINVAL, "connMapSize must be at least 64");
  if (bpf_map__set_max_entries(byConn, opts.connMapSize) != 0) Fail("start", errno, "cannot size by_conn");

  SetLoadConstants(raw);
  if (!opts.pinDir.empty()) PreparePins(raw, opts.pinDir);

  int loaded;
  int loadErr;
  {
    SignalsBlocked quiet;
    loaded = bpf_object__load(raw);
    loadErr = errno;
  }
  if (loaded != 0) Fail("load", loadErr, "the kernel refused the BPF programs (see verifierLog)");

  auto mapFd = [&](const char* name) {
    bpf_map* m = bpf_object__find_map_by_name(raw, name);
    int fd = m ? bpf_map__fd(m) : -1;
    if (fd < 0) Fail("load", ENOENT, std::string("BPF object has no map ") + name);
    return fd;
  };
  rulesFd_ = mapFd("rules");
  exemptFd_ = mapFd("exempt_tgid");
  exemptCgFd_ = mapFd("exempt_cgroup");
  byConnFd_ = mapFd("by_conn");
  statsFd_ = mapFd("stats");
  rulePorts_.Reset(mapFd("rule_ports"));
  listenerPorts_.Reset(mapFd("listener_ports"));

  // Exempt the agent before any program can redirect its own connects.
  ApplySelfExemption(opts);
  // Rules survive in pinned mode: mark their ports before any program that reads the bitmaps runs.
  SyncRulePorts("start");

  for (size_t i = 0; i < kPrograms.size(); i++) {
    bpf_program* prog = bpf_object__find_program_by_name(raw, kPrograms[i].progName);
    if (prog == nullptr) Fail("load", ENOENT, std::string("BPF object has no program ") + kPrograms[i].progName);
    AttachOrUpdate(i, prog, cgroupId);
    bpf_prog_info info;
    std::memset(&info, 0, sizeof(info));
    std::uint32_t len = sizeof(info);
    ProgramInfo pi{kPrograms[i].shortName, true, 0};
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) pi.id = info.id;
    status_.programs.push_back(pi);
  }
  CheckForeignPrograms();
}

// Reuse pinned maps when they match this object; a mismatch (e.g. a new connMapSize) gets a fresh
// map, because libbpf would otherwise refuse to load.
void LinuxBackend::PreparePins(bpf_object* obj, const std::string& pinDir) {
  if (::mkdir(pinDir.c_str(), 0700) != 0 && errno != EEXIST) {
    Fail("pin", errno, "cannot create pin directory " + pinDir + " (is bpffs mounted at /sys/fs/bpf?)");
  }
  for (const char* name : kObsoleteMapNames) ::unlink((pinDir + "/" + name).c_str());
  for (const char* name : kMapNames) {
    bpf_map* m = bpf_object__find_map_by_name(obj, name);
    if (m == nullptr) continue;
    std::string path = pinDir + "/" + name;
    if (PathExists(path)) {
      UniqueFd fd(bpf_obj_get(path.c_str()));
      bpf_map_info info;
      std::memset(&info, 0, sizeof(info));
      std::uint32_t len = sizeof(info);
      bool same = fd.valid() && bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 &&
                  info.type == static_cast<std::uint32_t>(bpf_map__type(m)) &&
                  info.key_size == bpf_map__key_size(m) && info.value_size == bpf_map__value_size(m) &&
                  info.max_entries == bpf_map__max_entries(m) && info.map_flags == bpf_map__map_flags(m);
      if (!same) {
        ::unlink(path.c_str());
        status_.warnings.push_back(std::string("pinned map ") + name + " did not match this build; replaced it");
      }
    }
    if (bpf_map__set_pin_path(m, path.c_str()) != 0) Fail("pin", errno, "cannot set pin path " + path);
  }
}

// Links mode: attach a new fd link. Pinned mode: swap the program inside the pinned link if it is
// ours (same cgroup, same hook), so there is never a moment with no program attached.
void LinuxBackend::AttachOrUpdate(size_t i, bpf_program* prog, std::uint64_t cgroupId) {
  const ProgramSpec& spec = kPrograms[i];
  const std::string op = std::string("attach ") + spec.shortName;
  if (!opts_.pinDir.empty()) {
    std::string pin = LinkPinPath(opts_.pinDir, spec);
    if (PathExists(pin)) {
      LinkPtr old(bpf_link__open(pin.c_str()));
      bpf_link_info info;
      std::memset(&info, 0, sizeof(info));
      std::uint32_t len = sizeof(info);
      bool ours = old && bpf_obj_get_info_by_fd(bpf_link__fd(old.get()), &info, &len) == 0 &&
                  info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroupId &&
                  info.cgroup.attach_type == static_cast<std::uint32_t>(spec.attachType);
      if (ours) {
        if (bpf_link__update_program(old.get(), prog) != 0) Fail(op, errno, "cannot swap program in " + pin);
        links_[i] = std::move(old);
        return;
      }
      // A pin for another cgroup or hook: drop it (its link detaches once our fd closes).
      ::unlink(pin.c_str());
      status_.warnings.push_back("replaced pinned link " + pin + " that belonged to another cgroup");
    }
  }
  LinkPtr link(bpf_program__attach_cgroup(prog, cgroupFd_.get()));
  if (!link) Fail(op, errno, "cannot attach " + std::string(spec.shortName) + " to " + opts_.cgroupPath);
  if (!opts_.pinDir.empty()) {
    std::string pin = LinkPinPath(opts_.pinDir, spec);
    if (bpf_link__pin(link.get(), pin.c_str()) != 0) Fail("pin", errno, "cannot pin " + pin);
  }
  links_[i] = std::move(link);
}

// The programs' .rodata constants, written into the object before load: the agent's network
// namespace (connects made in another are refused) and the length of /proc's clock tick (exempt
// pids carry their start time in ticks). Found by name in the section's BTF, not by position.
void LinuxBackend::SetLoadConstants(bpf_object* obj) {
  std::uint64_t netns = 0;
  socklen_t len = sizeof(netns);
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s >= 0) {
    if (::getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &netns, &len) != 0) netns = 0;
    ::close(s);
  }
  if (netns == 0) {
    status_.warnings.push_back(
        "the kernel gives no network namespace cookie (SO_NETNS_COOKIE, Linux 5.14+): connects from other "
        "network namespaces are redirected too");
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  const std::uint64_t nsPerTick = hz > 0 ? 1000000000ULL / static_cast<std::uint64_t>(hz) : 10000000ULL;

  bpf_map* rodata = nullptr;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* name = bpf_map__name(m);
    size_t n = name ? std::strlen(name) : 0;
    if (bpf_map__is_internal(m) && n >= 7 && std::strcmp(name + n - 7, ".rodata") == 0) rodata = m;
  }
  const btf* b = bpf_object__btf(obj);
  size_t size = 0;
  // libbpf 1.1 hands out the initial value read-only: edit a copy and set it back.
  const auto* initial = rodata ? static_cast<const std::uint8_t*>(bpf_map__initial_value(rodata, &size)) : nullptr;
  if (initial == nullptr || b == nullptr) Fail("open object", ENOENT, "BPF object has no .rodata with BTF");
  std::vector<std::uint8_t> data(initial, initial + size);
  const btf_type* sec = btf__type_by_id(b, bpf_map__btf_value_type_id(rodata));
  if (sec == nullptr || !btf_is_datasec(sec)) Fail("open object", ENOENT, "BPF object's .rodata has no BTF section");
  int set = 0;
  const btf_var_secinfo* v = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, v++) {
    const char* var = btf__name_by_offset(b, btf__type_by_id(b, v->type)->name_off);
    const std::uint64_t* value = nullptr;
    if (std::strcmp(var, "agent_netns_cookie") == 0) value = &netns;
    if (std::strcmp(var, "ns_per_tick") == 0) value = &nsPerTick;
    if (value == nullptr) continue;
    if (v->size != sizeof(*value) || v->offset + v->size > size) Fail("open object", EINVAL, std::string("bad .rodata ") + var);
    std::memcpy(data.data() + v->offset, value, sizeof(*value));
    set++;
  }
  if (set != 2) Fail("open object", ENOENT, "BPF object lacks agent_netns_cookie or ns_per_tick");
  if (bpf_map__set_initial_value(rodata, data.data(), data.size()) != 0) Fail("open object", errno, "cannot set .rodata");
}

// Put the new self-exemption in first, then remove the previous owner's (a pid that may now
// belong to an unrelated process).
void LinuxBackend::ApplySelfExemption(const StartOptions& opts) {
  if (opts.exemptPid != 0) {
    const gpa_exempt self{GPA_EXEMPT_SELF, 0, ProcessStartTicks(opts.exemptPid)};
    if (self.start_ticks == 0) Fail("exempt", ESRCH, "cannot read the start time of pid " + std::to_string(opts.exemptPid));
    if (bpf_map_update_elem(exemptFd_, &opts.exemptPid, &self, BPF_ANY) != 0) {
      Fail("exempt", errno, "cannot exempt pid " + std::to_string(opts.exemptPid));
    }
  }
  std::vector<std::uint32_t> stale;
  std::uint32_t key = 0, next = 0;
  std::uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(exemptFd_, prev, &next) == 0 && stale.size() < GPA_EXEMPT_MAX) {
    gpa_exempt e{};
    if (next != opts.exemptPid && bpf_map_lookup_elem(exemptFd_, &next, &e) == 0 && e.mark == GPA_EXEMPT_SELF) {
      stale.push_back(next);
    }
    key = next;
    prev = &key;
  }
  for (std::uint32_t pid : stale) bpf_map_delete_elem(exemptFd_, &pid);
  // Same for the pid-namespace variant: one self cgroup at a time.
  std::vector<std::uint64_t> staleCg;
  std::uint64_t ckey = 0, cnext = 0;
  std::uint64_t* cprev = nullptr;
  while (bpf_map_get_next_key(exemptCgFd_, cprev, &cnext) == 0 && staleCg.size() < 16) {
    if (cnext != opts.exemptCgroupId) staleCg.push_back(cnext);
    ckey = cnext;
    cprev = &ckey;
  }
  const std::uint32_t self = GPA_EXEMPT_SELF;
  if (opts.exemptCgroupId != 0 && bpf_map_update_elem(exemptCgFd_, &opts.exemptCgroupId, &self, BPF_ANY) != 0) {
    Fail("exempt", errno, "cannot exempt cgroup " + std::to_string(opts.exemptCgroupId));
  }
  for (std::uint64_t id : staleCg) bpf_map_delete_elem(exemptCgFd_, &id);
}

void LinuxBackend::CheckForeignPrograms() {
  for (const auto& spec : kPrograms) {
    std::uint32_t ids[64];
    std::uint32_t count = 64, flags = 0;
    if (bpf_prog_query(cgroupFd_.get(), spec.attachType, 0, &flags, ids, &count) != 0) continue;
    if (count > 1) {
      status_.warnings.push_back(std::to_string(count - 1) + " other program(s) attached to " + spec.shortName +
                                 " on " + opts_.cgroupPath + "; they run alongside ours");
    }
  }
}

void LinuxBackend::Stop(bool unpin) {
  std::unique_lock lock(mu_);
  ReleaseLocked(unpin);
  status_ = Status{};
}

// Reverse order of Start. Unpinning first makes closing our link fds detach the programs.
void LinuxBackend::ReleaseLocked(bool unpin) {
  if (unpin && !opts_.pinDir.empty()) {
    for (const auto& spec : kPrograms) ::unlink(LinkPinPath(opts_.pinDir, spec).c_str());
    for (const char* name : kMapNames) ::unlink((opts_.pinDir + "/" + name).c_str());
    for (const char* name : kObsoleteMapNames) ::unlink((opts_.pinDir + "/" + name).c_str());
    ::rmdir(opts_.pinDir.c_str());
  }
  for (auto& l : links_) l.reset();
  rulesFd_ = exemptFd_ = exemptCgFd_ = byConnFd_ = statsFd_ = -1;
  rulePorts_.Reset(-1);
  listenerPorts_.Reset(-1);
  obj_.reset();
  cgroupFd_.reset();
}

Status LinuxBackend::GetStatus() {
  std::shared_lock lock(mu_);
  return status_;
}

void LinuxBackend::RequireRunning(const char* op) const {
  if (obj_ == nullptr || byConnFd_ < 0) throw BackendError(op, ENOTCONN, "redirector is not running; call start()");
}

std::unique_ptr<Backend> CreatePlatformBackend() { return std::make_unique<LinuxBackend>(); }

}  // namespace gpa::linux_bpf

namespace gpa {
std::unique_ptr<Backend> CreatePlatformBackend() { return linux_bpf::CreatePlatformBackend(); }
}  // namespace gpa
