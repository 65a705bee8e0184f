// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Redirect TCP connects to the metadata endpoints to the agent's listener and publish, under the
 * full 4-tuple, who made each connect. UAPI headers only; see docs/redirector.md.
 *
 * Cost (bench/micro/ebpf-connect.ts): what a program run costs here is mostly cache and TLB misses,
 * not instructions. So a connect touches as little cold memory as it can: no allocation (socket
 * storage cost two allocations and an RCU free per connect), one preallocated hand-off slot that
 * neighbours the previous connect's, and the by_conn insert the agent needs anyway. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kernel_types.h"
#include "redirect.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* destination {addr, port, family} -> listener endpoint */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GPA_RULES_MAX);
  __type(key, struct gpa_endpoint);
  __type(value, struct gpa_endpoint);
} rules SEC(".maps");

/* Set by the addon before load (the only .rodata variables). agent_netns_cookie: SO_NETNS_COOKIE
 * of a socket the agent made, i.e. the network namespace its listener is in. ns_per_tick: the
 * clock tick of /proc/<pid>/stat's start time (1e9 / sysconf(_SC_CLK_TCK)). */
const volatile __u64 agent_netns_cookie = 0;
const volatile __u64 ns_per_tick = 10000000;

/* kernel tgid -> {GPA_EXEMPT_SELF | GPA_EXEMPT_USER, the process's start time} */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GPA_EXEMPT_MAX);
  __type(key, __u32);
  __type(value, struct gpa_exempt);
} exempt_tgid SEC(".maps");

/* cgroup id -> 1; used instead of the tgid when the agent runs in a pid namespace */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u64);
  __type(value, __u32);
} exempt_cgroup SEC(".maps");

/* The record from connect4/6 to sockops's TCP_CONNECT_CB: both run inside the same connect() call,
 * microseconds apart, but only the second knows the source port. Slots are indexed by the socket
 * cookie, which the kernel hands out sequentially per CPU, so back-to-back connects use neighbouring
 * slots; a busy slot sends the writer to the next of GPA_HANDOFF_PROBES. Only the owner (same cookie)
 * takes a record out, under the slot's lock, so a record is never read half-written. A record whose
 * connect failed before TCP_CONNECT_CB (e.g. no free source port) is left behind until the same
 * socket connects again or a writer reclaims it (hand_off). */
struct gpa_handoff {
  struct bpf_spin_lock lock;
  /* 0, or when a writer first found the slot taken: bpf_ktime_get_coarse_ns() >> 20 (~1 ms units,
   * wraps after ~52 days; compared as a signed difference), never 0 once set. */
  __u32 since;
  __u64 cookie; /* owner socket; 0: free */
  struct gpa_origin origin;
  struct gpa_endpoint to; /* where connect4/6 sent the socket: publish only if it went there */
  __u32 pad2;
};
_Static_assert(sizeof(struct gpa_handoff) == 128, "gpa_handoff: two cache lines");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, GPA_HANDOFF_SLOTS);
  __type(key, __u32);
  __type(value, struct gpa_handoff);
} handoff SEC(".maps");

/* Where a record goes when every slot it may use is busy: socket cookie -> record. Only then, so the
 * common connect never touches it; sockops looks here only when no slot holds its record. */
struct gpa_spilled {
  struct gpa_origin origin;
  struct gpa_endpoint to;
  __u32 pad; /* (__u32)cookie of the owner socket */
};
_Static_assert(sizeof(struct gpa_spilled) == 112, "gpa_spilled layout");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, GPA_HANDOFF_SPILL_SIZE);
  __type(key, __u64);
  __type(value, struct gpa_spilled);
} handoff_spill SEC(".maps");

/* Set once anything has spilled; until then sockops skips the spill lookup (a cold hash lookup on
 * every direct connect to the listener). */
__u32 handoff_spill_used = 0;

/* One bit per TCP port (word = port / 64), written by the addon from the rules: rule_ports marks
 * destination ports, listener_ports proxy ports. connect4/6 look a destination up in `rules` only if
 * its port is marked, and sockops looks for a hand-off record only on loopback sockets to a marked
 * listener port: every other connect leaves after one inlined array load (8 KiB, kmalloc'd)
 * instead of a hash lookup. Not pinned: the addon fills them from the (pinned) rules before any
 * program that reads them is attached. */
struct gpa_port_bitmap {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, GPA_PORT_BITMAP_WORDS);
  __type(key, __u32);
  __type(value, __u64);
};
struct gpa_port_bitmap rule_ports SEC(".maps");
struct gpa_port_bitmap listener_ports SEC(".maps");

/* 4-tuple -> record; the addon sets max_entries (connMapSize) before load */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, GPA_DEFAULT_CONN_MAP_SIZE);
  __type(key, struct gpa_conn_key);
  __type(value, struct gpa_origin);
} by_conn SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, GPA_STAT_MAX);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which) {
  __u64 *v = bpf_map_lookup_elem(&stats, &which);
  if (v) *v += 1;
}

static __always_inline int port_marked(void *bitmap, __u16 port) {
  __u32 word = port >> 6;
  __u64 *bits = bpf_map_lookup_elem(bitmap, &word);
  return bits && ((*bits >> (port & 63)) & 1);
}

static __always_inline struct gpa_handoff *handoff_slot(__u64 cookie, __u32 probe) {
  __u32 idx = ((__u32)cookie + probe) & (GPA_HANDOFF_SLOTS - 1);
  struct gpa_handoff *h = bpf_map_lookup_elem(&handoff, &idx);
#ifdef GPA_TEST_BREAK_VERIFIER /* test/redirector/lifecycle.test.ts: a missing NULL check must be rejected */
  h->pad2 = 0;
#endif
  return h;
}

/* The running executable's (device, inode), read in the caller's context at connect time. The task
 * pointer carries the kernel's BTF type, so these are plain loads (field offsets relocated by CO-RE
 * against the running kernel), not one probe-read helper call per hop. NULL anywhere (a kernel
 * thread has no mm) leaves both 0: unknown. */
static __always_inline __u64 process_start(struct task_struct *task) {
  struct task_struct *leader = task->group_leader;
  return leader ? leader->start_boottime : 0;
}

static __always_inline void record_exe(struct task_struct *task, struct gpa_origin *o) {
  o->start_time = process_start(task);
  struct mm_struct *mm = task->mm;
  if (!mm) return;
  struct file *exe = mm->exe_file;
  if (!exe) return;
  struct inode *ino = exe->f_inode;
  if (!ino) return;
  o->exe_ino = ino->i_ino;
  o->exe_dev = ino->i_sb->s_dev;
}

/* Store the record in the first of GPA_HANDOFF_PROBES slots that is free (or already this socket's,
 * left by an earlier failed connect). With `now` set, also take a slot abandoned for
 * GPA_HANDOFF_STALE_NS: a busy slot gets a timestamp the first time a writer finds it busy, and is
 * taken by a writer that finds it still busy that much later (the owner takes a live record out
 * within microseconds). The clock is read only then: on the common path it is a cold cache line. */
static __always_inline int hand_off(__u64 cookie, const struct gpa_origin *o, const struct gpa_endpoint *to,
                                    __u64 now) {
  for (__u32 i = 0; i < GPA_HANDOFF_PROBES; i++) {
    struct gpa_handoff *h = handoff_slot(cookie, i);
    if (!h) return 0;
    int stored = 0;
    bpf_spin_lock(&h->lock);
    const __u32 now_u = (__u32)(now >> 20) | 1;
    if (h->cookie == 0 || h->cookie == cookie ||
        (now && h->since && (__s32)(now_u - h->since) > (__s32)(GPA_HANDOFF_STALE_NS >> 20))) {
      h->cookie = cookie;
      h->since = 0;
      h->origin = *o;
      h->to = *to;
      stored = 1;
    } else if (now && !h->since) {
      h->since = now_u;
    }
    bpf_spin_unlock(&h->lock);
    if (stored) return 1;
  }
  return 0;
}

/* What connect4/6 do with a connect to a rule's destination. */
#define GPA_PASS 0     /* leave it alone: the agent itself, or a pid the operator exempted */
#define GPA_REDIRECT 1 /* to the agent's listener */
#define GPA_REFUSE 2   /* fail the connect (EPERM) */

static __always_inline int exempt(__u32 tgid, __u64 cgroup_id, struct task_struct *task) {
  struct gpa_exempt *e = bpf_map_lookup_elem(&exempt_tgid, &tgid);
  /* The pid alone is not enough: once the exempted process is gone (an agent stopped with its links
   * pinned), its pid goes to some later process. The start time tells them apart. */
  if (e && ns_per_tick && process_start(task) / ns_per_tick == e->start_ticks) return 1;
  return bpf_map_lookup_elem(&exempt_cgroup, &cgroup_id) != 0;
}

/* Capture who is connecting and hand the record to sockops. Never a redirect for an exempt caller;
 * never a connect to a protected destination that bypasses the agent. */
static __always_inline int capture(struct bpf_sock_addr *ctx, const struct gpa_endpoint *dst,
                                   const struct gpa_endpoint *to, __u8 flags) {
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u32 tgid = pid_tgid >> 32;
  __u64 cgroup_id = bpf_get_current_cgroup_id();
  struct task_struct *task = bpf_get_current_task_btf();
  /* The agent's own connects (and any pid the operator exempted) go where they asked. */
  if (exempt(tgid, cgroup_id, task)) {
    count(GPA_STAT_EXEMPTED);
    return GPA_PASS;
  }
  /* A connect made in another network namespace (a container's) would go to that namespace's
   * loopback, to whoever listens there, and its record would share by_conn with the agent's own
   * namespace, where a look-alike 4-tuple could claim it. The agent cannot serve it: refuse it. */
  if (agent_netns_cookie && bpf_get_netns_cookie(ctx) != agent_netns_cookie) {
    count(GPA_STAT_FOREIGN_NETNS);
    return GPA_REFUSE;
  }
  struct gpa_origin o = {};
  __u64 uid_gid = bpf_get_current_uid_gid();
  __u64 cookie = bpf_get_socket_cookie(ctx);
  o.cookie = cookie;
  o.cgroup_id = cgroup_id;
  o.pid = tgid;
  o.tid = (__u32)pid_tgid;
  o.uid = (__u32)uid_gid;
  o.gid = uid_gid >> 32;
  o.orig_addr[0] = dst->addr[0];
  o.orig_addr[1] = dst->addr[1];
  o.orig_addr[2] = dst->addr[2];
  o.orig_addr[3] = dst->addr[3];
  o.orig_port = dst->port;
  o.family = dst->family;
  o.flags = flags;
  bpf_get_current_comm(o.comm, sizeof(o.comm));
  record_exe(task, &o);
  if (hand_off(cookie, &o, to, 0)) return GPA_REDIRECT;
  /* every slot tried is taken (rare): now read the clock and reclaim one abandoned long enough */
  if (hand_off(cookie, &o, to, bpf_ktime_get_coarse_ns())) return GPA_REDIRECT;
  /* Still no slot: slots filled on purpose by connects that fail after this point. Spill the record
   * to the LRU hash, where the oldest (abandoned) records give way first. */
  struct gpa_spilled sp = {};
  sp.origin = o;
  sp.to = *to;
  sp.pad = (__u32)cookie; /* the record's last word names its socket too (see publish) */
  if (bpf_map_update_elem(&handoff_spill, &cookie, &sp, BPF_ANY) == 0) {
    handoff_spill_used = 1;
    count(GPA_STAT_HANDOFF_SPILLED);
    return GPA_REDIRECT;
  }
  /* Not even that (the map refused the update): redirect anyway, without a record. The agent answers
   * 421 (not attributed); letting the connect through would hand the destination to whoever can
   * fill the slots. */
  count(GPA_STAT_STORE_FAILED);
  return GPA_REDIRECT;
}

SEC("cgroup/connect4")
int gpa_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  if (!port_marked(&rule_ports, port)) return 1;
  struct gpa_endpoint dst = {};
  dst.addr[0] = ctx->user_ip4;
  dst.port = port;
  dst.family = GPA_FAMILY_V4;
  struct gpa_endpoint *to = bpf_map_lookup_elem(&rules, &dst);
  if (!to) return 1;
  if (to->family != GPA_FAMILY_V4) {
    count(GPA_STAT_FAMILY_MISMATCH);
    return 1;
  }
  int v = capture(ctx, &dst, to, 0);
  if (v == GPA_REFUSE) return 0;
  if (v == GPA_PASS) return 1;
  ctx->user_ip4 = to->addr[0];
  ctx->user_port = bpf_htons(to->port);
  count(GPA_STAT_REDIRECTED4);
  return 1;
}

SEC("cgroup/connect6")
int gpa_connect6(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  if (!port_marked(&rule_ports, port)) return 1;
  struct gpa_endpoint dst = {};
  __u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2], a3 = ctx->user_ip6[3];
  /* ::ffff:a.b.c.d is an IPv4 destination reached through an IPv6 socket: look it up as IPv4 */
  int mapped = a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff);
  if (mapped) {
    dst.addr[0] = a3;
    dst.family = GPA_FAMILY_V4;
  } else {
    dst.addr[0] = a0;
    dst.addr[1] = a1;
    dst.addr[2] = a2;
    dst.addr[3] = a3;
    dst.family = GPA_FAMILY_V6;
  }
  dst.port = port;
  struct gpa_endpoint *to = bpf_map_lookup_elem(&rules, &dst);
  if (!to) return 1;
  if (to->family != dst.family) {
    count(GPA_STAT_FAMILY_MISMATCH);
    return 1;
  }
  int v = capture(ctx, &dst, to, mapped ? GPA_ORIGIN_V4_MAPPED : 0);
  if (v == GPA_REFUSE) return 0;
  if (v == GPA_PASS) return 1;
  if (mapped) {
    ctx->user_ip6[0] = 0;
    ctx->user_ip6[1] = 0;
    ctx->user_ip6[2] = bpf_htonl(0xffff);
    ctx->user_ip6[3] = to->addr[0];
  } else {
    ctx->user_ip6[0] = to->addr[0];
    ctx->user_ip6[1] = to->addr[1];
    ctx->user_ip6[2] = to->addr[2];
    ctx->user_ip6[3] = to->addr[3];
  }
  ctx->user_port = bpf_htons(to->port);
  count(GPA_STAT_REDIRECTED6);
  return 1;
}

/* Only root may bind a listener port of the rules on a loopback or wildcard address. With the
 * agent down and its links pinned (a crash, a restart), redirected connects still go to that port,
 * and any user may bind a port above 1024: whoever bound it first would receive root's metadata
 * requests, could answer them in the host's name, and would keep the restarted agent out
 * (EADDRINUSE). A bind to another address or port leaves after the bitmap load. */
static __always_inline int bind_allowed(struct bpf_sock_addr *ctx, int loopback_or_any) {
  if (!loopback_or_any || ctx->protocol != IPPROTO_TCP) return 1;
  if (!port_marked(&listener_ports, bpf_ntohs((__u16)ctx->user_port))) return 1;
  if ((__u32)bpf_get_current_uid_gid() == 0) return 1;
  count(GPA_STAT_BIND_REFUSED);
  return 0;
}

SEC("cgroup/bind4")
int gpa_bind4(struct bpf_sock_addr *ctx) {
  __u32 a = bpf_ntohl(ctx->user_ip4);
  return bind_allowed(ctx, a == 0 || (a >> 24) == 127);
}

SEC("cgroup/bind6")
int gpa_bind6(struct bpf_sock_addr *ctx) {
  __u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2], a3 = bpf_ntohl(ctx->user_ip6[3]);
  int any_or_lo = a0 == 0 && a1 == 0 && a2 == 0 && (a3 == 0 || a3 == 1); /* ::, ::1 */
  int mapped = a0 == 0 && a1 == 0 && a2 == bpf_htonl(0xffff) && (a3 == 0 || (a3 >> 24) == 127);
  return bind_allowed(ctx, any_or_lo || mapped);
}

/* The 4-tuple as the listener will see it: client = our local end, listener = our remote end.
 * Returns 0 when the remote end is not loopback: the agent's listener always is (lib/redirector
 * refuses other proxy addresses), so such a socket was not redirected and needs nothing more. Only
 * a few loads from the context: every TCP connect in the cgroup passes here. */
static __always_inline int conn_key_of(struct bpf_sock_ops *ctx, struct gpa_conn_key *k) {
  if (ctx->family == AF_INET) {
    __u32 r = ctx->remote_ip4;
    if ((bpf_ntohl(r) >> 24) != 127) return 0;
    k->family = GPA_FAMILY_V4;
    k->client_addr[0] = ctx->local_ip4;
    k->listener_addr[0] = r;
  } else {
    __u32 r0 = ctx->remote_ip6[0], r1 = ctx->remote_ip6[1], r2 = ctx->remote_ip6[2], r3 = ctx->remote_ip6[3];
    if (r0 != 0 || r1 != 0) return 0;
    if (r2 == bpf_htonl(0xffff) && (bpf_ntohl(r3) >> 24) == 127) {
      /* v4-mapped: folded to IPv4, as the agent normalises ::ffff:127.0.0.1 */
      k->family = GPA_FAMILY_V4;
      k->client_addr[0] = ctx->local_ip6[3];
      k->listener_addr[0] = r3;
    } else if (r2 == 0 && r3 == bpf_htonl(1)) {
      k->family = GPA_FAMILY_V6;
      k->client_addr[0] = ctx->local_ip6[0];
      k->client_addr[1] = ctx->local_ip6[1];
      k->client_addr[2] = ctx->local_ip6[2];
      k->client_addr[3] = ctx->local_ip6[3];
      k->listener_addr[3] = r3;
    } else {
      return 0;
    }
  }
  k->client_port = (__u16)ctx->local_port;
  k->listener_port = (__u16)bpf_ntohl(ctx->remote_port);
  return 1;
}

static __always_inline int went_to(const struct gpa_endpoint *to, const struct gpa_conn_key *k) {
  return to->family == k->family && to->port == k->listener_port && to->addr[0] == k->listener_addr[0] &&
         to->addr[1] == k->listener_addr[1] && to->addr[2] == k->listener_addr[2] &&
         to->addr[3] == k->listener_addr[3];
}

/* TCP_CONNECT_CB: the source port exists now; take the record out of its hand-off slot and publish
 * it in by_conn under the 4-tuple. */
static __always_inline void publish(struct bpf_sock_ops *ctx) {
  struct gpa_conn_key k = {};
  if (!conn_key_of(ctx, &k) || !port_marked(&listener_ports, k.listener_port)) return;
  __u64 cookie = bpf_get_socket_cookie(ctx);
  struct gpa_origin o;
  struct gpa_endpoint to;
  int found = 0;
#pragma unroll
  for (__u32 i = 0; i < GPA_HANDOFF_PROBES; i++) {
    struct gpa_handoff *h = handoff_slot(cookie, i);
    if (!h) return;
    if (h->cookie != cookie) continue; /* unlocked peek: only this socket ever stores this cookie */
    bpf_spin_lock(&h->lock);
    if (h->cookie == cookie) {
      o = h->origin;
      to = h->to;
      h->cookie = 0;
      found = 1;
    }
    bpf_spin_unlock(&h->lock);
    if (found) break;
  }
  if (!found) {
    /* Not in a slot: spilled (the slots were full), or never redirected (a direct connect to the
     * listener), which costs this one lookup once anything has spilled. */
    if (!handoff_spill_used) return;
    struct gpa_spilled *sp = bpf_map_lookup_elem(&handoff_spill, &cookie);
    if (!sp) return;
    /* An LRU element is reused at once when evicted, with no grace period: one evicted and
     * refilled while this copy runs would hold another socket's record (perhaps root's). Its first
     * word (origin.cookie) and last (pad) both name this socket before and after the copy, or
     * nothing is published (the agent answers 421). */
    __u32 tail = sp->pad;
    asm volatile("" ::: "memory");
    o = sp->origin;
    to = sp->to;
    asm volatile("" ::: "memory");
    if (o.cookie != cookie || tail != (__u32)cookie || sp->pad != tail) return;
    bpf_map_delete_elem(&handoff_spill, &cookie);
  }
  /* a record left by an earlier failed connect of this socket to elsewhere */
  if (!went_to(&to, &k)) return;
  if (bpf_map_update_elem(&by_conn, &k, &o, BPF_ANY) != 0) {
    count(GPA_STAT_PUBLISH_FAILED);
    return;
  }
  bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
  count(GPA_STAT_PUBLISHED);
}

/* TCP_CLOSE: remove the entry if the agent never consumed it, so a later socket cannot borrow it.
 * The 4-tuple is still the one published (the callback runs before the port is released). Usually
 * the agent has consumed it: a lookup (inlined, no bucket lock) answers that more cheaply than a
 * delete that misses. Only this socket ever publishes under its 4-tuple, so nothing can appear in
 * between. */
static __always_inline void cleanup(struct bpf_sock_ops *ctx) {
  struct gpa_conn_key k = {};
  if (!conn_key_of(ctx, &k)) return;
  if (!bpf_map_lookup_elem(&by_conn, &k)) return;
  if (bpf_map_delete_elem(&by_conn, &k) == 0) count(GPA_STAT_CLEANED);
}

/* Runs at about nine points of every TCP connection in the cgroup; only two matter. STATE_CB is
 * enabled only on sockets that published, and nothing else (RTT, RTO, ...) is ever enabled. */
SEC("sockops")
int gpa_sockops(struct bpf_sock_ops *ctx) {
  __u32 op = ctx->op;
  if (op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
    publish(ctx);
  } else if (op == BPF_SOCK_OPS_STATE_CB && ctx->args[1] == BPF_TCP_CLOSE) {
    cleanup(ctx);
  }
  return 1;
}
