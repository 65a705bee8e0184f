#include "hmac_sha256.h"

#include <dlfcn.h>

#include <cstring>

namespace gpa {
namespace {

using InitFn = int (*)(void* ctx);
using UpdateFn = int (*)(void* ctx, const void* data, std::size_t n);
using FinalFn = int (*)(unsigned char* md, void* ctx);

struct Sha256Fns {
  InitFn init = nullptr;
  UpdateFn update = nullptr;
  FinalFn final = nullptr;
};

const Sha256Fns& Fns() {
  static const Sha256Fns fns = [] {
    Sha256Fns f;
    f.init = reinterpret_cast<InitFn>(::dlsym(RTLD_DEFAULT, "SHA256_Init"));
    f.update = reinterpret_cast<UpdateFn>(::dlsym(RTLD_DEFAULT, "SHA256_Update"));
    f.final = reinterpret_cast<FinalFn>(::dlsym(RTLD_DEFAULT, "SHA256_Final"));
    if (f.init == nullptr || f.update == nullptr || f.final == nullptr) f = Sha256Fns{};
    return f;
  }();
  return fns;
}

constexpr std::size_t kBlock = 64;
constexpr std::size_t kDigest = 32;

}  // namespace

bool HmacSha256Key::Available() { return Fns().init != nullptr; }

namespace {
// memset that the compiler may not drop as a dead store.
void Wipe(void* p, std::size_t n) {
  volatile unsigned char* v = static_cast<volatile unsigned char*>(p);
  while (n-- > 0) *v++ = 0;
}
}  // namespace

HmacSha256Key::~HmacSha256Key() {
  Wipe(inner_, sizeof(inner_));
  Wipe(outer_, sizeof(outer_));
}

std::unique_ptr<HmacSha256Key> HmacSha256Key::Create(const std::uint8_t* key, std::size_t n) {
  const Sha256Fns& f = Fns();
  if (f.init == nullptr) return nullptr;
  std::unique_ptr<HmacSha256Key> k(new HmacSha256Key());
  unsigned char k0[kBlock] = {};
  if (n > kBlock) {  // RFC 2104: a key longer than the block is hashed first
    alignas(16) unsigned char ctx[256];
    f.init(ctx);
    f.update(ctx, key, n);
    f.final(k0, ctx);
  } else if (n > 0) {
    std::memcpy(k0, key, n);
  }
  unsigned char pad[kBlock];
  for (std::size_t i = 0; i < kBlock; i++) pad[i] = k0[i] ^ 0x36;
  f.init(k->inner_);
  f.update(k->inner_, pad, kBlock);
  for (std::size_t i = 0; i < kBlock; i++) pad[i] = k0[i] ^ 0x5c;
  f.init(k->outer_);
  f.update(k->outer_, pad, kBlock);
  Wipe(k0, sizeof(k0));
  Wipe(pad, sizeof(pad));
  return k;
}

void HmacSha256Key::Hex(const Part* parts, std::size_t count, char out[64]) const {
  const Sha256Fns& f = Fns();
  alignas(16) unsigned char ctx[256];
  unsigned char digest[kDigest];
  std::memcpy(ctx, inner_, sizeof(ctx));
  for (std::size_t i = 0; i < count; i++)
    if (parts[i].n > 0) f.update(ctx, parts[i].data, parts[i].n);
  f.final(digest, ctx);
  std::memcpy(ctx, outer_, sizeof(ctx));
  f.update(ctx, digest, kDigest);
  f.final(digest, ctx);
  static const char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < kDigest; i++) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
}

}  // namespace gpa
