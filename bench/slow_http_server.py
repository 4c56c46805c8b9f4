#!/usr/bin/env python3
"""A loopback HTTP file server with added latency and a bandwidth cap: a slow distributed cache
or object store for benchmarks.

usage: slow_http_server.py ROOT [--port 0] [--delay S] [--rate BYTES_PER_S]

Serves files under ROOT (GET and HEAD, one `Range: bytes=` range, ETag, Content-Length, 404 for
missing files, never anything outside ROOT). Each request waits --delay seconds before its
status line (time to first byte); each body is sent at no more than --rate bytes/s per
connection (0 = unlimited). Prints "listening 127.0.0.1:PORT" on stdout once ready; stops on
SIGTERM/SIGINT.
"""
import argparse
import email.utils
import http.server
import os
import signal
import sys
import time
import urllib.parse

CHUNK = 64 * 1024


def make_handler(root, delay, rate):
    class SlowHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet: the benchmark prints its own summary
            pass

        def _path(self):
            # ".." segments are dropped, so the request cannot climb out of ROOT (symlinks
            # inside ROOT may point elsewhere: the benchmark links the corpus in).
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            parts = [p for p in path.split("/") if p not in ("", ".", "..")]
            return os.path.join(root, *parts)

        def _send(self, head_only):
            if delay > 0:
                time.sleep(delay)
            path = self._path()
            if not os.path.isfile(path):
                body = b"not found\n"
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head_only:
                    self.wfile.write(body)
                return
            st = os.stat(path)
            size = st.st_size
            etag = '"%x-%x"' % (int(st.st_mtime), size)
            start, end = 0, size - 1
            status = 200
            header = self.headers.get("Range")
            if header and header.startswith("bytes=") and "," not in header:
                first, _, last = header[6:].partition("-")
                try:
                    if first == "":
                        start, end = max(0, size - int(last)), size - 1
                    else:
                        start = int(first)
                        end = min(size - 1, int(last)) if last else size - 1
                except ValueError:
                    start, end = 0, size - 1
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % size)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
            if status == 206:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            self.end_headers()
            if head_only:
                return
            began = time.monotonic()
            sent = 0
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        break
                    self.wfile.write(data)
                    sent += len(data)
                    left -= len(data)
                    if rate > 0:
                        ahead = sent / rate - (time.monotonic() - began)
                        if ahead > 0:
                            time.sleep(ahead)

        def do_GET(self):
            try:
                self._send(False)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_HEAD(self):
            self._send(True)

    return SlowHandler


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.port), make_handler(os.path.abspath(args.root), args.delay, args.rate))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("listening 127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
