// SPDX-License-Identifier: MIT
// The few EbpfApi.dll entry points the Windows backend calls, declared here so the addon builds
// without the eBPF-for-Windows SDK. The DLL is loaded at run time (LoadLibrary/GetProcAddress):
// a machine without eBPF-for-Windows still loads the addon and gets `unsupported` with a reason.
//
// Each signature mirrors the declaration in microsoft/ebpf-for-windows include/bpf/libbpf.h,
// include/bpf/bpf.h or include/ebpf_api.h (named per entry); all are exported by
// ebpfapi/Source.def. Only opaque pointers, int file descriptors and plain C types cross.
#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace gpa::win {

// Opaque libbpf objects owned by EbpfApi.dll.
struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;

using fd_t = int; // include/ebpf_core_structs.h: typedef int32_t fd_t
using ebpf_result_t = int; // include/ebpf_result.h: enum, EBPF_SUCCESS = 0
constexpr ebpf_result_t kEbpfSuccess = 0;

// include/bpf/libbpf.h
using bpf_object__open_t = bpf_object *(__cdecl *)(const char *path);
using bpf_object__load_t = int(__cdecl *)(bpf_object *obj);
using bpf_object__close_t = void(__cdecl *)(bpf_object *obj);
using bpf_object__find_program_by_name_t = bpf_program *(__cdecl *)(const bpf_object *obj,
                                                                     const char *name);
using bpf_object__find_map_by_name_t = bpf_map *(__cdecl *)(const bpf_object *obj,
                                                             const char *name);
using bpf_map__fd_t = int(__cdecl *)(const bpf_map *map);
using bpf_program__fd_t = int(__cdecl *)(const bpf_program *prog);
using bpf_link__destroy_t = int(__cdecl *)(bpf_link *link);
using libbpf_num_possible_cpus_t = int(__cdecl *)(void);
// include/bpf/bpf.h
using bpf_map_update_elem_t = int(__cdecl *)(int fd, const void *key, const void *value,
                                            uint64_t flags);
using bpf_map_lookup_elem_t = int(__cdecl *)(int fd, const void *key, void *value);
using bpf_map_delete_elem_t = int(__cdecl *)(int fd, const void *key);
using bpf_map_get_next_key_t = int(__cdecl *)(int fd, const void *key, void *next_key);
// include/ebpf_api.h: attach_type NULL = derive from the section name ("cgroup/connect4");
// attach_parameters for sock_addr hooks is the uint32_t network compartment id.
using ebpf_program_attach_t = ebpf_result_t(__cdecl *)(const bpf_program *program,
                                                       const GUID *attach_type,
                                                       void *attach_parameters,
                                                       size_t attach_params_size,
                                                       bpf_link **link);

// Resolved entry points. Every pointer is non-null after a successful EfwApi::load().
struct EfwApi {
  bpf_object__open_t object_open = nullptr;
  bpf_object__load_t object_load = nullptr;
  bpf_object__close_t object_close = nullptr;
  bpf_object__find_program_by_name_t find_program = nullptr;
  bpf_object__find_map_by_name_t find_map = nullptr;
  bpf_map__fd_t map_fd = nullptr;
  bpf_program__fd_t program_fd = nullptr;
  bpf_link__destroy_t link_destroy = nullptr;
  libbpf_num_possible_cpus_t num_possible_cpus = nullptr;
  bpf_map_update_elem_t map_update = nullptr;
  bpf_map_lookup_elem_t map_lookup = nullptr;
  bpf_map_delete_elem_t map_delete = nullptr;
  bpf_map_get_next_key_t map_next_key = nullptr;
  ebpf_program_attach_t program_attach = nullptr;

  HMODULE module = nullptr;
  std::wstring path;     // the DLL actually loaded
  uint16_t version[4]{}; // file version of EbpfApi.dll: major, minor, build, revision
};

// Outcome of locating and loading EbpfApi.dll. `ok` false => `reason` says what is missing and
// how to fix it; the backend reports it as state `unsupported`.
struct EfwLoadResult {
  bool ok = false;
  std::string reason;
};

// Loads EbpfApi.dll from %ProgramFiles%\ebpf-for-windows (the MSI's install folder), then from
// the system search path, checks its version against efw_version.h and resolves every entry
// point. No side effects beyond LoadLibrary; safe to call for probe().
EfwLoadResult load_efw_api(EfwApi &api);

// FreeLibrary and clear every pointer.
void unload_efw_api(EfwApi &api);

} // namespace gpa::win
