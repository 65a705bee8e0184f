// SPDX-License-Identifier: MIT
// Minimal eBPF-for-Windows declarations for redirect_win.bpf.c.
//
// Why our own header: the eBPF-for-Windows SDK headers (bpf_helpers.h, ebpf_nethooks.h,
// ebpf_structs.h) come with the Windows NuGet package and pull in ebpf_windows.h and MSVC-isms;
// CI on Linux must compile the program with plain `clang -target bpf`. This file declares exactly
// what the program uses, nothing more. Every item names the upstream header it mirrors
// (microsoft/ebpf-for-windows, include/...). If an upstream release changes one of them, the
// program must be rebuilt against the new value; the Windows backend refuses versions outside the
// range listed in native/src/windows/efw_version.h for that reason.
#ifndef GPA_EFW_MINIMAL_H
#define GPA_EFW_MINIMAL_H

#include <stddef.h>
#include <stdint.h>

// --- Sections and BTF map definition macros -------------------------------------------------
// Mirrors include/bpf_helpers.h (SEC, __uint, __type). eBPF-for-Windows reads BTF-defined maps
// from the ".maps" section, same encoding as libbpf.
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name

// --- Map types ------------------------------------------------------------------------------
// Mirrors include/ebpf_structs.h, enum bpf_map_type (ebpf_map_type_t).
#define EFW_BPF_MAP_TYPE_HASH 1
#define EFW_BPF_MAP_TYPE_PERCPU_ARRAY 5
#define EFW_BPF_MAP_TYPE_LRU_HASH 8

// Mirrors include/ebpf_structs.h (#define BPF_ANY 0x0).
#define EFW_BPF_ANY 0

// --- Context: bpf_sock_addr_t ---------------------------------------------------------------
// Mirrors include/ebpf_nethooks.h, typedef struct bpf_sock_addr { ... } bpf_sock_addr_t.
// Field order, widths and the anonymous struct/union nesting are kept exactly: the nesting is what
// places msg_src_port at 20 and user_ip4 at 24 (each anonymous struct is 16 + 2 bytes, padded to
// 20). Offsets are asserted below and by test/windows.
typedef struct bpf_sock_addr {
  uint32_t family; // IP address family (AF_INET = 2 on Windows too).
  struct {
    union {
      uint32_t msg_src_ip4; // Source (local for egress) address, network byte order.
      uint32_t msg_src_ip6[4];
    };
    uint16_t msg_src_port; // Source port, network byte order; 0 if not yet assigned.
  };
  struct {
    union {
      uint32_t user_ip4; // Destination address, network byte order. Writable at connect.
      uint32_t user_ip6[4];
    };
    uint16_t user_port; // Destination port, network byte order. Writable at connect.
  };
  uint32_t protocol;       // IP protocol (IPPROTO_TCP = 6).
  uint32_t compartment_id; // Network compartment id (1 = default compartment).
  uint64_t interface_luid; // Interface LUID.
} bpf_sock_addr_t;

_Static_assert(sizeof(bpf_sock_addr_t) == 64, "bpf_sock_addr_t size drifted from ebpf_nethooks.h");
_Static_assert(offsetof(bpf_sock_addr_t, msg_src_port) == 20, "msg_src_port offset");
_Static_assert(offsetof(bpf_sock_addr_t, user_ip4) == 24, "user_ip4 offset");
_Static_assert(offsetof(bpf_sock_addr_t, user_port) == 40, "user_port offset");
_Static_assert(offsetof(bpf_sock_addr_t, protocol) == 44, "protocol offset");

// Mirrors include/ebpf_nethooks.h: BPF_SOCK_ADDR_VERDICT_REJECT = 0, and 1 is PROCEED in older
// releases / PROCEED_SOFT (ebpf_sock_addr_verdict_t) in current ones. 1 means "let the connect
// continue, possibly with the rewritten destination" in both.
#define EFW_SOCK_ADDR_VERDICT_PROCEED 1

// Mirrors the Windows SDK ws2def.h / ebpf-for-windows include/uapi/linux/in.h value.
#define EFW_IPPROTO_TCP 6
#define EFW_AF_INET 2

// --- Helpers ----------------------------------------------------------------------------------
// Global helper ids mirror include/ebpf_structs.h, enum ebpf_helper_id_t:
//   BPF_FUNC_map_lookup_elem = 1, BPF_FUNC_map_update_elem = 2,
//   BPF_FUNC_get_current_pid_tgid = 19, BPF_FUNC_get_current_logon_id = 20,
//   BPF_FUNC_is_current_admin = 21.
// The sock_addr extension helper id mirrors include/ebpf_nethooks.h, ebpf_sock_addr_helper_id_t:
//   SOCK_ADDR_EXT_HELPER_FN_BASE = 0xFFFF,
//   BPF_FUNC_sock_addr_set_redirect_context = SOCK_ADDR_EXT_HELPER_FN_BASE + 2.
// Prototypes mirror the EBPF_HELPER(...) declarations in include/bpf_helper_defs.h and
// include/ebpf_nethooks.h. Calling a constant function pointer makes clang emit `call <id>`.
#define EFW_BPF_FUNC_map_lookup_elem 1
#define EFW_BPF_FUNC_map_update_elem 2
#define EFW_BPF_FUNC_get_current_pid_tgid 19
#define EFW_BPF_FUNC_get_current_logon_id 20
#define EFW_BPF_FUNC_is_current_admin 21
#define EFW_SOCK_ADDR_EXT_HELPER_FN_BASE 0xFFFF
#define EFW_BPF_FUNC_sock_addr_set_redirect_context (EFW_SOCK_ADDR_EXT_HELPER_FN_BASE + 2)

// Typedef + cast-to-constant macro, exactly the EBPF_HELPER pattern upstream uses.
typedef void *(*efw_map_lookup_elem_t)(void *map, const void *key);
typedef int64_t (*efw_map_update_elem_t)(void *map, const void *key, const void *value,
                                         uint64_t flags);
typedef uint64_t (*efw_get_current_pid_tgid_t)(void);
typedef uint64_t (*efw_get_current_logon_id_t)(const void *ctx);
typedef int32_t (*efw_is_current_admin_t)(const void *ctx);
typedef int (*efw_sock_addr_set_redirect_context_t)(bpf_sock_addr_t *ctx, void *data,
                                                    uint32_t data_size);

// Returns a pointer to the value, or NULL.
#define bpf_map_lookup_elem ((efw_map_lookup_elem_t)EFW_BPF_FUNC_map_lookup_elem)
// Returns 0 on success, <0 on failure.
#define bpf_map_update_elem ((efw_map_update_elem_t)EFW_BPF_FUNC_map_update_elem)
// (process id << 32) | thread id of the thread calling connect().
#define bpf_get_current_pid_tgid ((efw_get_current_pid_tgid_t)EFW_BPF_FUNC_get_current_pid_tgid)
// 64-bit logon id (LUID) of the caller; 0 on error. All 64 bits matter.
#define bpf_get_current_logon_id ((efw_get_current_logon_id_t)EFW_BPF_FUNC_get_current_logon_id)
// 1 admin, 0 not admin, <0 error.
#define bpf_is_current_admin ((efw_is_current_admin_t)EFW_BPF_FUNC_is_current_admin)
// Attaches `data` to the connection; the accepting process reads it with
// SIO_QUERY_WFP_CONNECTION_REDIRECT_CONTEXT. 0 on success, <0 on failure.
#define bpf_sock_addr_set_redirect_context \
  ((efw_sock_addr_set_redirect_context_t)EFW_BPF_FUNC_sock_addr_set_redirect_context)

#endif // GPA_EFW_MINIMAL_H
