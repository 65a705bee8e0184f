// HMAC-SHA256 for the per-request signature (host-protocol.md section 4), on the OpenSSL that is
// already inside the node binary. node:crypto costs about 1.7 µs per HMAC here, most of it the Hmac
// object and three native calls; this is one call, with the key's inner and outer SHA-256 states
// computed once per key. The SHA-256 functions are found at run time (dlsym): a Node without them
// (a build on a system OpenSSL that hides them) gets Available() == false, never a load failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace gpa {

class HmacSha256Key {
 public:
  // True when this process's OpenSSL exports SHA256_Init/Update/Final.
  static bool Available();
  // Null when !Available().
  static std::unique_ptr<HmacSha256Key> Create(const std::uint8_t* key, std::size_t n);
  // The states are as good as the key: wiped when a key snapshot lets go of them.
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  struct Part {
    const void* data;
    std::size_t n;
  };
  // HMAC over the concatenated parts, as 64 lowercase hex characters (no NUL).
  void Hex(const Part* parts, std::size_t count, char out[64]) const;

 private:
  HmacSha256Key() = default;
  // OpenSSL's SHA256_CTX is 112 bytes; the states are kept in larger, aligned buffers and copied whole.
  alignas(16) unsigned char inner_[256];
  alignas(16) unsigned char outer_[256];
};

}  // namespace gpa
