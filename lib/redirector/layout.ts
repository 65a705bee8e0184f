/**
 * Sizes of the structs in native/bpf/redirect.h. The addon reports what its compiler laid out and
 * test/redirector/layout.test.ts also reads the BTF of the built BPF object; all three must agree.
 */
export const STRUCT_SIZES = {
  /** struct gpa_endpoint: addr[4] u32, port u16, family u8, pad u8 */
  endpoint: 20,
  /** struct gpa_origin: cookie, cgroup_id, pid, tid, uid, gid, orig_addr[4], orig_port, family, flags, comm[16], exe_dev u32, exe_ino u64, start_time u64 */
  origin: 88,
  /** struct gpa_conn_key: client_addr[4], listener_addr[4], client_port, listener_port, family, pad[3] */
  connKey: 40,
} as const;

/** Kernel counter names, in the order of enum gpa_stat, plus the two the addon adds. */
export const STAT_NAMES = [
  'redirected4',
  'redirected6',
  'exempted',
  'published',
  'publish_failed',
  'cleaned',
  'store_failed',
  'family_mismatch',
  'foreign_netns',
  'bind_refused',
  'handoff_spilled',
  'conn_entries',
  'conn_map_size',
] as const;
