/* The few kernel structs redirect.bpf.c reads, declared with only the fields it uses. No vmlinux.h:
 * preserve_access_index makes clang emit CO-RE relocations, and libbpf fixes every field offset
 * against the running kernel's BTF (/sys/kernel/btf/vmlinux) at load time. Field names and types
 * must match the kernel's (include/linux/sched.h, mm_types.h, fs.h); the offsets here do not matter. */
#ifndef GPA_KERNEL_TYPES_H
#define GPA_KERNEL_TYPES_H

#include <linux/types.h>

struct super_block {
  __u32 s_dev; /* dev_t, kernel encoding: major << 20 | minor */
} __attribute__((preserve_access_index));

struct inode {
  unsigned long i_ino;
  struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
  struct inode *f_inode;
} __attribute__((preserve_access_index));

struct mm_struct {
  struct file *exe_file; /* the executable the process runs; replaced by exec */
} __attribute__((preserve_access_index));

struct task_struct {
  struct mm_struct *mm; /* NULL for kernel threads */
  struct task_struct *group_leader; /* the process (tgid) a thread belongs to */
  __u64 start_boottime; /* ns since boot, suspend included: /proc/<pid>/stat field 22 in ns */
} __attribute__((preserve_access_index));

#endif
