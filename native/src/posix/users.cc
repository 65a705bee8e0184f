// User and group names through the system's NSS (files, LDAP, SSSD, ...), reentrant calls only.
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "../backend.h"

namespace gpa {
namespace {

constexpr size_t kMaxBuffer = 1 << 20;  // grows on ERANGE up to this (large LDAP groups)

}  // namespace

std::optional<std::string> LookupGroupName(std::uint32_t gid) {
  std::vector<char> buf(4096);
  for (;;) {
    struct group gr;
    struct group* res = nullptr;
    int rc = ::getgrgid_r(gid, &gr, buf.data(), buf.size(), &res);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 && rc != ENOENT && rc != ESRCH) throw BackendError("groupInfo", rc, std::strerror(rc));
    if (res == nullptr) return std::nullopt;
    return std::string(gr.gr_name);
  }
}

std::optional<UserEntry> LookupUser(std::uint32_t uid) {
  std::vector<char> buf(4096);
  struct passwd pw;
  struct passwd* res = nullptr;
  for (;;) {
    int rc = ::getpwuid_r(uid, &pw, buf.data(), buf.size(), &res);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (rc != 0 && rc != ENOENT && rc != ESRCH) throw BackendError("userInfo", rc, std::strerror(rc));
    break;
  }
  if (res == nullptr) return std::nullopt;
  UserEntry u;
  u.name = pw.pw_name;
  u.gid = pw.pw_gid;
  std::vector<gid_t> gids(64);
  int n = static_cast<int>(gids.size());
  while (::getgrouplist(pw.pw_name, pw.pw_gid, gids.data(), &n) < 0) {
    if (n <= static_cast<int>(gids.size()) || n > 65536) {  // library gave no usable size
      n = static_cast<int>(gids.size()) * 2;
      if (n > 65536) throw BackendError("userInfo", ERANGE, "too many groups for user " + u.name);
    }
    gids.resize(static_cast<size_t>(n));
  }
  gids.resize(static_cast<size_t>(n));
  // Primary group first, each gid once.
  u.groups.push_back({pw.pw_gid, LookupGroupName(pw.pw_gid)});
  for (gid_t g : gids) {
    if (g == pw.pw_gid) continue;
    u.groups.push_back({g, LookupGroupName(g)});
  }
  return u;
}

}  // namespace gpa
