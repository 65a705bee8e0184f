// libbpf prints through one process-wide callback. We route it into a per-thread buffer while a
// start() runs on that thread, so the verifier log ends up in status.lastError.verifierLog instead
// of on the agent's stderr. GPA_LIBBPF_DEBUG=1 also echoes everything to stderr.
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "linux_backend.h"

namespace gpa::linux_bpf {
namespace {

thread_local std::string* tl_capture = nullptr;
thread_local std::string tl_buffer;

int PrintToCapture(enum libbpf_print_level level, const char* fmt, va_list args) {
  va_list copy;
  va_copy(copy, args);
  if (std::getenv("GPA_LIBBPF_DEBUG") != nullptr) {
    std::vfprintf(stderr, fmt, args);
  }
  int n = 0;
  if (tl_capture != nullptr && level != LIBBPF_DEBUG) {
    char chunk[1024];
    n = std::vsnprintf(chunk, sizeof(chunk), fmt, copy);
    // The verifier log arrives in lines; keep at most 1 MiB of it.
    if (n > 0 && tl_capture->size() < (1u << 20)) tl_capture->append(chunk, std::min<size_t>(n, sizeof(chunk) - 1));
  }
  va_end(copy);
  return n;
}

}  // namespace

void CaptureLibbpfLogBegin() {
  static std::once_flag installed;
  std::call_once(installed, [] { libbpf_set_print(PrintToCapture); });
  tl_buffer.clear();
  tl_capture = &tl_buffer;
}

std::string CaptureLibbpfLogEnd() {
  tl_capture = nullptr;
  std::string out;
  out.swap(tl_buffer);
  return out;
}

}  // namespace gpa::linux_bpf
