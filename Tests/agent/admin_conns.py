#!/usr/bin/env python3
"""Admin API connection cap and idle timeout, with real sockets (stdlib only).

admin_conns.py SOCKET CAP WAIT
    Opens CAP connections to the unix socket SOCKET: even ones send nothing,
    odd ones half a request (a request line, no blank line). Checks the agent
    answered none of them, then opens one more and expects a 503 and the
    connection closed. Then waits up to WAIT seconds for the agent to close
    all CAP idle / half-sent connections. Prints one JSON line; exits 1 with
    the reason on any failure. Every wait is bounded.
"""
import json
import select
import socket
import sys
import time


def read_until_closed(s, limit):
    """Everything the peer sends until it closes (or `limit` seconds pass: None)."""
    s.settimeout(limit)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
    except socket.timeout:
        return None


def main():
    path, cap, wait = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    conns = []
    for i in range(cap):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(path)
        if i % 2:
            s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")   # half a request: no blank line
        conns.append(s)
    time.sleep(1)   # let the agent accept them all before the extra one
    answered = [i for i, s in enumerate(conns) if select.select([s], [], [], 0)[0]]
    if answered:
        sys.exit("admin_conns.py: the agent answered or closed %d of the first %d connections (e.g. #%d)" % (len(answered), cap, answered[0]))
    extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    extra.settimeout(5)
    extra.connect(path)
    try:
        extra.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    reply = read_until_closed(extra, 10)
    if reply is None:
        sys.exit("admin_conns.py: connection %d was neither refused nor closed within 10 s" % (cap + 1))
    first = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    if not first.startswith("HTTP/1.1 503"):
        sys.exit("admin_conns.py: connection %d got %r, expected a 503" % (cap + 1, first))
    start = time.time()
    open_left = list(conns)
    while open_left and time.time() - start < wait:
        ready, _, _ = select.select(open_left, [], [], 0.5)
        for s in ready:
            if read_until_closed(s, 1) is not None:
                open_left.remove(s)
                s.close()
    if open_left:
        sys.exit("admin_conns.py: %d of %d idle/half-sent connections still open after %.0f s" % (len(open_left), cap, wait))
    print(json.dumps({"extra": first, "extra_body": reply.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").strip(),
                      "closed": cap, "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
