#include "common/status.h"

#include <gtest/gtest.h>

namespace vsieve::common {
namespace {

TEST(StatusTest, OkByDefault) {
  Status status;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.ToString(), "OK");
}

TEST(StatusTest, CarriesCodeStageContextAndRetryable) {
  Status status = Status(ErrorCode::kFetchFailed, "connection reset", /*retryable=*/true)
                      .WithContext("GET s3://b/k")
                      .WithStage("fetch")
                      .WithStage("decode");
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(status.retryable());
  EXPECT_EQ(status.stage(), "fetch");  // the first stage set wins
  EXPECT_EQ(status.message(), "GET s3://b/k: connection reset");
  EXPECT_EQ(status.ToString(), "FETCH_FAILED [fetch]: GET s3://b/k: connection reset");
}

TEST(StatusTest, ErrorCodeNamesRoundTrip) {
  for (ErrorCode code :
       {ErrorCode::kInputEmpty, ErrorCode::kContainerUnrecognized, ErrorCode::kNoVideoStream,
        ErrorCode::kTruncated, ErrorCode::kDecodeErrorsExceeded, ErrorCode::kUnsupportedCodec,
        ErrorCode::kDimensionsExceedLimit, ErrorCode::kObjectNotFound, ErrorCode::kObjectForbidden,
        ErrorCode::kFetchFailed, ErrorCode::kContentMismatch, ErrorCode::kTimeout,
        ErrorCode::kModelFailed, ErrorCode::kAttemptsExhausted, ErrorCode::kEncodeFailed,
        ErrorCode::kUploadFailed}) {
    ErrorCode parsed = ErrorCode::kOk;
    ASSERT_TRUE(ParseErrorCode(ErrorCodeName(code), &parsed)) << ErrorCodeName(code);
    EXPECT_EQ(parsed, code);
  }
  ErrorCode parsed = ErrorCode::kOk;
  EXPECT_FALSE(ParseErrorCode("NOT_A_CODE", &parsed));
}

StatusOr<int> Half(int x) {
  if (x % 2 != 0) return Status(ErrorCode::kInvalidArgument, "odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  VSIEVE_ASSIGN_OR_RETURN(int half, Half(x));
  VSIEVE_ASSIGN_OR_RETURN(*out, Half(half));
  return Status::Ok();
}

TEST(StatusOrTest, AssignOrReturnPropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  Status status = Quarter(6, &out);
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace vsieve::common
