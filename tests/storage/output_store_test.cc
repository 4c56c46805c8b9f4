// OutputStore (storage/output_store.h): file:// by temp file and rename; s3:// against the real
// SigV4-verifying s3rver (single PUT and multipart) and against the fault server (parts that
// fail, an abort, ETags that do not match).

#include "storage/output_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/s3_tier.h"
#include "tests/storage/fault_server.h"
#include "tests/storage/file_sink.h"
#include "tests/storage/s3_server.h"
#include "tests/storage/test_bytes.h"
#include "tests/support/test_env.h"

namespace vsieve::storage {
namespace {

using common::ErrorCode;

constexpr char kBucket[] = "crops";
constexpr char kAccessKey[] = "outputkey";
constexpr char kSecretKey[] = "outputsecret";

class OutputStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    credentials_ = scratch_.File("credentials");
    testing::WriteFile(credentials_, std::string("[default]\naws_access_key_id = ") + kAccessKey +
                                         "\naws_secret_access_key = " + kSecretKey + "\n");
    source_ = scratch_.File("source.bin");
  }

  static testing::S3Server* Server() {
    static std::string why_not;
    static std::unique_ptr<testing::S3Server> server =
        testing::S3Server::Start({kBucket}, kAccessKey, kSecretKey, &why_not);
    if (server == nullptr) std::fprintf(stderr, "s3rver: %s\n", why_not.c_str());
    return server.get();
  }

  OutputStoreOptions S3Options(const std::string& endpoint) const {
    OutputStoreOptions options;
    options.url = std::string("s3://") + kBucket + "/videos/";
    options.s3.kind = "s3";
    options.s3.name = "output-test";
    options.s3.endpoint = endpoint;
    options.s3.credentials = credentials_;
    options.s3.max_attempts = 3;
    options.s3.backoff_base_seconds = 0.001;
    options.s3.backoff_cap_seconds = 0.005;
    options.s3.low_speed_seconds = 5;
    return options;
  }

  // A fresh retry budget per store, so tests do not share one.
  static TierDeps Deps() {
    TierDeps deps;
    deps.budget = std::make_shared<RetryBudget>("", RetryBudget::Options{});
    return deps;
  }

  std::unique_ptr<OutputStore> Make(const OutputStoreOptions& options) const {
    auto store = CreateOutputStore(options, Deps());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The object as the S3 tier reads it back (size and MD5 ETag checked by the tier).
  std::string ReadBack(const std::string& endpoint, const std::string& key) const {
    TierConfig config = S3Options(endpoint).s3;
    config.name = "output-readback";
    auto tier = CreateTier(config, Deps());
    EXPECT_TRUE(tier.ok());
    if (!tier.ok()) return "";
    testing::FileSink sink(scratch_.File("readback-" + std::to_string(reads_++)));
    auto fetched = (*tier)->Fetch(ObjectRef{kBucket, key}, &sink);
    EXPECT_TRUE(fetched.ok()) << fetched.status().ToString();
    return sink.Contents();
  }

  testing::TempDir scratch_;
  std::string credentials_;
  std::string source_;
  mutable int reads_ = 0;
};

TEST_F(OutputStoreTest, FileStoreWritesTheObjectWholeAndReplacesIt) {
  testing::TempDir root;
  OutputStoreOptions options;
  options.url = "file://" + root.path() + "/out";
  auto store = Make(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->prefix(), root.path().substr(1) + "/out/");
  const std::string key = store->prefix() + "a/v1.mp4";
  for (unsigned seed : {1u, 2u}) {
    const std::string bytes = testing::RandomBytes(300000, seed);
    ASSERT_TRUE(testing::WriteFile(source_, bytes));
    auto url = store->Put(source_, key);
    ASSERT_TRUE(url.ok()) << url.status().ToString();
    EXPECT_EQ(*url, "file://" + root.path() + "/out/a/v1.mp4");
    EXPECT_EQ(testing::ReadFile(root.path() + "/out/a/v1.mp4"), bytes);
  }
  // Nothing but the object is left in its folder (no temp file).
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root.path() + "/out/a")) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
  auto bad = store->Put(source_, store->prefix() + "../escape.mp4");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(OutputStoreTest, RefusesOtherSchemesAndSmallParts) {
  OutputStoreOptions options;
  options.url = "http://example/x/";
  EXPECT_EQ(CreateOutputStore(options).status().code(), ErrorCode::kInvalidArgument);
  options = S3Options("http://127.0.0.1:1");
  options.part_bytes = 1 << 20;
  EXPECT_EQ(CreateOutputStore(options).status().code(), ErrorCode::kInvalidArgument);
  options = S3Options("");
  EXPECT_EQ(CreateOutputStore(options).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(OutputStoreTest, SinglePartUploadToS3rver) {
  testing::S3Server* server = Server();
  if (server == nullptr) GTEST_SKIP() << "s3rver is not available";
  auto store = Make(S3Options(server->endpoint()));
  ASSERT_NE(store, nullptr);
  const std::string bytes = testing::RandomBytes(700000, 3);
  ASSERT_TRUE(testing::WriteFile(source_, bytes));
  auto url = store->Put(source_, "videos/single.mp4");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(*url, "s3://crops/videos/single.mp4");
  EXPECT_EQ(ReadBack(server->endpoint(), "videos/single.mp4"), bytes);
}

TEST_F(OutputStoreTest, MultipartUploadToS3rver) {
  testing::S3Server* server = Server();
  if (server == nullptr) GTEST_SKIP() << "s3rver is not available";
  OutputStoreOptions options = S3Options(server->endpoint());
  options.multipart_bytes = 1 << 20;
  options.part_bytes = 5 << 20;
  auto store = Make(options);
  ASSERT_NE(store, nullptr);
  const std::string bytes = testing::RandomBytes((11 << 20) + 12345, 4);  // 3 parts
  ASSERT_TRUE(testing::WriteFile(source_, bytes));
  auto url = store->Put(source_, "videos/multi.mp4");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(ReadBack(server->endpoint(), "videos/multi.mp4"), bytes);
}

TEST_F(OutputStoreTest, WrongSecretIsANonRetryableUploadFailure) {
  testing::S3Server* server = Server();
  if (server == nullptr) GTEST_SKIP() << "s3rver is not available";
  testing::WriteFile(credentials_, std::string("[default]\naws_access_key_id = ") + kAccessKey +
                                       "\naws_secret_access_key = wrong\n");
  auto store = Make(S3Options(server->endpoint()));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(testing::WriteFile(source_, testing::RandomBytes(1000, 5)));
  auto url = store->Put(source_, "videos/denied.mp4");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), ErrorCode::kUploadFailed);
  EXPECT_FALSE(url.status().retryable());
}

// The fault server answers a multipart upload by script: initiate, part 1, part 2 fails with
// 500 once, part 2 again, part 3, complete. The failed part is sent again; the upload completes.
TEST_F(OutputStoreTest, AFailedPartIsRetriedAndTheUploadCompletes) {
  testing::FaultServer faults;
  OutputStoreOptions options = S3Options(faults.Url());
  options.multipart_bytes = 1 << 20;
  options.part_bytes = 5 << 20;
  auto store = Make(options);
  ASSERT_NE(store, nullptr);
  const std::string bytes = testing::RandomBytes((10 << 20) + 7, 6);
  ASSERT_TRUE(testing::WriteFile(source_, bytes));
  const auto part_etag = [&](int n) {
    const size_t from = static_cast<size_t>(n - 1) * (5 << 20);
    return "\"" + testing::Md5Hex(bytes.substr(from, 5 << 20)) + "\"";
  };
  using testing::FaultResponse;
  faults.Script("/crops/videos/x.mp4",
                {FaultResponse::Plain(200,
                                      "<InitiateMultipartUploadResult><UploadId>U1</UploadId>"
                                      "</InitiateMultipartUploadResult>"),
                 FaultResponse::Plain(200, "", {{"ETag", part_etag(1)}}),
                 FaultResponse::Plain(500, "<Error><Code>InternalError</Code></Error>"),
                 FaultResponse::Plain(200, "", {{"ETag", part_etag(2)}}),
                 FaultResponse::Plain(200, "", {{"ETag", part_etag(3)}}),
                 FaultResponse::Plain(200,
                                      "<CompleteMultipartUploadResult>"
                                      "</CompleteMultipartUploadResult>")});
  auto url = store->Put(source_, "videos/x.mp4");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  const auto requests = faults.Requests("/crops/videos/x.mp4");
  ASSERT_EQ(requests.size(), 6u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].query, "uploads=");
  EXPECT_EQ(requests[2].query, "partNumber=2&uploadId=U1");
  EXPECT_EQ(requests[3].query, "partNumber=2&uploadId=U1");
  EXPECT_EQ(requests[3].body, bytes.substr(5 << 20, 5 << 20));
  EXPECT_FALSE(requests[3].Header("content-md5").empty());
  EXPECT_NE(requests[3].Header("authorization").find("AWS4-HMAC-SHA256"), std::string::npos);
  EXPECT_EQ(requests[5].method, "POST");
  EXPECT_EQ(requests[5].query, "uploadId=U1");
  EXPECT_NE(requests[5].body.find("<PartNumber>3</PartNumber><ETag>" + part_etag(3)),
            std::string::npos);
}

// A part that keeps failing ends the upload: AbortMultipartUpload is sent and the error is a
// retryable UPLOAD_FAILED (the row is retried like a fetch).
TEST_F(OutputStoreTest, APartThatKeepsFailingAbortsTheUpload) {
  testing::FaultServer faults;
  OutputStoreOptions options = S3Options(faults.Url());
  options.multipart_bytes = 1 << 20;
  options.part_bytes = 5 << 20;
  auto store = Make(options);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(testing::WriteFile(source_, testing::RandomBytes(6 << 20, 7)));
  using testing::FaultResponse;
  const FaultResponse slow_down = FaultResponse::SlowDown();
  faults.Script("/crops/videos/y.mp4",
                {FaultResponse::Plain(200, "<UploadId>U2</UploadId>"), slow_down, slow_down,
                 slow_down, FaultResponse::Plain(204)});
  auto url = store->Put(source_, "videos/y.mp4");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), ErrorCode::kUploadFailed);
  EXPECT_TRUE(url.status().retryable());
  const auto requests = faults.Requests("/crops/videos/y.mp4");
  ASSERT_EQ(requests.size(), 5u);  // initiate, 3 attempts at part 1, abort
  EXPECT_EQ(requests[4].method, "DELETE");
  EXPECT_EQ(requests[4].query, "uploadId=U2");
}

// A single PUT whose answer carries an ETag that is not the MD5 of the bytes is sent again; when
// it never matches, the upload fails without a retry of the row.
TEST_F(OutputStoreTest, AnEtagThatIsNotTheMd5FailsThePut) {
  testing::FaultServer faults;
  auto store = Make(S3Options(faults.Url()));
  ASSERT_NE(store, nullptr);
  const std::string bytes = testing::RandomBytes(2000, 8);
  ASSERT_TRUE(testing::WriteFile(source_, bytes));
  using testing::FaultResponse;
  const FaultResponse wrong = FaultResponse::Plain(200, "", {{"ETag", "\"0123\""}});
  faults.Script(
      "/crops/videos/z.mp4",
      {wrong, FaultResponse::Plain(200, "", {{"ETag", "\"" + testing::Md5Hex(bytes) + "\""}})});
  auto url = store->Put(source_, "videos/z.mp4");
  ASSERT_TRUE(url.ok()) << url.status().ToString();  // the second answer matched
  faults.Script("/crops/videos/z.mp4", {wrong, wrong, wrong});
  url = store->Put(source_, "videos/z.mp4");
  ASSERT_FALSE(url.ok());
  EXPECT_EQ(url.status().code(), ErrorCode::kUploadFailed);
  EXPECT_FALSE(url.status().retryable());
  EXPECT_EQ(faults.Requests("/crops/videos/z.mp4").back().Header("content-md5").size(), 24u);
}

}  // namespace
}  // namespace vsieve::storage
