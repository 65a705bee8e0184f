// SPDX-License-Identifier: MIT
// Which eBPF-for-Windows releases the Windows backend accepts, judged by EbpfApi.dll's file
// version. Why a range: the program's helper ids and bpf_sock_addr_t layout (see
// native/bpf/windows/efw_minimal.h) are those of these releases, and a native driver built by
// bpf2c only loads on a runtime at least as new as the tooling that built it. Raise the bounds
// only after rebuilding the driver and running docs/windows.md's check list on the new release.
#pragma once

#include <cstdint>

namespace gpa::win {

// Oldest release with global bpf_get_current_pid_tgid (helper 19) for sock_addr programs and the
// `ebpf_program_attach` compartment parameter as used here; Azure's own guest proxy agent pins
// the same floor.
constexpr uint16_t kEfwMinMajor = 0;
constexpr uint16_t kEfwMinMinor = 17;
// First major we have not tested: refuse it rather than guess at a changed ABI.
constexpr uint16_t kEfwUntestedMajor = 2;

// True when major.minor lies in [kEfwMin, kEfwUntestedMajor.0).
constexpr bool efw_version_supported(uint16_t major, uint16_t minor) {
  if (major >= kEfwUntestedMajor)
    return false;
  if (major != kEfwMinMajor)
    return major > kEfwMinMajor;
  return minor >= kEfwMinMinor;
}

static_assert(efw_version_supported(0, 17), "floor is inclusive");
static_assert(!efw_version_supported(0, 16), "below floor");
static_assert(efw_version_supported(1, 0), "1.x accepted");
static_assert(!efw_version_supported(2, 0), "untested major refused");

} // namespace gpa::win
