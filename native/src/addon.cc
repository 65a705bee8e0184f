// N-API surface of the addon. All per-environment state lives in the GpaAddon instance (one per
// main thread or Worker). The loaded BPF object is process-wide on purpose: every worker thread
// looks connections up in the same maps the main thread attached, so the backend is one shared
// object reached through ProcessBackend(). Only Napi::Error ever crosses into JavaScript.
#include <napi.h>

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "backend.h"
#ifdef _WIN32
#include "windows/logon_session.h"
#else
#include <uv.h>

#include "posix/client_io.h"
#include "posix/hmac_sha256.h"
#include "posix/proc_snapshot.h"
#endif

namespace gpa {
namespace {

// The one backend of this process, created on first use. Deliberately never destroyed: worker
// threads may still be inside Lookup() while the process exits, and the kernel closes our fds
// (detaching non-pinned links) at exit anyway. The backend itself owns every fd with RAII.
std::shared_ptr<Backend> ProcessBackend() {
  static std::mutex mu;
  static std::shared_ptr<Backend>* holder = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (holder == nullptr) holder = new std::shared_ptr<Backend>(CreatePlatformBackend());
  return *holder;
}

Napi::Error ToJsError(Napi::Env env, const BackendError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, "GPA_ERR_REDIRECTOR"));
  err.Set("op", Napi::String::New(env, e.op()));
  err.Set("errno", Napi::Number::New(env, e.err()));
  return err;
}

// Runs fn, translating every C++ exception into a JavaScript Error.
template <typename Fn>
Napi::Value Guard(const Napi::CallbackInfo& info, Fn&& fn) {
  Napi::Env env = info.Env();
  try {
    return fn(env);
  } catch (const Napi::Error&) {
    throw;
  } catch (const BackendError& e) {
    throw ToJsError(env, e);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("guest-proxy-agent addon: ") + e.what());
  }
}

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

std::uint32_t UintArg(const Napi::CallbackInfo& info, size_t i, const char* name, std::uint32_t max) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<std::uint32_t>(d))) {
    throw Napi::RangeError::New(info.Env(), std::string(name) + " must be an integer 0.." + std::to_string(max));
  }
  return static_cast<std::uint32_t>(d);
}

IpAddr ParseAddr(Napi::Env env, const std::string& s, const char* name) {
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes) == 1) {
    a.family = 4;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) {
    a.family = 6;
  } else {
    throw Napi::TypeError::New(env, std::string(name) + " is not an IPv4 or IPv6 literal: '" + s + "'");
  }
  return a;
}

Endpoint EndpointArgs(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Endpoint e;
  e.addr = ParseAddr(info.Env(), StringArg(info, i, name), name);
  e.port = static_cast<std::uint16_t>(UintArg(info, i + 1, (std::string(name) + " port").c_str(), 65535));
  return e;
}

#ifndef _WIN32
// A socket address as an Endpoint; an IPv4-mapped IPv6 address reads as IPv4, the form the kernel
// publishes connect records under.
bool EndpointOf(const sockaddr_storage& ss, Endpoint* out) {
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    out->addr.family = 4;
    std::memcpy(out->addr.bytes, &a->sin_addr, 4);
    out->port = ntohs(a->sin_port);
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      out->addr.family = 4;
      std::memcpy(out->addr.bytes, &a->sin6_addr.s6_addr[12], 4);
    } else {
      out->addr.family = 6;
      std::memcpy(out->addr.bytes, &a->sin6_addr, 16);
    }
    out->port = ntohs(a->sin6_port);
    return true;
  }
  return false;
}

// One end of a connected socket, from its fd.
bool SocketEndpoint(int fd, bool peer, Endpoint* out) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return rc == 0 && EndpointOf(ss, out);
}

// Both ends of a connection: as the thread's ClientIo accepted it (no syscall), else from the fd.
bool ConnEndpoints(const ClientIo* io, int fd, Endpoint* peer, Endpoint* local) {
  sockaddr_storage p, l;
  if (io != nullptr && io->Addresses(fd, &p, &l) && EndpointOf(p, peer) && EndpointOf(l, local)) return true;
  return SocketEndpoint(fd, true, peer) && SocketEndpoint(fd, false, local);
}
#endif

std::string AddrString(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  inet_ntop(a.family == 4 ? AF_INET : AF_INET6, a.bytes, buf, sizeof(buf));
  return buf;
}

const char* StateName(State s) {
  switch (s) {
    case State::Running: return "running";
    case State::Degraded: return "degraded";
    case State::Failed: return "failed";
    case State::Unsupported: return "unsupported";
    case State::Stopped: break;
  }
  return "stopped";
}

Napi::Object StatusToJs(Napi::Env env, const Status& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("state", StateName(s.state));
  o.Set("mode", s.pinned ? "pinned" : "links");
  o.Set("cgroupPath", s.cgroupPath);
  Napi::Array progs = Napi::Array::New(env, s.programs.size());
  for (size_t i = 0; i < s.programs.size(); i++) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("name", s.programs[i].name);
    p.Set("attached", s.programs[i].attached);
    p.Set("id", s.programs[i].id);
    progs.Set(static_cast<uint32_t>(i), p);
  }
  o.Set("programs", progs);
  if (s.lastError) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("op", s.lastError->op);
    e.Set("errno", s.lastError->err);
    e.Set("message", s.lastError->message);
    if (!s.lastError->verifierLog.empty()) e.Set("verifierLog", s.lastError->verifierLog);
    o.Set("lastError", e);
  }
  Napi::Array warnings = Napi::Array::New(env, s.warnings.size());
  for (size_t i = 0; i < s.warnings.size(); i++) warnings.Set(static_cast<uint32_t>(i), s.warnings[i]);
  o.Set("warnings", warnings);
  return o;
}

#ifndef _WIN32
// Delivers ClientIo's events to the one JavaScript dispatcher of this thread (lib/proxy/native-io.ts)
// as onEvent(kind, fd, arg): one function and plain arguments, no object per event.
class JsIoSink : public IoSink {
 public:
  enum Kind { kAccept = 0, kData = 1, kEnd = 2, kError = 3, kDrain = 4, kConnect = 5 };
  JsIoSink(Napi::Env env, Napi::Function onEvent) : env_(env), onEvent_(Napi::Persistent(onEvent)) {}
  ~JsIoSink() override { DropSlab(); }
  void OnAccept(int listenFd, int fd) override { Emit(kAccept, listenFd, fd, nullptr, 0); }
  void OnData(int fd, const char* data, std::size_t n) override { Emit(kData, fd, 0, data, n); }
  void OnEnd(int fd) override { Emit(kEnd, fd, 0, nullptr, 0); }
  void OnError(int fd, int err) override { Emit(kError, fd, err, nullptr, 0); }
  void OnDrain(int fd) override { Emit(kDrain, fd, 0, nullptr, 0); }
  void OnConnect(int fd) override { Emit(kConnect, fd, 0, nullptr, 0); }
  // Teardown: nothing reaches JavaScript any more.
  void Detach() {
    onEvent_.Reset();
    DropSlab();
  }

 private:
  // Read bytes reach JavaScript as a view into a slab: one ArrayBuffer of kSlabBytes that the
  // reads of this thread fill one after another (8-byte aligned), as Node's Buffer pool does, and
  // that a new one replaces once full. A request or a response then costs a memcpy instead of an
  // ArrayBuffer of its own, whose malloc, backing-store bookkeeping and free (on V8's sweeper
  // threads) cost more than the rest of the copy. Views keep their slab alive; JavaScript copies
  // what it keeps across events (lib/proxy/native-io.ts). Reads above kSlabMaxRead get their own.
  static constexpr std::size_t kSlabBytes = 64 * 1024;
  static constexpr std::size_t kSlabMaxRead = 16 * 1024;

  void DropSlab() {
    if (slab_ != nullptr) napi_delete_reference(env_, slab_);
    slab_ = nullptr;
    slabData_ = nullptr;
    slabUsed_ = kSlabBytes;
  }

  // The ArrayBuffer holding a copy of data and the copy's offset in it; false when none was made.
  bool Place(napi_env env, const char* data, std::size_t n, napi_value* ab, std::size_t* offset) {
    if (n > kSlabMaxRead) {
      void* own = nullptr;
      if (napi_create_arraybuffer(env, n, &own, ab) != napi_ok) return false;
      std::memcpy(own, data, n);
      *offset = 0;
      return true;
    }
    if (slab_ == nullptr || slabUsed_ + n > kSlabBytes) {
      void* fresh = nullptr;
      napi_value v = nullptr;
      napi_ref ref = nullptr;
      if (napi_create_arraybuffer(env, kSlabBytes, &fresh, &v) != napi_ok ||
          napi_create_reference(env, v, 1, &ref) != napi_ok)
        return false;
      DropSlab();
      slab_ = ref;
      slabData_ = static_cast<char*>(fresh);
      slabUsed_ = 0;
    }
    if (napi_get_reference_value(env, slab_, ab) != napi_ok || *ab == nullptr) return false;
    std::memcpy(slabData_ + slabUsed_, data, n);
    *offset = slabUsed_;
    slabUsed_ += (n + 7) & ~static_cast<std::size_t>(7);  // before JavaScript runs: it may read again
    return true;
  }

  // Runs on a libuv callback, outside any JavaScript frame, possibly while a terminating worker's
  // loop runs its last iteration, when no JavaScript may run. Hence plain Node-API calls whose
  // failures are checked here: node-addon-api would turn a failed call into a C++ exception, and
  // building that exception itself fails in a terminating isolate (a fatal error). An event that
  // cannot be delivered is dropped; the thread's teardown closes its fd.
  // onEvent(kind, fd, a, b, c): kData: (ArrayBuffer, offset, length); kAccept: fd is the listening
  // fd, a the accepted one; kError: a is the errno; others: nothing.
  void Emit(Kind kind, int fd, int number, const char* data, std::size_t n) {
    if (onEvent_.IsEmpty()) return;
    napi_env env = env_;
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value fn = nullptr, recv = nullptr, argv[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    size_t argc = 3;
    bool ok = napi_get_reference_value(env, onEvent_, &fn) == napi_ok && fn != nullptr &&
              napi_get_global(env, &recv) == napi_ok && napi_create_int32(env, kind, &argv[0]) == napi_ok &&
              napi_create_int32(env, fd, &argv[1]) == napi_ok;
    if (ok) {
      if (kind == kData) {
        std::size_t offset = 0;
        ok = Place(env, data, n, &argv[2], &offset) &&
             napi_create_uint32(env, static_cast<uint32_t>(offset), &argv[3]) == napi_ok &&
             napi_create_uint32(env, static_cast<uint32_t>(n), &argv[4]) == napi_ok;
        argc = 5;
      } else if (kind == kAccept || kind == kError) {
        ok = napi_create_int32(env, number, &argv[2]) == napi_ok;
      } else {
        ok = napi_get_undefined(env, &argv[2]) == napi_ok;
      }
    }
    if (ok) {
      // MakeCallback, not Call: nextTicks and microtasks queued by the handler run when it returns,
      // as after any of Node's own I/O callbacks.
      napi_value result = nullptr;
      if (napi_make_callback(env, nullptr, recv, fn, argc, argv, &result) == napi_pending_exception) {
        // The dispatcher catches everything it calls; what still escapes is an uncaught exception
        // of the thread, as from any Node callback (it never unwinds into libuv).
        napi_value err = nullptr;
        if (napi_get_and_clear_last_exception(env, &err) == napi_ok && err != nullptr) napi_fatal_exception(env, err);
      }
    }
    napi_close_handle_scope(env, scope);
  }
  Napi::Env env_;
  Napi::FunctionReference onEvent_;
  napi_ref slab_ = nullptr;
  char* slabData_ = nullptr;
  std::size_t slabUsed_ = kSlabBytes;
};
#endif

}  // namespace

class GpaAddon : public Napi::Addon<GpaAddon> {
 public:
  GpaAddon(Napi::Env env, Napi::Object exports) : backend_(ProcessBackend()) {
    // References to strings need Node-API 10; an array holding them works everywhere.
    Napi::Array keys = Napi::Array::New(env, kKeyCount);
    for (int i = 0; i < kKeyCount; i++) keys.Set(static_cast<uint32_t>(i), Napi::String::New(env, kKeyNames[i]));
    keys_ = Napi::Persistent(keys);
    LayoutSizes sizes = SharedLayoutSizes();
    Napi::Object layout = Napi::Object::New(env);
    layout.Set("endpoint", sizes.endpoint);
    layout.Set("origin", sizes.origin);
    layout.Set("connKey", sizes.connKey);
#ifdef _WIN32
    const char* platform = "windows";
#else
    const char* platform = "linux";
#endif
    DefineAddon(exports, {
        InstanceMethod("probeKernel", &GpaAddon::ProbeKernel),
        InstanceMethod("start", &GpaAddon::Start),
        InstanceMethod("stop", &GpaAddon::Stop),
        InstanceMethod("status", &GpaAddon::GetStatus),
        InstanceMethod("setRule", &GpaAddon::SetRule),
        InstanceMethod("removeRule", &GpaAddon::RemoveRule),
        InstanceMethod("listRules", &GpaAddon::ListRules),
        InstanceMethod("addExemptPid", &GpaAddon::AddExemptPid),
        InstanceMethod("removeExemptPid", &GpaAddon::RemoveExemptPid),
        InstanceMethod("lookupConnection", &GpaAddon::Lookup),
#ifndef _WIN32
        InstanceMethod("lookupSocket", &GpaAddon::LookupSocket),
        InstanceMethod("lookupSocketInto", &GpaAddon::LookupSocketInto),
        InstanceMethod("ioListen", &GpaAddon::IoListen),
        InstanceMethod("ioUnlisten", &GpaAddon::IoUnlisten),
        InstanceMethod("ioWrite", &GpaAddon::IoWrite),
        InstanceMethod("ioWriteLatin1", &GpaAddon::IoWriteLatin1),
        InstanceMethod("ioConnect", &GpaAddon::IoConnect),
        InstanceMethod("ioEnd", &GpaAddon::IoEnd),
        InstanceMethod("ioClose", &GpaAddon::IoClose),
        InstanceMethod("ioSetReading", &GpaAddon::IoSetReading),
        InstanceMethod("ioAddress", &GpaAddon::IoAddress),
        InstanceMethod("ioStats", &GpaAddon::IoStats),
        InstanceMethod("hmacSha256Key", &GpaAddon::HmacKey),
        InstanceMethod("hmacSha256Hex", &GpaAddon::HmacHex),
        InstanceMethod("procSnapshot", &GpaAddon::ProcSnapshotJs),
        InstanceValue("hmacSha256Available", Napi::Boolean::New(env, HmacSha256Key::Available()), napi_enumerable),
#endif
        InstanceMethod("stats", &GpaAddon::Stats),
        InstanceMethod("userInfo", &GpaAddon::UserInfo),
        InstanceMethod("groupName", &GpaAddon::GroupName),
        InstanceMethod("createReusePortListener", &GpaAddon::CreateReusePortListener),
        InstanceMethod("createListener", &GpaAddon::CreateListener),
        InstanceMethod("trimNativeHeap", &GpaAddon::TrimNativeHeap),
#ifdef _WIN32
        InstanceMethod("logonSessionInfo", &GpaAddon::LogonSessionInfo),
#endif
        InstanceValue("layoutSizes", layout, napi_enumerable),
        InstanceValue("platform", Napi::String::New(env, platform), napi_enumerable),
    });
  }

 private:
  std::shared_ptr<Backend> backend_;
#ifndef _WIN32
  // Client-socket I/O of this thread (created by the first ioListen). Torn down by an async cleanup
  // hook, which keeps this instance alive until libuv has closed every handle it polls.
  std::unique_ptr<JsIoSink> ioSink_;
  std::unique_ptr<ClientIo> io_;
  napi_async_cleanup_hook_handle ioCleanup_ = nullptr;

  static void IoTeardown(napi_async_cleanup_hook_handle handle, void* arg) {
    auto* self = static_cast<GpaAddon*>(arg);
    self->ioSink_->Detach();
    self->io_->CloseAll([handle] { napi_remove_async_cleanup_hook(handle); });
  }

  ClientIo& Io(const char* op) {
    if (!io_) throw BackendError(op, EBADF, "no socket is polled on this thread (ioListen first)");
    return *io_;
  }

  int FdArg(const Napi::CallbackInfo& info) { return static_cast<int>(UintArg(info, 0, "fd", 0x7fffffff)); }
#endif
  // Property names of a connect record, created once: building the record per connection then
  // reuses them instead of making (and hashing) sixteen new strings.
  enum Key { kPlatform, kUid, kGid, kPid, kTid, kComm, kCgroupId, kCookie, kOrigDst, kOrigPort, kFamily,
             kViaV4Mapped, kExeDev, kExeIno, kStartTimeNs, kLogonId, kIsAdmin, kKeyCount };
  static constexpr const char* kKeyNames[kKeyCount] = {
      "platform", "uid", "gid", "pid", "tid", "comm", "cgroupId", "cookie", "origDst", "origPort", "family",
      "viaV4Mapped", "exeDev", "exeIno", "startTimeNs", "logonId", "isAdmin"};
  Napi::Reference<Napi::Array> keys_;
  // Bytes of the record lookupSocketInto writes (layout in lib/redirector/origin-record.ts).
  static constexpr size_t kOriginRecordBytes = 128;

  Napi::Object OriginToJs(Napi::Env env, const ConnOrigin& o) {
    Napi::Object r = Napi::Object::New(env);
    Napi::Array keys = keys_.Value();
    auto set = [&](Key k, napi_value v) { r.Set(keys.Get(static_cast<uint32_t>(k)), v); };
#ifdef _WIN32
    // No numeric uid/gid on Windows: never let the C++ default 0 read as root. An administrator
    // is mapped to 0 (the root gates mean "administrator" there), everyone else to a non-root id.
    const std::uint32_t synthetic = o.isAdmin ? 0u : 0xfffffffeu;
    set(kPlatform, Napi::String::New(env, "win32"));
    set(kUid, Napi::Number::New(env, synthetic));
    set(kGid, Napi::Number::New(env, synthetic));
#else
    set(kPlatform, Napi::String::New(env, "linux"));
    set(kUid, Napi::Number::New(env, o.uid));
    set(kGid, Napi::Number::New(env, o.gid));
#endif
    set(kPid, Napi::Number::New(env, o.pid));
    set(kTid, Napi::Number::New(env, o.tid));
    set(kComm, Napi::String::New(env, o.comm));
    set(kCgroupId, Napi::BigInt::New(env, o.cgroupId));
    set(kCookie, Napi::BigInt::New(env, o.cookie));
    set(kOrigDst, Napi::String::New(env, AddrString(o.origDst.addr)));
    set(kOrigPort, Napi::Number::New(env, o.origDst.port));
    set(kFamily, Napi::Number::New(env, o.origDst.addr.family));
    set(kViaV4Mapped, Napi::Boolean::New(env, o.viaV4Mapped));
    if (o.hasExeId) {
      set(kExeDev, Napi::BigInt::New(env, o.exeDev));
      set(kExeIno, Napi::BigInt::New(env, o.exeIno));
    }
    if (o.startTimeNs != 0) set(kStartTimeNs, Napi::BigInt::New(env, o.startTimeNs));
    if (o.hasLogonId) {
      set(kLogonId, Napi::BigInt::New(env, o.logonId));
      set(kIsAdmin, Napi::Boolean::New(env, o.isAdmin));
    }
    return r;
  }

  Napi::Value ProbeKernel(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      ProbeResult r = backend_->ProbeKernel();
      Napi::Object o = Napi::Object::New(env);
      o.Set("supported", r.supported);
      Napi::Array reasons = Napi::Array::New(env, r.reasons.size());
      for (size_t i = 0; i < r.reasons.size(); i++) reasons.Set(static_cast<uint32_t>(i), r.reasons[i]);
      o.Set("reasons", reasons);
      return o;
    });
  }

  // start({ objectPath, cgroupPath, pinDir, connMapSize, exemptPid, exemptCgroupId: bigint })
  Napi::Value Start(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "start() takes an options object");
      Napi::Object o = info[0].As<Napi::Object>();
      auto str = [&](const char* k) {
        Napi::Value v = o.Get(k);
        return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
      };
      auto num = [&](const char* k, double dflt) {
        Napi::Value v = o.Get(k);
        return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
      };
      StartOptions opts;
      opts.objectPath = str("objectPath");
      opts.cgroupPath = str("cgroupPath");
      opts.pinDir = str("pinDir");
      opts.connMapSize = static_cast<std::uint32_t>(num("connMapSize", 16384));
      opts.exemptPid = static_cast<std::uint32_t>(num("exemptPid", 0));
      Napi::Value cg = o.Get("exemptCgroupId");
      if (cg.IsBigInt()) {
        bool lossless = true;
        opts.exemptCgroupId = cg.As<Napi::BigInt>().Uint64Value(&lossless);
      }
      return StatusToJs(env, backend_->Start(opts));
    });
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      bool unpin = info.Length() > 0 && info[0].ToBoolean().Value();
      backend_->Stop(unpin);
      return env.Undefined();
    });
  }

  Napi::Value GetStatus(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value { return StatusToJs(env, backend_->GetStatus()); });
  }

  // setRule(dst, dstPort, proxy, proxyPort)
  Napi::Value SetRule(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      Rule r{EndpointArgs(info, 0, "dst"), EndpointArgs(info, 2, "proxy")};
      backend_->SetRule(r);
      return env.Undefined();
    });
  }

  Napi::Value RemoveRule(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      return Napi::Boolean::New(env, backend_->RemoveRule(EndpointArgs(info, 0, "dst")));
    });
  }

  Napi::Value ListRules(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      std::vector<Rule> rules = backend_->ListRules();
      Napi::Array out = Napi::Array::New(env, rules.size());
      for (size_t i = 0; i < rules.size(); i++) {
        Napi::Object r = Napi::Object::New(env);
        r.Set("dst", AddrString(rules[i].dst.addr));
        r.Set("dstPort", rules[i].dst.port);
        r.Set("proxy", AddrString(rules[i].proxy.addr));
        r.Set("proxyPort", rules[i].proxy.port);
        out.Set(static_cast<uint32_t>(i), r);
      }
      return out;
    });
  }

  Napi::Value AddExemptPid(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      backend_->AddExemptPid(UintArg(info, 0, "pid", 0x7fffffff));
      return env.Undefined();
    });
  }

  Napi::Value RemoveExemptPid(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      return Napi::Boolean::New(env, backend_->RemoveExemptPid(UintArg(info, 0, "pid", 0x7fffffff)));
    });
  }

  // lookupConnection(peerAddr, peerPort, localAddr, localPort, consume) -> origin | null
  Napi::Value Lookup(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      Endpoint peer = EndpointArgs(info, 0, "peer");
      Endpoint local = EndpointArgs(info, 2, "local");
      bool consume = info.Length() > 4 && info[4].ToBoolean().Value();
      std::optional<ConnOrigin> o = backend_->Lookup(peer, local, consume);
      if (!o) return env.Null();
      return OriginToJs(env, *o);
    });
  }

#ifndef _WIN32
  // lookupSocket(fd, consume) -> origin | null: the accepted socket's 4-tuple read from its fd here,
  // then the same lookup (one call on the accept path instead of two address getters and a lookup).
  Napi::Value LookupSocket(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const int fd = static_cast<int>(UintArg(info, 0, "fd", 0x7fffffff));
      const bool consume = info.Length() > 1 && info[1].ToBoolean().Value();
      Endpoint peer, local;
      // Read from the fd (a socket not accepted by this thread's ClientIo), a socket already reset by
      // its client has no peer: a miss, answered like any other.
      if (!ConnEndpoints(io_.get(), fd, &peer, &local)) return env.Null();
      std::optional<ConnOrigin> o = backend_->Lookup(peer, local, consume);
      if (!o) return env.Null();
      return OriginToJs(env, *o);
    });
  }

  // lookupSocketInto(fd, consume, out: Uint8Array of kOriginRecordBytes) -> 1 (found, written) | 0.
  // The accept path's lookup without building a JS object here: setting sixteen properties through
  // N-API costs more than the lookup itself, and JavaScript builds the same object from these bytes
  // with one literal (lib/redirector/origin-record.ts holds the layout; keep the two in step).
  Napi::Value LookupSocketInto(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const int fd = static_cast<int>(UintArg(info, 0, "fd", 0x7fffffff));
      const bool consume = info.Length() > 1 && info[1].ToBoolean().Value();
      if (info.Length() < 3 || !info[2].IsTypedArray() ||
          info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw Napi::TypeError::New(env, "out must be a Uint8Array");
      Napi::Uint8Array out = info[2].As<Napi::Uint8Array>();
      if (out.ByteLength() < kOriginRecordBytes)
        throw Napi::RangeError::New(env, "out must hold " + std::to_string(kOriginRecordBytes) + " bytes");
      Endpoint peer, local;
      if (!ConnEndpoints(io_.get(), fd, &peer, &local)) return Napi::Number::New(env, 0);
      std::optional<ConnOrigin> o = backend_->Lookup(peer, local, consume);
      if (!o) return Napi::Number::New(env, 0);
      std::uint8_t* b = out.Data();
      std::memset(b, 0, kOriginRecordBytes);
      auto put = [&](size_t off, const void* v, size_t n) { std::memcpy(b + off, v, n); };
      put(0, &o->cgroupId, 8);
      put(8, &o->cookie, 8);
      put(16, &o->exeDev, 8);
      put(24, &o->exeIno, 8);
      put(32, &o->startTimeNs, 8);
      put(40, &o->uid, 4);
      put(44, &o->gid, 4);
      put(48, &o->pid, 4);
      put(52, &o->tid, 4);
      put(56, &o->origDst.port, 2);
      b[58] = o->origDst.addr.family;
      b[59] = static_cast<std::uint8_t>((o->viaV4Mapped ? 1 : 0) | (o->hasExeId ? 2 : 0));
      const size_t commLen = std::min<size_t>(o->comm.size(), 16);
      b[60] = static_cast<std::uint8_t>(commLen);
      put(64, o->comm.data(), commLen);
      const std::string addr = AddrString(o->origDst.addr);
      const size_t addrLen = std::min<size_t>(addr.size(), 48);
      b[61] = static_cast<std::uint8_t>(addrLen);
      put(80, addr.data(), addrLen);
      return Napi::Number::New(env, 1);
    });
  }

  // The thread's ClientIo, created on first use with onEvent (info[argIndex]) as its one dispatcher.
  ClientIo& EnsureIo(const Napi::CallbackInfo& info, size_t argIndex, const char* op) {
    Napi::Env env = info.Env();
    if (!io_) {
      if (info.Length() <= argIndex || !info[argIndex].IsFunction())
        throw Napi::TypeError::New(env, "onEvent must be a function");
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
        throw BackendError(op, EINVAL, "this thread has no libuv loop");
      ioSink_ = std::make_unique<JsIoSink>(env, info[argIndex].As<Napi::Function>());
      io_ = std::make_unique<ClientIo>(loop, ioSink_.get());
      if (napi_add_async_cleanup_hook(env, IoTeardown, this, &ioCleanup_) != napi_ok)
        throw BackendError(op, EINVAL, "cannot register the cleanup hook");
    }
    return *io_;
  }

  // ioListen(fd, onEvent): accepts on a listening fd on this thread's loop; every event of it and
  // of its connections goes to onEvent(kind, fd, arg) (kinds: JsIoSink::Kind). One onEvent per thread.
  Napi::Value IoListen(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const int fd = FdArg(info);
      EnsureIo(info, 1, "ioListen").Listen(fd);
      return env.Undefined();
    });
  }

  // ioConnect(address, port, onEvent) -> fd | -errno: an outbound TCP connection to a numeric IPv4
  // or IPv6 address, on this thread's loop: kConnect once established, kError when it failed.
  Napi::Value IoConnect(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "address must be a string");
      const std::string host = info[0].As<Napi::String>().Utf8Value();
      const auto port = static_cast<std::uint16_t>(UintArg(info, 1, "port", 65535));
      sockaddr_storage ss{};
      socklen_t len = 0;
      auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
      if (inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
      } else if (inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
      } else {
        throw BackendError("ioConnect", EINVAL, "not a numeric IP address: " + host);
      }
      ClientIo& io = EnsureIo(info, 2, "ioConnect");
      return Napi::Number::New(env, io.Connect(reinterpret_cast<sockaddr*>(&ss), len));
    });
  }

  Napi::Value IoUnlisten(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      return Napi::Boolean::New(env, io_ && io_->Unlisten(FdArg(info)));
    });
  }

  // ioWrite(fd, bytes: Uint8Array) -> bytes still queued (0: all in the kernel) | -errno
  Napi::Value IoWrite(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const int fd = FdArg(info);
      if (info.Length() < 2 || !info[1].IsTypedArray()) throw Napi::TypeError::New(env, "bytes must be a Uint8Array");
      Napi::TypedArray t = info[1].As<Napi::TypedArray>();
      const char* data = static_cast<const char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
      return Napi::Number::New(env, static_cast<double>(Io("ioWrite").Write(fd, data, t.ByteLength())));
    });
  }

  // ioWriteLatin1(fd, text) -> as ioWrite, for a string of code points below 256 (an HTTP head),
  // written as one byte each without a Buffer in between.
  Napi::Value IoWriteLatin1(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const int fd = FdArg(info);
      if (info.Length() < 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "text must be a string");
      size_t n = 0;
      if (napi_get_value_string_latin1(env, info[1], nullptr, 0, &n) != napi_ok)
        throw Napi::TypeError::New(env, "text must be a string");
      thread_local std::vector<char> scratch;
      if (scratch.size() < n + 1) scratch.resize(n + 1);
      size_t copied = 0;
      if (napi_get_value_string_latin1(env, info[1], scratch.data(), n + 1, &copied) != napi_ok)
        throw Napi::TypeError::New(env, "text must be a string");
      std::int64_t queued = Io("ioWriteLatin1").Write(fd, scratch.data(), copied);
      if (scratch.size() > 64 * 1024) std::vector<char>().swap(scratch);  // a large body is not kept
      return Napi::Number::New(env, static_cast<double>(queued));
    });
  }

  Napi::Value IoEnd(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      return Napi::Boolean::New(env, io_ && io_->End(FdArg(info)));
    });
  }

  Napi::Value IoClose(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      return Napi::Boolean::New(env, io_ && io_->Close(FdArg(info)));
    });
  }

  Napi::Value IoSetReading(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const bool on = info.Length() > 1 && info[1].ToBoolean().Value();
      return Napi::Boolean::New(env, io_ && io_->SetReading(FdArg(info), on));
    });
  }

  // ioStats() -> { connections, handlesCreated, handlesReused }: this thread's polled sockets.
  Napi::Value IoStats(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      Napi::Object r = Napi::Object::New(env);
      r.Set("connections", Napi::Number::New(env, io_ ? static_cast<double>(io_->connectionCount()) : 0));
      r.Set("handlesCreated", Napi::Number::New(env, io_ ? static_cast<double>(io_->handlesCreated()) : 0));
      r.Set("handlesReused", Napi::Number::New(env, io_ ? static_cast<double>(io_->handlesReused()) : 0));
      return r;
    });
  }

  // ioAddress(fd, peer) -> [address, port] | null (a socket already reset has no peer)
  Napi::Value IoAddress(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const int fd = FdArg(info);
      const bool wantPeer = info.Length() > 1 && info[1].ToBoolean().Value();
      Endpoint e;
      sockaddr_storage p, l;
      const bool ok = io_ && io_->Addresses(fd, &p, &l) ? EndpointOf(wantPeer ? p : l, &e) : SocketEndpoint(fd, wantPeer, &e);
      if (!ok) return env.Null();
      Napi::Array r = Napi::Array::New(env, 2);
      r.Set(0u, Napi::String::New(env, AddrString(e.addr)));
      r.Set(1u, Napi::Number::New(env, e.port));
      return r;
    });
  }
#endif

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      for (const auto& [name, value] : backend_->Stats()) out.Set(name, Napi::BigInt::New(env, value));
      return out;
    });
  }

  Napi::Value UserInfo(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      std::optional<UserEntry> u = LookupUser(UintArg(info, 0, "uid", 0xffffffffu));
      if (!u) return env.Null();
      Napi::Object r = Napi::Object::New(env);
      r.Set("name", u->name);
      r.Set("gid", u->gid);
      Napi::Array groups = Napi::Array::New(env, u->groups.size());
      for (size_t i = 0; i < u->groups.size(); i++) {
        Napi::Object g = Napi::Object::New(env);
        g.Set("gid", u->groups[i].gid);
        if (u->groups[i].name) {
          g.Set("name", *u->groups[i].name);
        } else {
          g.Set("name", env.Null());
        }
        groups.Set(static_cast<uint32_t>(i), g);
      }
      r.Set("groups", groups);
      return r;
    });
  }

  Napi::Value GroupName(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      std::optional<std::string> n = LookupGroupName(UintArg(info, 0, "gid", 0xffffffffu));
      return n ? Napi::Value(Napi::String::New(env, *n)) : env.Null();
    });
  }

#ifndef _WIN32
  // procSnapshot(pid) -> what /proc says about a process (posix/proc_snapshot.h), or null when it
  // is gone: [startTime, exeDev, exeIno, exePath | null, rawCmdline, cgroup, stable]. An array:
  // elements are cheaper to set than named properties (lib/redirector names them).
  Napi::Value ProcSnapshotJs(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      const auto pid = static_cast<pid_t>(UintArg(info, 0, "pid", 0x7fffffff));
      std::optional<ProcSnapshot> s = ReadProcSnapshot(pid);
      if (!s) return env.Null();
      Napi::Array r = Napi::Array::New(env, 7);
      r.Set(0u, Napi::String::New(env, s->startTicks));
      r.Set(1u, Napi::BigInt::New(env, s->exeDev));
      r.Set(2u, Napi::BigInt::New(env, s->exeIno));
      r.Set(3u, s->exePath ? Napi::Value(Napi::String::New(env, *s->exePath)) : env.Null());
      r.Set(4u, Napi::String::New(env, s->cmdline));  // UTF-8, as node:fs read it
      napi_value cgroup;
      NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, s->cgroup.data(), s->cgroup.size(), &cgroup),
                           Napi::Value());
      r.Set(5u, cgroup);
      r.Set(6u, Napi::Boolean::New(env, s->stable));
      return r;
    });
  }
#endif

#ifdef _WIN32
  // logonSessionInfo(logonId: bigint) -> { userName, domain, sid, logonType } | null
  Napi::Value LogonSessionInfo(const Napi::CallbackInfo& info) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      bool lossless = false;
      if (info.Length() < 1 || !info[0].IsBigInt()) throw Napi::TypeError::New(env, "logonId must be a bigint");
      std::uint64_t id = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) throw Napi::RangeError::New(env, "logonId must fit in 64 bits");
      std::optional<win::LogonSessionInfo> s = win::LookupLogonSession(id);
      if (!s) return env.Null();
      Napi::Object r = Napi::Object::New(env);
      r.Set("userName", s->userName);
      r.Set("domain", s->domain);
      r.Set("sid", s->sid);
      r.Set("logonType", s->logonType);
      return r;
    });
  }
#endif

  // createReusePortListener(host, port, backlog?) -> fd (SO_REUSEPORT)
  Napi::Value CreateReusePortListener(const Napi::CallbackInfo& info) { return Listener(info, true); }

  // createListener(host, port, backlog, reusePort) -> fd
  Napi::Value CreateListener(const Napi::CallbackInfo& info) {
    return Listener(info, info.Length() > 3 && info[3].ToBoolean().Value());
  }

  Napi::Value Listener(const Napi::CallbackInfo& info, bool reusePort) {
    return Guard(info, [&](Napi::Env env) -> Napi::Value {
      std::string host = StringArg(info, 0, "host");
      auto port = static_cast<std::uint16_t>(UintArg(info, 1, "port", 65535));
      int backlog = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 511;
      return Napi::Number::New(env, static_cast<double>(CreateTcpListener(host, port, backlog, reusePort)));
    });
  }

#ifndef _WIN32
  // hmacSha256Key(key: Uint8Array) -> an external holding the key's inner and outer SHA-256 states.
  Napi::Value HmacKey(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray()) throw Napi::TypeError::New(env, "key must be a Uint8Array");
    Napi::TypedArray t = info[0].As<Napi::TypedArray>();
    const auto* data = static_cast<const std::uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    std::unique_ptr<HmacSha256Key> key = HmacSha256Key::Create(data, t.ByteLength());
    if (!key) throw Napi::Error::New(env, "HMAC-SHA256: this process's OpenSSL does not export SHA256_Init/Update/Final");
    auto ext = Napi::External<HmacSha256Key>::New(env, key.release(), [](Napi::Env, HmacSha256Key* k) { delete k; });
    ext.TypeTag(&kHmacKeyTag);
    return ext;
  }

  // hmacSha256Hex(key, head: string, body: Uint8Array | null, tail: string) -> 64 lowercase hex.
  // The strings are hashed as latin1 (one byte per UTF-16 code unit, its low byte), as
  // node:crypto's update(s, 'latin1') does: header text off the wire is latin1 already.
  Napi::Value HmacHex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsExternal() || !info[0].As<Napi::Object>().CheckTypeTag(&kHmacKeyTag))
      throw Napi::TypeError::New(env, "key must come from hmacSha256Key");
    if (!info[1].IsString() || !info[3].IsString()) throw Napi::TypeError::New(env, "head and tail must be strings");
    const HmacSha256Key* key = info[0].As<Napi::External<HmacSha256Key>>().Data();
    Latin1 head(env, info[1]);
    Latin1 tail(env, info[3]);
    HmacSha256Key::Part parts[3] = {{head.data(), head.size()}, {nullptr, 0}, {tail.data(), tail.size()}};
    if (info[2].IsTypedArray()) {
      Napi::TypedArray b = info[2].As<Napi::TypedArray>();
      parts[1] = {static_cast<const char*>(b.ArrayBuffer().Data()) + b.ByteOffset(), b.ByteLength()};
    } else if (!info[2].IsNull() && !info[2].IsUndefined()) {
      throw Napi::TypeError::New(env, "body must be a Uint8Array or null");
    }
    char hex[64];
    key->Hex(parts, 3, hex);
    return Napi::String::New(env, hex, sizeof(hex));
  }

  // A JavaScript string's latin1 bytes: on the stack when short, else on the heap.
  class Latin1 {
   public:
    Latin1(napi_env env, napi_value s) {
      std::size_t n = 0;
      NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_latin1(env, s, stack_, sizeof(stack_), &n));
      if (n + 1 < sizeof(stack_)) {
        data_ = stack_;
        size_ = n;
        return;
      }
      NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_latin1(env, s, nullptr, 0, &n));
      heap_.resize(n + 1);
      NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_latin1(env, s, heap_.data(), heap_.size(), &n));
      data_ = heap_.data();
      size_ = n;
    }
    const char* data() const { return data_; }
    std::size_t size() const { return size_; }

   private:
    char stack_[2048];
    std::vector<char> heap_;
    const char* data_ = stack_;
    std::size_t size_ = 0;
  };

  static constexpr napi_type_tag kHmacKeyTag = {0x6770612d686d6163ULL, 0x2d73686132353621ULL};
#endif

  // glibc: free memory of all malloc arenas back to the OS.
  Napi::Value TrimNativeHeap(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
    return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
    return Napi::Boolean::New(info.Env(), false);
#endif
  }
};

}  // namespace gpa

using gpa::GpaAddon;
NODE_API_ADDON(GpaAddon)
