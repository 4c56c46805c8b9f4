#pragma once

// Shared by the storage tier tests: object bodies, their MD5 (an independent check of what the
// S3 tier verifies), and the storage counters the tiers record.

#include <openssl/evp.h>

#include <cstddef>
#include <random>
#include <string>

#include "common/metrics.h"

namespace vsieve::testing {

// `size` pseudo-random bytes from `seed` (the same bytes for the same arguments). The first
// byte is NUL, so the body never starts like text and the HTML check cannot fire by accident.
inline std::string RandomBytes(size_t size, unsigned seed = 7) {
  std::mt19937 engine(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(engine() & 0xff);
  if (!out.empty()) out[0] = '\0';
  return out;
}

// The MD5 of `bytes` in lower-case hex (what S3 puts in a single-part ETag).
inline std::string Md5Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_md5(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

// The value of the process-wide counter `name` with `labels` (0 when never incremented).
inline double Counter(const std::string& name, const common::Labels& labels) {
  return common::MetricsRegistry::Global().GetCounter(name, "", labels).value();
}

}  // namespace vsieve::testing
