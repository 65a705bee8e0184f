// SPDX-License-Identifier: MIT
// eBPF-for-Windows cgroup/connect4 program: redirects TCP connects to the metadata endpoints to
// the agent's local listener and records who connected.
//
// One program is enough: eBPF-for-Windows hands connects to v4-mapped IPv6 addresses to INET4
// programs. Built with `clang -O2 -g -target bpf` against efw_minimal.h (CI) or the SDK headers
// (release build, see README.md), then turned into a signed native driver (.sys) by bpf2c.
#include "efw_minimal.h"
#include "redirect_win.h"

// Original destination -> listener. Written by the agent on start.
struct {
  __uint(type, EFW_BPF_MAP_TYPE_HASH);
  __type(key, struct gpa_win_rule_key);
  __type(value, struct gpa_win_rule_value);
  __uint(max_entries, 64);
} gpa_rules SEC(".maps");

// Process ids whose connects are never redirected (the agent's own upstream connections).
struct {
  __uint(type, EFW_BPF_MAP_TYPE_HASH);
  __type(key, uint32_t);
  __type(value, uint32_t);
  __uint(max_entries, 64);
} gpa_exempt_pid SEC(".maps");

// {protocol, source port} -> attribution record. LRU: entries nobody consumed age out instead of
// filling the map; the agent deletes each entry it consumes.
struct {
  __uint(type, EFW_BPF_MAP_TYPE_LRU_HASH);
  __type(key, struct gpa_win_conn_key);
  __type(value, struct gpa_win_conn_record);
  __uint(max_entries, 16384);
} gpa_conn_by_port SEC(".maps");

struct {
  __uint(type, EFW_BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, uint32_t);
  __type(value, uint64_t);
  __uint(max_entries, GPA_WIN_STAT_COUNT);
} gpa_stats SEC(".maps");

static __attribute__((always_inline)) void count(uint32_t which) {
  uint64_t *slot = bpf_map_lookup_elem(&gpa_stats, &which);
  if (slot)
    *slot += 1; // per-CPU slot: no other CPU writes it
}

SEC("cgroup/connect4")
int gpa_connect4(bpf_sock_addr_t *ctx) {
  // UDP and raw sockets are not ours; the metadata endpoints speak HTTP over TCP.
  if (ctx->protocol != EFW_IPPROTO_TCP) {
    count(GPA_WIN_STAT_NOT_TCP);
    return EFW_SOCK_ADDR_VERDICT_PROCEED;
  }

  struct gpa_win_rule_key rule_key = {0};
  rule_key.addr = ctx->user_ip4;
  rule_key.port = ctx->user_port;
  struct gpa_win_rule_value *listener = bpf_map_lookup_elem(&gpa_rules, &rule_key);
  if (!listener)
    return EFW_SOCK_ADDR_VERDICT_PROCEED;

  // The agent's own upstream connects must reach the real host.
  uint64_t pid_tgid = bpf_get_current_pid_tgid();
  uint32_t pid = (uint32_t)(pid_tgid >> 32);
  if (bpf_map_lookup_elem(&gpa_exempt_pid, &pid)) {
    count(GPA_WIN_STAT_EXEMPTED);
    return EFW_SOCK_ADDR_VERDICT_PROCEED;
  }

  // Capture identity in the caller's context, before the destination is rewritten.
  struct gpa_win_conn_record rec = {0};
  rec.magic = GPA_WIN_RECORD_MAGIC;
  rec.pid = pid;
  rec.tid = (uint32_t)pid_tgid;
  rec.orig_addr = ctx->user_ip4;
  rec.orig_port = ctx->user_port;
  rec.logon_id = bpf_get_current_logon_id(ctx);
  int32_t admin = bpf_is_current_admin(ctx);
  if (admin >= 0) {
    rec.flags |= GPA_WIN_FLAG_ADMIN_KNOWN;
    rec.is_admin = admin > 0 ? 1 : 0;
  }

  // Publish under the source port when WFP already assigned one; the redirect context travels
  // with the connection either way and is what the agent reads when the port was still 0.
  uint16_t source_port = ctx->msg_src_port;
  int published = 0;
  if (source_port != 0) {
    struct gpa_win_conn_key conn_key = {0};
    conn_key.protocol = EFW_IPPROTO_TCP;
    conn_key.source_port = source_port;
    rec.flags |= GPA_WIN_FLAG_IN_MAP;
    if (bpf_map_update_elem(&gpa_conn_by_port, &conn_key, &rec, EFW_BPF_ANY) == 0) {
      published = 1;
      count(GPA_WIN_STAT_PUBLISHED);
    } else {
      rec.flags &= ~GPA_WIN_FLAG_IN_MAP;
    }
  }
  // IN_MAP in the context copy tells the agent to delete the map entry too.
  if (bpf_sock_addr_set_redirect_context(ctx, &rec, sizeof(rec)) == 0) {
    published = 1;
    count(GPA_WIN_STAT_CONTEXT_SET);
  }

  // Never a redirect without attribution: the agent would have to deny it anyway, and the host
  // rejects the unsigned request in enforce mode.
  if (!published) {
    count(GPA_WIN_STAT_PUBLISH_FAILED);
    return EFW_SOCK_ADDR_VERDICT_PROCEED;
  }

  ctx->user_ip4 = listener->addr;
  ctx->user_port = listener->port;
  count(GPA_WIN_STAT_REDIRECTED);
  return EFW_SOCK_ADDR_VERDICT_PROCEED;
}

// eBPF-for-Windows, like Linux, reads the license from this section.
char _license[] SEC("license") = "MIT";
