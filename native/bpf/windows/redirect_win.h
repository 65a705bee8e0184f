// SPDX-License-Identifier: MIT
// Every struct that crosses the boundary between redirect_win.bpf.c (kernel, eBPF-for-Windows)
// and native/src/windows/ (user space, MSVC x64). Explicit padding, fixed-width fields only, so
// the BPF and the x64 Windows ABI lay them out identically; test/windows compiles a layout probe
// for both targets and compares, and the static asserts below pin the numbers.
#ifndef GPA_REDIRECT_WIN_H
#define GPA_REDIRECT_WIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define GPA_WIN_STATIC_ASSERT static_assert
#else
#define GPA_WIN_STATIC_ASSERT _Static_assert
#endif

// Map names the loader looks up (bpf_object__find_map_by_name) and the program's function name
// (bpf_object__find_program_by_name). Keep in sync with the definitions in redirect_win.bpf.c.
#define GPA_WIN_PROGRAM_NAME "gpa_connect4"
#define GPA_WIN_MAP_RULES "gpa_rules"
#define GPA_WIN_MAP_EXEMPT "gpa_exempt_pid"
#define GPA_WIN_MAP_CONN "gpa_conn_by_port"
#define GPA_WIN_MAP_STATS "gpa_stats"

// "GPAW" little-endian: marks our record inside a WFP redirect context, which other eBPF programs
// or WFP callouts may also set. A context whose magic differs is not ours and is ignored.
#define GPA_WIN_RECORD_MAGIC 0x57415047u

// rules: original destination (IPv4, TCP) -> local listener. All fields network byte order.
struct gpa_win_rule_key {
  uint32_t addr;
  uint16_t port;
  uint16_t pad; // must be zero: hash keys compare all bytes
};

struct gpa_win_rule_value {
  uint32_t addr;
  uint16_t port;
  uint16_t pad;
};

// gpa_conn_by_port key: {protocol, client source port in network byte order}. Source port alone
// identifies the client because the listener is on loopback and every client is local.
struct gpa_win_conn_key {
  uint32_t protocol;    // IPPROTO_TCP
  uint16_t source_port; // network byte order, as bpf_sock_addr_t.msg_src_port
  uint16_t pad;
};

// Flags in gpa_win_conn_record.flags.
#define GPA_WIN_FLAG_ADMIN_KNOWN 0x01 // bpf_is_current_admin returned >= 0
#define GPA_WIN_FLAG_IN_MAP 0x02      // also published in gpa_conn_by_port (delete it after use)

// The attribution record: published in gpa_conn_by_port and attached as the redirect context.
struct gpa_win_conn_record {
  uint32_t magic;     // GPA_WIN_RECORD_MAGIC
  uint32_t pid;       // process id (high half of bpf_get_current_pid_tgid)
  uint32_t tid;       // thread id (low half)
  uint32_t orig_addr; // original destination, network byte order
  uint64_t logon_id;  // LUID of the caller's logon session, all 64 bits
  uint16_t orig_port; // original destination port, network byte order
  uint8_t is_admin;   // 1 if the caller is an administrator
  uint8_t flags;      // GPA_WIN_FLAG_*
  uint32_t reserved;  // zero; keeps the size a multiple of 8
};

// Indexes in gpa_stats (per-CPU array of uint64_t counters).
enum gpa_win_stat {
  GPA_WIN_STAT_REDIRECTED = 0,
  GPA_WIN_STAT_EXEMPTED = 1,
  GPA_WIN_STAT_PUBLISHED = 2,
  GPA_WIN_STAT_CONTEXT_SET = 3,
  GPA_WIN_STAT_PUBLISH_FAILED = 4,
  GPA_WIN_STAT_NOT_TCP = 5,
  GPA_WIN_STAT_COUNT = 6
};

GPA_WIN_STATIC_ASSERT(sizeof(struct gpa_win_rule_key) == 8, "gpa_win_rule_key size");
GPA_WIN_STATIC_ASSERT(sizeof(struct gpa_win_rule_value) == 8, "gpa_win_rule_value size");
GPA_WIN_STATIC_ASSERT(sizeof(struct gpa_win_conn_key) == 8, "gpa_win_conn_key size");
GPA_WIN_STATIC_ASSERT(sizeof(struct gpa_win_conn_record) == 32, "gpa_win_conn_record size");
GPA_WIN_STATIC_ASSERT(offsetof(struct gpa_win_conn_record, logon_id) == 16, "logon_id");
GPA_WIN_STATIC_ASSERT(offsetof(struct gpa_win_conn_record, orig_port) == 24, "orig_port");
GPA_WIN_STATIC_ASSERT(offsetof(struct gpa_win_conn_record, flags) == 27, "flags");

#endif // GPA_REDIRECT_WIN_H
