#include "tests/storage/fault_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

namespace vsieve::testing {
namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string Trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 412:
      return "Precondition Failed";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

}  // namespace

std::string RecordedRequest::Header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

FaultResponse FaultResponse::Object() {
  FaultResponse response;
  response.object = true;
  return response;
}

FaultResponse FaultResponse::Plain(int status, std::string body,
                                   std::vector<std::pair<std::string, std::string>> headers) {
  FaultResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers = std::move(headers);
  return response;
}

FaultResponse FaultResponse::SlowDown(const std::string& retry_after) {
  FaultResponse response = Plain(503,
                                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown"
                                 "</Code><Message>Please reduce your request rate.</Message>"
                                 "</Error>",
                                 {{"Content-Type", "application/xml"}});
  if (!retry_after.empty()) response.headers.emplace_back("Retry-After", retry_after);
  return response;
}

FaultServer::FaultServer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) std::abort();
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    std::perror("fault server bind/listen");
    std::abort();
  }
  socklen_t length = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

FaultServer::~FaultServer() { Stop(); }

std::string FaultServer::Url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void FaultServer::SetObject(const std::string& path, std::string bytes, std::string etag,
                            bool rotate_etag) {
  std::lock_guard lock(mutex_);
  Object& object = objects_[path];
  object.bytes = std::move(bytes);
  object.etag = std::move(etag);
  object.rotate_etag = rotate_etag;
  object.requests = 0;
}

void FaultServer::Script(const std::string& path, std::vector<FaultResponse> responses) {
  std::lock_guard lock(mutex_);
  auto& queue = scripts_[path];
  for (auto& response : responses) queue.push_back(std::move(response));
}

std::vector<RecordedRequest> FaultServer::Requests(const std::string& path) const {
  std::lock_guard lock(mutex_);
  std::vector<RecordedRequest> out;
  for (const auto& request : requests_) {
    if (path.empty() || request.path == path) out.push_back(request);
  }
  return out;
}

void FaultServer::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  stopped_cv_.notify_all();
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  ::close(listen_fd_);
  {
    std::lock_guard lock(mutex_);
    threads.swap(connection_threads_);
  }
  for (auto& thread : threads) thread.join();
}

void FaultServer::AcceptLoop() {
  while (true) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard lock(mutex_);
    if (stopping_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) continue;
    open_fds_.push_back(fd);
    connection_threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

bool FaultServer::SleepUnlessStopped(double seconds) {
  std::unique_lock lock(mutex_);
  return !stopped_cv_.wait_for(lock, std::chrono::duration<double>(seconds),
                               [this] { return stopping_; });
}

bool FaultServer::SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
    if (sent <= 0) return false;
    data += sent;
    size -= static_cast<size_t>(sent);
  }
  return true;
}

void FaultServer::Serve(int fd) {
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string buffer;
  char chunk[4096];
  size_t end = std::string::npos;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos && buffer.size() < 65536) {
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
  }
  if (end != std::string::npos) {
    RecordedRequest request;
    request.time = std::chrono::steady_clock::now();
    const size_t line_end = buffer.find("\r\n");
    const std::string line = buffer.substr(0, line_end);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.find(' ', sp1 + 1);
    request.method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    request.path = target.substr(0, target.find('?'));
    if (target.find('?') != std::string::npos) request.query = target.substr(target.find('?') + 1);
    size_t pos = line_end + 2;
    while (pos < end) {
      const size_t next = buffer.find("\r\n", pos);
      const std::string header = buffer.substr(pos, next - pos);
      const size_t colon = header.find(':');
      if (colon != std::string::npos) {
        request.headers[Lower(Trim(header.substr(0, colon)))] = Trim(header.substr(colon + 1));
      }
      pos = next + 2;
    }
    // A request body (an upload) is read before the answer, as a real server does.
    const std::string length_text = request.Header("content-length");
    const size_t length = length_text.empty() ? 0 : std::stoul(length_text);
    request.body = buffer.substr(end + 4);
    while (request.body.size() < length) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      request.body.append(chunk, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    Answer(fd, request);
  }
  std::lock_guard lock(mutex_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  ::close(fd);
}

void FaultServer::Answer(int fd, const RecordedRequest& request) {
  FaultResponse plan;
  bool have_object = false;
  Object object;
  {
    std::lock_guard lock(mutex_);
    auto script = scripts_.find(request.path);
    if (script != scripts_.end() && !script->second.empty()) {
      plan = std::move(script->second.front());
      script->second.pop_front();
    } else {
      plan = FaultResponse::Object();
    }
    auto found = objects_.find(request.path);
    if (found != objects_.end()) {
      ++found->second.requests;
      if (found->second.rotate_etag) {
        found->second.etag = "\"v" + std::to_string(found->second.requests) + "\"";
      }
      object = found->second;
      have_object = true;
    }
  }

  int status = plan.status;
  std::vector<std::pair<std::string, std::string>> headers = plan.headers;
  std::string body = plan.body;
  if (plan.object) {
    headers.clear();
    body.clear();
    if (!have_object) {
      status = 404;
      body =
          "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>"
          "</Error>";
    } else {
      headers.emplace_back("ETag", object.etag);
      headers.emplace_back("Accept-Ranges", "bytes");
      const std::string if_match = request.Header("if-match");
      const std::string range = request.Header("range");
      const int64_t size = static_cast<int64_t>(object.bytes.size());
      if (!if_match.empty() && if_match != object.etag) {
        status = 412;
        body = "<Error><Code>PreconditionFailed</Code></Error>";
      } else if (range.rfind("bytes=", 0) == 0) {
        const std::string spec = range.substr(6);
        const size_t dash = spec.find('-');
        const int64_t first = std::atoll(spec.substr(0, dash).c_str());
        int64_t last = size - 1;
        if (dash != std::string::npos && dash + 1 < spec.size()) {
          last = std::min(last, static_cast<int64_t>(std::atoll(spec.substr(dash + 1).c_str())));
        }
        if (first >= size) {
          status = 416;
          headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
        } else {
          status = 206;
          body = object.bytes.substr(static_cast<size_t>(first),
                                     static_cast<size_t>(last - first + 1));
          headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" +
                                                    std::to_string(last) + "/" +
                                                    std::to_string(size));
        }
      } else {
        status = 200;
        body = object.bytes;
      }
      if (status == 200 || status == 206) {
        headers.emplace_back("Content-Type", "application/octet-stream");
      }
    }
  }

  const bool head = request.method == "HEAD";
  int64_t announced = static_cast<int64_t>(body.size());
  if (plan.content_length >= 0) announced = plan.content_length;
  int64_t to_send = head ? 0 : std::min<int64_t>(static_cast<int64_t>(body.size()), announced);
  if (plan.send_bytes >= 0) to_send = std::min(to_send, plan.send_bytes);

  std::string head_text = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  for (const auto& [name, value] : headers) head_text += name + ": " + value + "\r\n";
  head_text += "Content-Length: " + std::to_string(announced) + "\r\nConnection: close\r\n\r\n";
  if (!SendAll(fd, head_text.data(), head_text.size())) return;
  if (plan.stall_after_headers_seconds > 0 &&
      !SleepUnlessStopped(plan.stall_after_headers_seconds)) {
    return;
  }
  if (plan.bytes_per_second > 0) {
    const auto step = std::max<int64_t>(1, static_cast<int64_t>(plan.bytes_per_second / 20));
    for (int64_t offset = 0; offset < to_send; offset += step) {
      const int64_t n = std::min(step, to_send - offset);
      if (!SendAll(fd, body.data() + offset, static_cast<size_t>(n))) return;
      if (!SleepUnlessStopped(0.05)) return;
    }
  } else if (!SendAll(fd, body.data(), static_cast<size_t>(to_send))) {
    return;
  }
  if (plan.reset) {
    linger hard{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  } else {
    ::shutdown(fd, SHUT_WR);
    // Let the client read to the end before the socket closes.
    char drain[256];
    timeval timeout{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (::recv(fd, drain, sizeof drain, 0) > 0) {
    }
  }
}

}  // namespace vsieve::testing
