// SPDX-License-Identifier: MIT
// Logon id (LUID, as captured by bpf_get_current_logon_id) -> user name, domain, SID. The
// Windows counterpart of getpwuid_r: lib/identity maps ConnOrigin.logonId through it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gpa::win {

struct LogonSessionInfo {
  std::string userName;  // e.g. "alice" or "SYSTEM"
  std::string domain;    // e.g. "CONTOSO" or "NT AUTHORITY"
  std::string sid;       // string SID, e.g. "S-1-5-18"
  std::uint32_t logonType = 0; // SECURITY_LOGON_TYPE (2 interactive, 5 service, ...)
};

// Nullopt when the session is gone (the client logged off) or LSA refuses; never throws.
std::optional<LogonSessionInfo> LookupLogonSession(std::uint64_t logonId);

}  // namespace gpa::win
