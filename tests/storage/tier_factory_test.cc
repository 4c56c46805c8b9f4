#include "storage/tier_factory.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "storage/http_client.h"
#include "storage/http_tier.h"
#include "storage/s3_tier.h"
#include "storage/tier_key.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;

TierConfig Local() {
  TierConfig config;
  config.kind = "local";
  config.root = "/mnt/cpfs/{bucket}";
  return config;
}

TierConfig Http() {
  TierConfig config;
  config.kind = "http";
  config.name = "alluxio";
  config.base_url = "http://dcache.internal:39999/{bucket}";
  return config;
}

TierConfig S3(const std::string& credentials) {
  TierConfig config;
  config.kind = "s3";
  config.name = "oss";
  config.endpoint = "http://objects.internal:9000";
  config.credentials = credentials;
  return config;
}

// The message of ValidateTierConfig(config, "tiers[1]"), "" when valid.
std::string Error(const TierConfig& config) {
  const common::Status status = ValidateTierConfig(config, "tiers[1]");
  if (!status.ok()) EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
  return status.ok() ? "" : status.message();
}

TEST(TierConfigTest, ValidConfigsPass) {
  EXPECT_EQ(Error(Local()), "");
  EXPECT_EQ(Error(Http()), "");
  EXPECT_EQ(Error(S3("env")), "");
  TierConfig virtual_host = S3("/etc/creds");
  virtual_host.addressing = "virtual";
  virtual_host.endpoint = "https://s3.eu-west-1.amazonaws.com/";
  virtual_host.region = "eu-west-1";
  EXPECT_EQ(Error(virtual_host), "");
}

TEST(TierConfigTest, EachBadFieldIsNamed) {
  struct Case {
    TierConfig config;
    std::string message;
  };
  std::vector<Case> cases;
  auto with = [&](TierConfig config, auto change, std::string message) {
    change(config);
    cases.push_back({config, std::move(message)});
  };
  with(
      Local(), [](TierConfig& c) { c.kind = "ftp"; },
      "config key 'tiers[1].kind': 'ftp' is not \"local\", \"http\" or \"s3\"");
  with(
      Local(), [](TierConfig& c) { c.kind = ""; },
      "config key 'tiers[1].kind': missing; expected \"local\", \"http\" or \"s3\"");
  with(
      Local(), [](TierConfig& c) { c.root = ""; },
      "config key 'tiers[1].root': missing; a local tier needs a folder");
  with(
      Local(), [](TierConfig& c) { c.name = "a b"; },
      "config key 'tiers[1].name': 'a b' may use only letters, digits, _ - .");
  with(
      Http(), [](TierConfig& c) { c.base_url = "dcache:39999"; },
      "config key 'tiers[1].base_url': 'dcache:39999' must start with http:// or https://");
  with(
      Http(), [](TierConfig& c) { c.base_url = ""; }, "config key 'tiers[1].base_url': missing");
  with(
      Http(), [](TierConfig& c) { c.base_url = "http://x/?a=1"; },
      "config key 'tiers[1].base_url': must not have a query or fragment");
  with(
      Http(), [](TierConfig& c) { c.connect_timeout_seconds = 0; },
      "config key 'tiers[1].connect_timeout_seconds': must be positive");
  with(
      Http(), [](TierConfig& c) { c.low_speed_bytes_per_second = 0; },
      "config key 'tiers[1].low_speed_bytes_per_second': must be at least 1");
  with(
      Http(), [](TierConfig& c) { c.low_speed_seconds = 0; },
      "config key 'tiers[1].low_speed_seconds': must be at least 1");
  with(
      Http(), [](TierConfig& c) { c.max_attempts = 0; },
      "config key 'tiers[1].max_attempts': must be at least 1");
  with(
      Http(), [](TierConfig& c) { c.backoff_base_seconds = -1; },
      "config key 'tiers[1].backoff_base_seconds': must be 0 or more");
  with(
      Http(), [](TierConfig& c) { c.backoff_cap_seconds = 0.5; },
      "config key 'tiers[1].backoff_cap_seconds': must be at least backoff_base_seconds");
  with(
      Http(), [](TierConfig& c) { c.retry_budget = -1; },
      "config key 'tiers[1].retry_budget': must be 0 or more");
  with(
      S3("env"), [](TierConfig& c) { c.endpoint = ""; }, "config key 'tiers[1].endpoint': missing");
  with(
      S3("env"), [](TierConfig& c) { c.endpoint = "objects:9000"; },
      "config key 'tiers[1].endpoint': 'objects:9000' must start with http:// or https://");
  with(
      S3("env"), [](TierConfig& c) { c.endpoint = "http://objects:9000/bucket"; },
      "config key 'tiers[1].endpoint': must be scheme://host[:port] without a path");
  with(
      S3("env"), [](TierConfig& c) { c.endpoint = "http://key:secret@objects:9000"; },
      "config key 'tiers[1].endpoint': must be scheme://host[:port] (no query, no userinfo)");
  with(
      S3("env"), [](TierConfig& c) { c.region = "US East"; },
      "config key 'tiers[1].region': 'US East' is not a region name like us-east-1");
  with(
      S3("env"), [](TierConfig& c) { c.credentials = ""; },
      "config key 'tiers[1].credentials': must be \"env\" or the path of a credentials file");
  with(
      S3("env"), [](TierConfig& c) { c.addressing = "dns"; },
      "config key 'tiers[1].addressing': 'dns' is not \"path\" or \"virtual\"");
  with(
      S3("env"), [](TierConfig& c) { c.profile = ""; },
      "config key 'tiers[1].profile': must not be empty");
  for (const Case& c : cases) EXPECT_EQ(Error(c.config), c.message);
}

TEST(TierConfigTest, CreateTierBuildsEachKind) {
  auto local = CreateTier(Local());
  ASSERT_TRUE(local.ok()) << local.status().ToString();
  EXPECT_EQ((*local)->name(), "local");  // the kind when no name is given
  EXPECT_EQ((*local)->source_tier(), "local");
  auto http = CreateTier(Http());
  ASSERT_TRUE(http.ok());
  EXPECT_EQ((*http)->name(), "alluxio");
  EXPECT_EQ((*http)->source_tier(), "dcache");

  testing::TempDir dir;
  testing::WriteFile(dir.File("creds"),
                     "[default]\naws_access_key_id=K\naws_secret_access_key=S\n");
  auto s3 = CreateTier(S3(dir.File("creds")));
  ASSERT_TRUE(s3.ok()) << s3.status().ToString();
  EXPECT_EQ((*s3)->source_tier(), "object");

  TierConfig bad = Http();
  bad.base_url = "ftp://x";
  EXPECT_EQ(CreateTier(bad).status().message(),
            "config key 'tiers.alluxio.base_url': 'ftp://x' must start with http:// or https://");
}

TEST(S3CredentialsTest, ReadsTheEnvironment) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
  ::setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
  auto credentials = LoadS3Credentials(S3("env"));
  ASSERT_TRUE(credentials.ok());
  EXPECT_EQ(credentials->access_key_id, "AKIDENV");
  EXPECT_EQ(credentials->secret_access_key, "secretenv");
  EXPECT_EQ(credentials->session_token, "tokenenv");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  auto missing = CreateTier(S3("env"));
  EXPECT_EQ(missing.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "config key 'tiers.oss.credentials': \"env\" is configured but AWS_SECRET_ACCESS_KEY "
            "is not set");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SESSION_TOKEN");
  EXPECT_NE(LoadS3Credentials(S3("env")).status().message().find("AWS_ACCESS_KEY_ID"),
            std::string::npos);
}

TEST(S3CredentialsTest, ReadsAnIniFileByProfile) {
  testing::TempDir dir;
  const std::string path = dir.File("credentials");
  testing::WriteFile(path,
                     "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\n"
                     "aws_secret_access_key = secret/default+x\n\n"
                     "; another\n[profile media]\naws_access_key_id=AKIDMEDIA\n"
                     "aws_secret_access_key=secretmedia\naws_session_token = tok\n"
                     "[half]\naws_access_key_id = AKIDHALF\n");
  auto def = LoadS3Credentials(S3(path));
  ASSERT_TRUE(def.ok()) << def.status().ToString();
  EXPECT_EQ(def->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(def->secret_access_key, "secret/default+x");
  EXPECT_EQ(def->session_token, "");
  TierConfig media = S3(path);
  media.profile = "media";
  auto m = LoadS3Credentials(media);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->access_key_id, "AKIDMEDIA");
  EXPECT_EQ(m->session_token, "tok");

  TierConfig half = S3(path);
  half.profile = "half";
  const std::string no_secret = LoadS3Credentials(half).status().message();
  EXPECT_EQ(no_secret, path + " [half] has no aws_secret_access_key");
  TierConfig none = S3(path);
  none.profile = "nope";
  EXPECT_EQ(LoadS3Credentials(none).status().message(), path + " has no section [nope]");
  EXPECT_EQ(LoadS3Credentials(S3(dir.File("absent"))).status().message(),
            "cannot read the file " + dir.File("absent"));
}

TEST(TierKeyTest, RefusesKeysThatEscape) {
  for (const std::string key : {"a.mp4", "dir/a.mp4", "a..b/c", "...", "dir/.hidden", "a//b"}) {
    EXPECT_TRUE(ValidateTierKey(key).ok()) << key;
  }
  for (const std::string key :
       {"", "/abs", "..", "../a", "a/..", "a/../b", ".", "./a", "a/./b", "a/."}) {
    EXPECT_EQ(ValidateTierKey(key).code(), ErrorCode::kInvalidArgument) << key;
  }
  EXPECT_EQ(ValidateTierKey(std::string("a\0b", 3)).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ValidateTierBucket("media-1.x").ok());
  for (const std::string bucket : {"", ".", "..", "a/b"}) {
    EXPECT_EQ(ValidateTierBucket(bucket).code(), ErrorCode::kInvalidArgument) << bucket;
  }
}

TEST(TierKeyTest, UriEncodeIsRfc3986) {
  EXPECT_EQ(UriEncode("AZaz09-._~", false), "AZaz09-._~");
  EXPECT_EQ(UriEncode("a b/c+d%e#f?g=h&i", true), "a%20b/c%2Bd%25e%23f%3Fg%3Dh%26i");
  EXPECT_EQ(UriEncode("dir/", false), "dir%2F");
  EXPECT_EQ(UriEncode("vid\xC3\xA9o", true), "vid%C3%A9o");
  EXPECT_EQ(SubstituteBucket("/mnt/{bucket}/x/{bucket}", "b"), "/mnt/b/x/b");
  EXPECT_EQ(SubstituteBucket("/mnt/all", "b"), "/mnt/all");
}

// libcurl 7.88 signs the query as written, so it must already be sorted and encoded; the
// verifying S3 server refuses "?list-type=2&prefix=dir/" and accepts this form.
TEST(S3QueryTest, CanonicalQueryStringIsSortedAndEncoded) {
  EXPECT_EQ(CanonicalQueryString({{"prefix", "dir/"}, {"list-type", "2"}}),
            "list-type=2&prefix=dir%2F");
  EXPECT_EQ(CanonicalQueryString({{"b", "2"}, {"a", "z"}, {"a", "y"}, {"A", "1"}}),
            "A=1&a=y&a=z&b=2");
  EXPECT_EQ(CanonicalQueryString({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQueryString({{"key", "a b+c~é"}}), "key=a%20b%2Bc~%C3%A9");
  EXPECT_EQ(CanonicalQueryString({}), "");
}

TEST(S3UrlTest, PathAndVirtualHostAddressing) {
  S3Tier path(S3("env"), S3Credentials{"k", "s", ""}, TierDeps{});
  EXPECT_EQ(*path.UrlOf(ObjectRef{"media", "dir/a b.mp4"}),
            "http://objects.internal:9000/media/dir/a%20b.mp4");
  TierConfig config = S3("env");
  config.addressing = "virtual";
  config.endpoint = "https://oss-cn-hangzhou.aliyuncs.com/";
  S3Tier host(config, S3Credentials{"k", "s", ""}, TierDeps{});
  EXPECT_EQ(*host.UrlOf(ObjectRef{"media", "v/x.mp4"}),
            "https://media.oss-cn-hangzhou.aliyuncs.com/v/x.mp4");
  EXPECT_EQ(path.UrlOf(ObjectRef{"", "x.mp4"}).status().code(), ErrorCode::kInvalidArgument);
}

TEST(HttpUrlTest, BucketPlaceholderAndEncoding) {
  HttpTier with_bucket(Http(), TierDeps{});
  EXPECT_EQ(*with_bucket.UrlOf(ObjectRef{"media", "dir/é #1.mp4"}),
            "http://dcache.internal:39999/media/dir/%C3%A9%20%231.mp4");
  EXPECT_EQ(with_bucket.UrlOf(ObjectRef{"", "x.mp4"}).status().code(), ErrorCode::kInvalidArgument);
  TierConfig flat = Http();
  flat.base_url = "http://cache/all/";
  HttpTier without(flat, TierDeps{});
  EXPECT_EQ(*without.UrlOf(ObjectRef{"ignored", "x.mp4"}), "http://cache/all/x.mp4");
}

TEST(HttpClientHelpersTest, RedactEndpointAndHtml) {
  EXPECT_EQ(RedactUrl("http://user:pw@host:1/a/b?X-Amz-Signature=abc#f"), "http://host:1/a/b");
  EXPECT_EQ(RedactUrl("https://host/a@b"), "https://host/a@b");
  EXPECT_EQ(EndpointOf("http://user:pw@host:1/a/b"), "http://host:1");
  EXPECT_EQ(EndpointOf("https://host"), "https://host");
  EXPECT_TRUE(LooksLikeHtml("<!DOCTYPE html>"));
  EXPECT_TRUE(LooksLikeHtml("\xEF\xBB\xBF \r\n\t<!doctype HTML>"));
  EXPECT_TRUE(LooksLikeHtml("<HtMl lang=en>"));
  EXPECT_FALSE(LooksLikeHtml("<?xml version=\"1.0\"?>"));
  EXPECT_FALSE(LooksLikeHtml("\0\0\0 ftypisom"));
  EXPECT_FALSE(LooksLikeHtml("x<html>"));
  EXPECT_FALSE(LooksLikeHtml(""));
}

}  // namespace
}  // namespace vsieve::storage
