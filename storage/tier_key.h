#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace vsieve::storage {

// Checks an object key before a tier maps it to a path or a URL. Refused with kInvalidArgument:
// an empty key, a key that starts with '/' (absolute), a NUL byte, or a "." or ".." segment
// (which a file system or an HTTP client would resolve to somewhere else). Pure; thread-safe.
common::Status ValidateTierKey(std::string_view key);

// Checks a bucket name used in a path or a URL: not empty, no '/', no NUL, not "." or "..".
// Errors: kInvalidArgument. Pure; thread-safe.
common::Status ValidateTierBucket(std::string_view bucket);

// RFC 3986 percent-encoding: every byte except A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex);
// '/' is kept when `keep_slash`. This is S3's UriEncode (SigV4 canonical form). Pure.
std::string UriEncode(std::string_view text, bool keep_slash);

// Replaces every "{bucket}" in `pattern` with `bucket`. Pure.
std::string SubstituteBucket(std::string_view pattern, std::string_view bucket);

}  // namespace vsieve::storage
