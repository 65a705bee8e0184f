// SPDX-License-Identifier: MIT
// Locates EbpfApi.dll, checks its version, resolves the entry points declared in efw_api.h.
#include "efw_api.h"

#include "efw_version.h"

#include <cstdio>
#include <vector>

#ifdef _MSC_VER
#pragma comment(lib, "version.lib")
#endif

namespace gpa::win {
namespace {

std::string narrow(const std::wstring &w) {
  if (w.empty())
    return {};
  int n = WideCharToMultiByte(CP_UTF8, 0, w.c_str(), static_cast<int>(w.size()), nullptr, 0,
                              nullptr, nullptr);
  std::string out(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0)
    WideCharToMultiByte(CP_UTF8, 0, w.c_str(), static_cast<int>(w.size()), out.data(), n, nullptr,
                        nullptr);
  return out;
}

// %ProgramFiles%\ebpf-for-windows\EbpfApi.dll: where the eBPF-for-Windows MSI installs it.
std::wstring default_install_path() {
  wchar_t buf[MAX_PATH];
  DWORD n = GetEnvironmentVariableW(L"ProgramFiles", buf, MAX_PATH);
  std::wstring base = (n > 0 && n < MAX_PATH) ? std::wstring(buf, n) : L"C:\\Program Files";
  return base + L"\\ebpf-for-windows\\EbpfApi.dll";
}

bool read_file_version(const std::wstring &path, uint16_t out[4]) {
  DWORD ignored = 0;
  DWORD size = GetFileVersionInfoSizeW(path.c_str(), &ignored);
  if (size == 0)
    return false;
  std::vector<unsigned char> data(size);
  if (!GetFileVersionInfoW(path.c_str(), 0, size, data.data()))
    return false;
  VS_FIXEDFILEINFO *info = nullptr;
  UINT len = 0;
  if (!VerQueryValueW(data.data(), L"\\", reinterpret_cast<void **>(&info), &len) || !info ||
      len < sizeof(VS_FIXEDFILEINFO))
    return false;
  out[0] = HIWORD(info->dwFileVersionMS);
  out[1] = LOWORD(info->dwFileVersionMS);
  out[2] = HIWORD(info->dwFileVersionLS);
  out[3] = LOWORD(info->dwFileVersionLS);
  return true;
}

// GetProcAddress returns FARPROC; the cast to our declared signature is the whole point of
// efw_api.h. Going through void* keeps -Wcast-function-type quiet on mingw.
template <typename Fn> bool resolve(HMODULE module, const char *name, Fn &slot,
                                    std::string &missing) {
  FARPROC p = GetProcAddress(module, name);
  if (!p) {
    missing += missing.empty() ? name : std::string(", ") + name;
    return false;
  }
  slot = reinterpret_cast<Fn>(reinterpret_cast<void *>(p));
  return true;
}

} // namespace

EfwLoadResult load_efw_api(EfwApi &api) {
  EfwLoadResult result;
  unload_efw_api(api);

  std::wstring path = default_install_path();
  // LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR lets EbpfApi.dll find its own dependencies beside it.
  HMODULE module = LoadLibraryExW(path.c_str(), nullptr,
                                  LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR |
                                      LOAD_LIBRARY_SEARCH_DEFAULT_DIRS);
  if (!module) {
    module = LoadLibraryExW(L"EbpfApi.dll", nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32);
    if (module) {
      wchar_t buf[MAX_PATH];
      DWORD n = GetModuleFileNameW(module, buf, MAX_PATH);
      path = std::wstring(buf, n);
    }
  }
  if (!module) {
    result.reason = "eBPF-for-Windows is not installed: EbpfApi.dll not found in " +
                    narrow(default_install_path()) +
                    " or System32 (Windows error " + std::to_string(GetLastError()) +
                    "). Install eBPF-for-Windows as described in docs/windows.md.";
    return result;
  }
  api.module = module;
  api.path = path;

  if (!read_file_version(path, api.version)) {
    result.reason = "cannot read the file version of " + narrow(path) +
                    "; reinstall eBPF-for-Windows (docs/windows.md)";
    unload_efw_api(api);
    return result;
  }
  if (!efw_version_supported(api.version[0], api.version[1])) {
    char found[64];
    std::snprintf(found, sizeof found, "%u.%u.%u", api.version[0], api.version[1],
                  api.version[2]);
    char wanted[64];
    std::snprintf(wanted, sizeof wanted, ">= %u.%u and < %u.0", kEfwMinMajor, kEfwMinMinor,
                  kEfwUntestedMajor);
    result.reason = std::string("eBPF-for-Windows version mismatch: ") + narrow(path) + " is " +
                    found + ", this agent supports " + wanted +
                    "; install a supported release (docs/windows.md)";
    unload_efw_api(api);
    return result;
  }

  std::string missing;
  bool all = true;
  all &= resolve(module, "bpf_object__open", api.object_open, missing);
  all &= resolve(module, "bpf_object__load", api.object_load, missing);
  all &= resolve(module, "bpf_object__close", api.object_close, missing);
  all &= resolve(module, "bpf_object__find_program_by_name", api.find_program, missing);
  all &= resolve(module, "bpf_object__find_map_by_name", api.find_map, missing);
  all &= resolve(module, "bpf_map__fd", api.map_fd, missing);
  all &= resolve(module, "bpf_program__fd", api.program_fd, missing);
  all &= resolve(module, "bpf_link__destroy", api.link_destroy, missing);
  all &= resolve(module, "libbpf_num_possible_cpus", api.num_possible_cpus, missing);
  all &= resolve(module, "bpf_map_update_elem", api.map_update, missing);
  all &= resolve(module, "bpf_map_lookup_elem", api.map_lookup, missing);
  all &= resolve(module, "bpf_map_delete_elem", api.map_delete, missing);
  all &= resolve(module, "bpf_map_get_next_key", api.map_next_key, missing);
  all &= resolve(module, "ebpf_program_attach", api.program_attach, missing);
  if (!all) {
    result.reason = "EbpfApi.dll at " + narrow(path) + " lacks " + missing +
                    "; install a supported eBPF-for-Windows release (docs/windows.md)";
    unload_efw_api(api);
    return result;
  }
  result.ok = true;
  return result;
}

void unload_efw_api(EfwApi &api) {
  if (api.module)
    FreeLibrary(api.module);
  api = EfwApi{};
}

} // namespace gpa::win
