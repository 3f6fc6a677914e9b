#!/usr/bin/env python3
"""The lab's backend servers (stdlib only; runs inside an xl- backend namespace).

    backend.py --name be3 [--http-port 80] [--echo-port 7] [--lifetime S]

HTTP on --http-port answers every GET with its name ("be3\\n"); the TCP echo on
--echo-port answers every line with "be3 LINE". Both listen on [::] with
IPV6_V6ONLY off, so they take the backend's own addresses (health checks) and
the VIPs on lo (traffic decapsulated from GRE), IPv4 and IPv6. Exits after
--lifetime seconds at the latest. Refuses to run outside an xl- namespace.
"""
import argparse
import http.server
import os
import socket
import socketserver
import subprocess
import sys
import threading


def refuse_outside_lab():
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                          capture_output=True, text=True).stdout.strip()
    if not name.startswith("xl-"):
        sys.exit("backend.py: refusing to run outside an xl- lab namespace (ip netns identify: %r)" % name)


class DualStack:
    """Listen on [::] for IPv4 and IPv6, with a deep accept queue."""
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def serve(args):
    name = args.name.encode()

    class Http(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"   # one request per connection; we close first

        def do_GET(self):
            body = name + b"\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    class Echo(socketserver.StreamRequestHandler):
        def handle(self):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # One reply per line; bounded by the connection (EOF ends it).
            for _ in range(10_000_000):
                line = self.rfile.readline(4096)
                if not line:
                    return
                self.wfile.write(name + b" " + line)

    class HttpServer(DualStack, http.server.ThreadingHTTPServer):
        pass

    class EchoServer(DualStack, socketserver.ThreadingTCPServer):
        pass

    servers = [HttpServer(("::", args.http_port), Http), EchoServer(("::", args.echo_port), Echo)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    if args.ready:
        open(args.ready, "w").close()
    threading.Event().wait(args.lifetime)


if __name__ == "__main__":
    refuse_outside_lab()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--echo-port", type=int, default=7)
    p.add_argument("--lifetime", type=float, default=7200)
    p.add_argument("--ready", help="file to create once listening")
    serve(p.parse_args())
