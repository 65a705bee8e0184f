// What /proc says about one process, read through a directory fd on /proc/<pid> (Linux).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace gpa {

struct ProcSnapshot {
  // Field 22 of /proc/<pid>/stat as its text: start time in clock ticks since boot.
  std::string startTicks;
  // The running executable as stat(/proc/<pid>/exe) reports it.
  std::uint64_t exeDev = 0;
  std::uint64_t exeIno = 0;
  // The exe link's text when it names that very file from this process's view (same device and
  // inode); nullopt when deleted, replaced or bind-mounted over.
  std::optional<std::string> exePath;
  // Command line bytes (at most kMaxCmdline), trailing NULs removed, inner NULs as spaces.
  std::string cmdline;
  // /proc/<pid>/cgroup (at most kMaxCgroup bytes).
  std::string cgroup;
  // False when the executable was gone or another file by the last read: what was read may
  // describe another program (an exec) or a process that exited meanwhile.
  bool stable = false;
};

constexpr std::size_t kMaxCmdline = 16 * 1024;
constexpr std::size_t kMaxCgroup = 4096;

// Nullopt when the process is gone (or is a kernel thread: no executable). Every read goes through
// one fd on /proc/<pid>: if the process exits and its pid is reused while this runs, the reads fail
// instead of describing the new process; the start time, read first, tells whether the fd was
// opened on the process the caller means (the pid may have been reused before the open).
std::optional<ProcSnapshot> ReadProcSnapshot(pid_t pid);

}  // namespace gpa
