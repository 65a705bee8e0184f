// SPDX-License-Identifier: MIT
// LsaGetLogonSessionData wrapper; see logon_session.h.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// ntsecapi.h needs NTSTATUS and the UNICODE_STRING types from windows.h first.
#include <ntsecapi.h>
#include <sddl.h>

#include "logon_session.h"

#ifdef _MSC_VER
#pragma comment(lib, "secur32.lib")
#pragma comment(lib, "advapi32.lib")
#endif

namespace gpa::win {
namespace {

std::string narrow(const wchar_t *w, size_t chars) {
  if (!w || chars == 0)
    return {};
  int n = WideCharToMultiByte(CP_UTF8, 0, w, static_cast<int>(chars), nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0)
    WideCharToMultiByte(CP_UTF8, 0, w, static_cast<int>(chars), out.data(), n, nullptr, nullptr);
  return out;
}

std::string from_unicode_string(const LSA_UNICODE_STRING &s) {
  return narrow(s.Buffer, s.Length / sizeof(wchar_t));
}

}  // namespace

std::optional<LogonSessionInfo> LookupLogonSession(std::uint64_t logonId) {
  // A LUID is {LowPart: DWORD, HighPart: LONG}; the program captured it as one 64-bit value.
  LUID luid{};
  luid.LowPart = static_cast<DWORD>(logonId & 0xffffffffu);
  luid.HighPart = static_cast<LONG>(logonId >> 32);
  PSECURITY_LOGON_SESSION_DATA data = nullptr;
  if (LsaGetLogonSessionData(&luid, &data) != 0 || !data)
    return std::nullopt;
  LogonSessionInfo info;
  info.userName = from_unicode_string(data->UserName);
  info.domain = from_unicode_string(data->LogonDomain);
  info.logonType = static_cast<std::uint32_t>(data->LogonType);
  if (data->Sid) {
    LPWSTR text = nullptr;
    if (ConvertSidToStringSidW(data->Sid, &text) && text) {
      info.sid = narrow(text, wcslen(text));
      LocalFree(text);
    }
  }
  LsaFreeReturnBuffer(data);
  return info;
}

}  // namespace gpa::win
