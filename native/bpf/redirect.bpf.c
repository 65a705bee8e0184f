// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Redirect TCP connects to the metadata endpoints to the agent's listener and publish, under the
 * full 4-tuple, who made each connect. UAPI headers only; see docs/redirector.md. */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

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

/* kernel tgid -> GPA_EXEMPT_SELF | GPA_EXEMPT_USER */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, GPA_EXEMPT_MAX);
  __type(key, __u32);
  __type(value, __u32);
} exempt_tgid SEC(".maps");

/* cgroup id -> 1; used instead of the tgid when the agent runs in a pid namespace */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16);
  __type(key, __u64);
  __type(value, __u32);
} exempt_cgroup SEC(".maps");

/* the record, from connect4/6 until sockops publishes it */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct gpa_origin);
} sk_origin SEC(".maps");

/* the 4-tuple a socket was published under, so TCP_CLOSE can remove what nobody consumed */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct gpa_conn_key);
} sk_connkey SEC(".maps");

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

/* The agent's own connects (and any pid the operator exempted) go where they asked. */
static __always_inline int is_exempt(__u32 tgid) {
  if (bpf_map_lookup_elem(&exempt_tgid, &tgid)) return 1;
  __u64 cg = bpf_get_current_cgroup_id();
  return bpf_map_lookup_elem(&exempt_cgroup, &cg) != 0;
}

/* The running executable's (device, inode), read in the caller's context at connect time. CO-RE:
 * the offsets come from the kernel's BTF. A NULL anywhere on the path (kernel thread) reads as 0. */
static __always_inline void record_exe(struct gpa_origin *o) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct inode *ino = BPF_CORE_READ(task, mm, exe_file, f_inode);
  if (!ino) {
    o->exe_dev = 0;
    o->exe_ino = 0;
    return;
  }
  o->exe_ino = BPF_CORE_READ(ino, i_ino);
  o->exe_dev = BPF_CORE_READ(ino, i_sb, s_dev);
}

/* Store the caller's identity on the socket; returns 0 when it could not (then: no redirect). */
static __always_inline int record_origin(struct bpf_sock_addr *ctx, const struct gpa_endpoint *dst, __u8 flags) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 0;
  struct gpa_origin *o = bpf_sk_storage_get(&sk_origin, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!o) return 0;
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u64 uid_gid = bpf_get_current_uid_gid();
  o->cookie = bpf_get_socket_cookie(ctx);
  o->cgroup_id = bpf_get_current_cgroup_id();
  o->pid = pid_tgid >> 32;
  o->tid = (__u32)pid_tgid;
  o->uid = (__u32)uid_gid;
  o->gid = uid_gid >> 32;
  o->orig_addr[0] = dst->addr[0];
  o->orig_addr[1] = dst->addr[1];
  o->orig_addr[2] = dst->addr[2];
  o->orig_addr[3] = dst->addr[3];
  o->orig_port = dst->port;
  o->family = dst->family;
  o->flags = flags;
  bpf_get_current_comm(o->comm, sizeof(o->comm));
  record_exe(o);
  return 1;
}

SEC("cgroup/connect4")
int gpa_connect4(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
  struct gpa_endpoint dst = {};
  dst.addr[0] = ctx->user_ip4;
  dst.port = bpf_ntohs((__u16)ctx->user_port);
  dst.family = GPA_FAMILY_V4;
  struct gpa_endpoint *to = bpf_map_lookup_elem(&rules, &dst);
  if (!to) return 1;
  if (to->family != GPA_FAMILY_V4) {
    count(GPA_STAT_FAMILY_MISMATCH);
    return 1;
  }
  if (is_exempt(bpf_get_current_pid_tgid() >> 32)) {
    count(GPA_STAT_EXEMPTED);
    return 1;
  }
  /* never a redirect without attribution */
  if (!record_origin(ctx, &dst, 0)) {
    count(GPA_STAT_STORE_FAILED);
    return 1;
  }
  ctx->user_ip4 = to->addr[0];
  ctx->user_port = bpf_htons(to->port);
  count(GPA_STAT_REDIRECTED4);
  return 1;
}

SEC("cgroup/connect6")
int gpa_connect6(struct bpf_sock_addr *ctx) {
  if (ctx->protocol != IPPROTO_TCP) return 1;
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
  dst.port = bpf_ntohs((__u16)ctx->user_port);
  struct gpa_endpoint *to = bpf_map_lookup_elem(&rules, &dst);
  if (!to) return 1;
  if (to->family != dst.family) {
    count(GPA_STAT_FAMILY_MISMATCH);
    return 1;
  }
  if (is_exempt(bpf_get_current_pid_tgid() >> 32)) {
    count(GPA_STAT_EXEMPTED);
    return 1;
  }
  if (!record_origin(ctx, &dst, mapped ? GPA_ORIGIN_V4_MAPPED : 0)) {
    count(GPA_STAT_STORE_FAILED);
    return 1;
  }
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

/* The 4-tuple as the listener will see it: client = our local end, listener = our remote end. */
static __always_inline void conn_key_of(struct bpf_sock_ops *ctx, struct gpa_conn_key *k) {
  k->client_port = (__u16)ctx->local_port;
  k->listener_port = (__u16)bpf_ntohl(ctx->remote_port);
  if (ctx->family == AF_INET) {
    k->family = GPA_FAMILY_V4;
    k->client_addr[0] = ctx->local_ip4;
    k->listener_addr[0] = ctx->remote_ip4;
    return;
  }
  __u32 l0 = ctx->local_ip6[0], l1 = ctx->local_ip6[1], l2 = ctx->local_ip6[2], l3 = ctx->local_ip6[3];
  __u32 r0 = ctx->remote_ip6[0], r1 = ctx->remote_ip6[1], r2 = ctx->remote_ip6[2], r3 = ctx->remote_ip6[3];
  if (l0 == 0 && l1 == 0 && l2 == bpf_htonl(0xffff) && r0 == 0 && r1 == 0 && r2 == bpf_htonl(0xffff)) {
    k->family = GPA_FAMILY_V4;
    k->client_addr[0] = l3;
    k->listener_addr[0] = r3;
    return;
  }
  k->family = GPA_FAMILY_V6;
  k->client_addr[0] = l0;
  k->client_addr[1] = l1;
  k->client_addr[2] = l2;
  k->client_addr[3] = l3;
  k->listener_addr[0] = r0;
  k->listener_addr[1] = r1;
  k->listener_addr[2] = r2;
  k->listener_addr[3] = r3;
}

/* TCP_CONNECT_CB: the source port exists now; move the record to by_conn under the 4-tuple. */
static __always_inline void publish(struct bpf_sock_ops *ctx, struct bpf_sock *sk) {
  struct gpa_origin *o = bpf_sk_storage_get(&sk_origin, sk, 0, 0);
  if (!o) return;
  struct gpa_conn_key k = {};
  conn_key_of(ctx, &k);
  if (bpf_map_update_elem(&by_conn, &k, o, BPF_ANY) != 0) {
    count(GPA_STAT_PUBLISH_FAILED);
    bpf_sk_storage_delete(&sk_origin, sk);
    return;
  }
  struct gpa_conn_key *saved = bpf_sk_storage_get(&sk_connkey, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (saved) {
    *saved = k;
    bpf_sock_ops_cb_flags_set(ctx, ctx->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
  }
  bpf_sk_storage_delete(&sk_origin, sk);
  count(GPA_STAT_PUBLISHED);
}

/* TCP_CLOSE: remove the entry if the agent never consumed it, so a later socket cannot borrow it. */
static __always_inline void cleanup(struct bpf_sock *sk) {
  struct gpa_conn_key *k = bpf_sk_storage_get(&sk_connkey, sk, 0, 0);
  if (!k) return;
  if (bpf_map_delete_elem(&by_conn, k) == 0) count(GPA_STAT_CLEANED);
  bpf_sk_storage_delete(&sk_connkey, sk);
}

SEC("sockops")
int gpa_sockops(struct bpf_sock_ops *ctx) {
  struct bpf_sock *sk = ctx->sk;
#ifndef GPA_TEST_BREAK_VERIFIER /* test/redirector/lifecycle.test.ts: a missing NULL check must be rejected */
  if (!sk) return 1;
#endif
  switch (ctx->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      publish(ctx, sk);
      break;
    case BPF_SOCK_OPS_STATE_CB:
      if (ctx->args[1] == BPF_TCP_CLOSE) cleanup(sk);
      break;
    default:
      break;
  }
  return 1;
}
