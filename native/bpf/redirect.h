/* Structs and constants shared by redirect.bpf.c, the C++ addon and (by size) lib/redirector.
 * Every struct has explicit padding so the layout is the same under clang -target bpf and the
 * host compiler; sizes are asserted here and again in TypeScript (test/redirector/layout.test.ts).
 * Byte order: addresses are stored as they appear on the wire (network order); ports are in host
 * order, so the addon and the BPF programs never disagree about which half of a word is which. */
#ifndef GPA_REDIRECT_H
#define GPA_REDIRECT_H

#ifdef __cplusplus
#include <cstdint>
#define GPA_U8 std::uint8_t
#define GPA_U16 std::uint16_t
#define GPA_U32 std::uint32_t
#define GPA_U64 std::uint64_t
#define GPA_STATIC_ASSERT static_assert
#else
#include <linux/types.h>
#define GPA_U8 __u8
#define GPA_U16 __u16
#define GPA_U32 __u32
#define GPA_U64 __u64
#define GPA_STATIC_ASSERT _Static_assert
#endif

#define GPA_FAMILY_V4 4
#define GPA_FAMILY_V6 6
#define GPA_COMM_LEN 16

/* Marks in exempt_tgid values: who put the pid there, so a restart replaces only its stale self. */
#define GPA_EXEMPT_SELF 1
#define GPA_EXEMPT_USER 2

/* exempt_tgid value: who put the pid there, and the process's start time in clock ticks since
 * boot (field 22 of /proc/<pid>/stat), so the exemption dies with the process: a later process that
 * is handed the same pid (pid_max is small) is not exempt. */
struct gpa_exempt {
  GPA_U32 mark;
  GPA_U32 pad;
  GPA_U64 start_ticks;
};

/* origin.flags */
#define GPA_ORIGIN_V4_MAPPED 1

/* rules key and value: one endpoint. IPv4 uses addr[0] only, the rest is zero. */
struct gpa_endpoint {
  GPA_U32 addr[4];
  GPA_U16 port;
  GPA_U8 family;
  GPA_U8 pad;
};

/* What the kernel knew at connect time, captured in the caller's context. */
struct gpa_origin {
  GPA_U64 cookie;
  GPA_U64 cgroup_id;
  GPA_U32 pid; /* tgid */
  GPA_U32 tid;
  GPA_U32 uid;
  GPA_U32 gid;
  GPA_U32 orig_addr[4];
  GPA_U16 orig_port;
  GPA_U8 family; /* family of the original destination as looked up in rules */
  GPA_U8 flags;
  char comm[GPA_COMM_LEN];
  /* The caller's executable at connect time (task->mm->exe_file->f_inode): device in the kernel's
   * encoding (major << 20 | minor) and inode number; both 0 when unknown (no mm). An exec after the
   * connect cannot change these, so the agent trusts /proc/<pid>/exe only if it still names them. */
  GPA_U32 exe_dev;
  GPA_U64 exe_ino;
  /* The process's start time (group leader's start_boottime, ns since boot): with the pid, it names
   * the process uniquely, so the agent can cache what /proc says about it without re-reading /proc
   * on every connect to learn whether the pid was reused. 0 when unknown. */
  GPA_U64 start_time;
};

/* by_conn key: the full 4-tuple as the listener sees it after accept(). v4-mapped addresses are
 * folded to IPv4 so a lookup with `127.0.0.1` matches an AF_INET6 client. */
struct gpa_conn_key {
  GPA_U32 client_addr[4];
  GPA_U32 listener_addr[4];
  GPA_U16 client_port;
  GPA_U16 listener_port;
  GPA_U8 family;
  GPA_U8 pad[3];
};

/* Per-CPU counters, index into the stats array. Names are exported by the addon in this order. */
enum gpa_stat {
  GPA_STAT_REDIRECTED4 = 0,
  GPA_STAT_REDIRECTED6,
  GPA_STAT_EXEMPTED,
  GPA_STAT_PUBLISHED,
  GPA_STAT_PUBLISH_FAILED,
  GPA_STAT_CLEANED,
  GPA_STAT_STORE_FAILED,
  GPA_STAT_FAMILY_MISMATCH,
  GPA_STAT_FOREIGN_NETNS,
  GPA_STAT_BIND_REFUSED,
  GPA_STAT_HANDOFF_SPILLED,
  GPA_STAT_MAX,
};

#define GPA_STAT_NAMES                                                                                 \
  {"redirected4", "redirected6", "exempted", "published", "publish_failed", "cleaned", "store_failed", \
   "family_mismatch", "foreign_netns", "bind_refused", "handoff_spilled"}

#define GPA_DEFAULT_CONN_MAP_SIZE 16384
/* connect4/6 -> sockops hand-off (redirect.bpf.c): slots (a power of two), slots tried per
 * connect, and the age after which an unclaimed record counts as abandoned. 128 slots of 128 bytes
 * keep the array under 32 KiB, the size up to which the kernel kmallocs map memory (direct-mapped,
 * huge pages) instead of vmallocing it (4 KiB pages: a TLB miss and a page walk per cold connect). */
#define GPA_HANDOFF_SLOTS 128
#define GPA_HANDOFF_PROBES 4
#define GPA_HANDOFF_STALE_NS 10000000000ULL
/* Records that found every slot they may use busy go to an LRU hash keyed by the socket cookie
 * instead (handoff_spill): slots filled on purpose, with connects that fail after connect4, must not
 * cost other callers their attribution. A live record lives for microseconds and is the most
 * recently used, so a caller would have to push this many newer ones through in that time to
 * evict it. */
#define GPA_HANDOFF_SPILL_SIZE 4096
/* rule_ports / listener_ports bitmaps: 65536 ports, 64 per word */
#define GPA_PORT_BITMAP_WORDS 1024
#define GPA_RULES_MAX 64
#define GPA_EXEMPT_MAX 1024

GPA_STATIC_ASSERT(sizeof(struct gpa_endpoint) == 20, "gpa_endpoint layout");
GPA_STATIC_ASSERT(sizeof(struct gpa_origin) == 88, "gpa_origin layout");
GPA_STATIC_ASSERT(__builtin_offsetof(struct gpa_origin, start_time) == 80, "gpa_origin.start_time offset");
GPA_STATIC_ASSERT(__builtin_offsetof(struct gpa_origin, exe_dev) == 68, "gpa_origin.exe_dev offset");
GPA_STATIC_ASSERT(__builtin_offsetof(struct gpa_origin, exe_ino) == 72, "gpa_origin.exe_ino offset");
GPA_STATIC_ASSERT(sizeof(struct gpa_conn_key) == 40, "gpa_conn_key layout");
GPA_STATIC_ASSERT(sizeof(struct gpa_exempt) == 16, "gpa_exempt layout");

#endif
