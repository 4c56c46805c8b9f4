#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace vsieve::testing {

// One request as the fault server saw it.
struct RecordedRequest {
  std::string method;
  std::string path;                            // as sent (percent-encoded), without the query
  std::string query;                           // after '?', as sent; "" when none
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // the Content-Length bytes that followed
  std::chrono::steady_clock::time_point time;  // when the request was read

  // The header's value, "" when absent.
  std::string Header(const std::string& lower_name) const;
};

// What the server does for one request. By default a plain answer: `status`, `headers`, `body`.
// With `object`, the path's object is served instead (see FaultServer::SetObject): HEAD, Range,
// If-Match and ETag as a real server does. The remaining fields break either kind of answer.
struct FaultResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool object = false;
  int64_t content_length = -1;             // >= 0: the Content-Length to announce (a wrong one)
  int64_t send_bytes = -1;                 // >= 0: send at most this many body bytes, then close
  bool reset = false;                      // close with a TCP reset (SO_LINGER 0) instead of FIN
  double stall_after_headers_seconds = 0;  // send the headers, then nothing for this long
  double bytes_per_second = 0;             // > 0: pace the body at this rate

  // Serves the object (200/206/304/412/416 as the request asks).
  static FaultResponse Object();
  // A plain answer.
  static FaultResponse Plain(int status, std::string body = "",
                             std::vector<std::pair<std::string, std::string>> headers = {});
  // 503 with the S3 SlowDown XML error and, when not empty, a Retry-After header.
  static FaultResponse SlowDown(const std::string& retry_after = "");
};

// A small HTTP/1.1 server on 127.0.0.1 (port chosen by the kernel) that answers each request
// from a per-path script, for the faults real servers do not produce on demand: N failures then
// success, 503 SlowDown with Retry-After, 429, truncated bodies, resets mid-body, stalls, slow
// bodies, wrong Content-Length, ETags that change, HTML with 200. Every request is recorded.
// One thread accepts; one thread per connection answers; each answer closes its connection.
// Thread-safe; the destructor stops the server and joins every thread.
class FaultServer {
 public:
  FaultServer();  // listens at once; aborts the test process if it cannot
  ~FaultServer();
  FaultServer(const FaultServer&) = delete;
  FaultServer& operator=(const FaultServer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:PORT" + path.
  std::string Url(const std::string& path = "") const;

  // The object at `path` (the raw request path). Its ETag is `etag` (quotes included) or, with
  // `rotate_etag`, "\"vN\"" where N counts the requests to the path: it changes every time.
  void SetObject(const std::string& path, std::string bytes, std::string etag = "\"e1\"",
                 bool rotate_etag = false);
  // Answers the next requests to `path` with `responses`, in order; afterwards the object is
  // served (or 404 when there is none).
  void Script(const std::string& path, std::vector<FaultResponse> responses);
  // The requests seen for `path` (every request when empty), oldest first.
  std::vector<RecordedRequest> Requests(const std::string& path = "") const;

  // Stops accepting, wakes stalled answers, closes connections, joins threads. Idempotent.
  void Stop();

 private:
  struct Object {
    std::string bytes;
    std::string etag;
    bool rotate_etag = false;
    int requests = 0;
  };

  void AcceptLoop();
  void Serve(int fd);
  void Answer(int fd, const RecordedRequest& request);
  bool SleepUnlessStopped(double seconds);
  bool SendAll(int fd, const char* data, size_t size);

  int listen_fd_ = -1;
  int port_ = 0;
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  std::condition_variable stopped_cv_;
  bool stopping_ = false;                                     // guarded by mutex_
  std::map<std::string, Object> objects_;                     // guarded by mutex_
  std::map<std::string, std::deque<FaultResponse>> scripts_;  // guarded by mutex_
  std::vector<RecordedRequest> requests_;                     // guarded by mutex_
  std::vector<int> open_fds_;                                 // guarded by mutex_
  std::vector<std::thread> connection_threads_;               // guarded by mutex_
};

}  // namespace vsieve::testing
