#!/usr/bin/env python3
"""The lab's traffic client (stdlib only; runs inside the xl-client namespace).

short  --targets T[,T...] --src A[,A...] --count N --out FILE
       [--concurrency C] [--sport-base P] [--rate R] [--timeout S] [--max-seconds S]
    N short HTTP/1.0 connections (one GET each, then the server closes). Each
    records its source, source port, the backend that answered (the body is
    the backend's name), the outcome and the time. With --sport-base,
    connection i binds source port P+i: running the same command twice sends
    the very same flows (backend_added compares them). --rate paces starts.

long   --targets T[,T...] --src A[,A...] --conns N --seconds S --out FILE
       [--interval S] [--ready FILE] [--stall S]
    N long-lived connections to the TCP echo, each sending a numbered line
    every --interval seconds for S seconds (counted from the moment all are
    up) and checking every reply
    ("NAME SEQ", in order, always the same NAME). A connection breaks on a
    reset, an early EOF, a reply out of order or from another backend, or
    replies still missing 3 s after the last send. --ready FILE is created once
    every connection is up (or failed). FILE also holds a timeline: every
    0.5 s the connections alive, broken and the lines answered so far.

Targets are ADDR:PORT or [ADDR6]:PORT; sources are addresses of this
namespace, picked by family. Every loop is bounded by a count and a deadline.
Refuses to run outside an xl- namespace: lab traffic never leaves the lab.
"""
import argparse
import concurrent.futures
import errno
import json
import os
import selectors
import socket
import subprocess
import sys
import time

MAX_CONNS = 20000        # upper bound on any count given on the command line
MAX_SECONDS = 600        # upper bound on any duration


def refuse_outside_lab():
    """Traffic starts only inside a lab namespace (never the machine's own)."""
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                          capture_output=True, text=True).stdout.strip()
    if not name.startswith("xl-"):
        sys.exit("traffic.py: refusing to send from outside an xl- lab namespace (ip netns identify: %r)" % name)


def parse_target(t):
    if t.startswith("["):
        addr, port = t[1:].split("]:")
        return socket.AF_INET6, addr, int(port)
    addr, port = t.rsplit(":", 1)
    return socket.AF_INET, addr, int(port)


def sources_by_family(srcs):
    out = {socket.AF_INET: [], socket.AF_INET6: []}
    for s in srcs:
        out[socket.AF_INET6 if ":" in s else socket.AF_INET].append(s)
    return out


def plan(targets, srcs, n):
    """Connection i: (family, dst, port, src) — targets alternate, sources rotate per family."""
    fam_srcs = sources_by_family(srcs)
    out = []
    for i in range(n):
        fam, dst, port = targets[i % len(targets)]
        choices = fam_srcs[fam]
        if not choices:
            sys.exit("traffic.py: no --src address of the family of %s" % dst)
        out.append((fam, dst, port, choices[(i // len(targets)) % len(choices)]))
    return out


# ---- short ------------------------------------------------------------------

def one_http(i, fam, dst, port, src, sport, timeout, not_before):
    delay = not_before - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    r = {"i": i, "dst": dst, "port": port, "src": src, "sport": sport, "t": time.time()}
    t0 = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport))
        r["sport"] = s.getsockname()[1]
        s.settimeout(timeout)
        s.connect((dst, port))
        host = "[%s]" % dst if fam == socket.AF_INET6 else dst
        s.sendall(b"GET / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
        data = b""
        for _ in range(64):                      # a reply is < 1 KiB
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n")[0] + b" ":
            raise OSError("bad reply %r" % data[:60])
        r["backend"] = body.decode(errors="replace").strip()
        r["ok"] = True
    except (OSError, ValueError) as e:
        r["ok"] = False
        r["error"] = type(e).__name__ + ": " + (os.strerror(e.errno) if getattr(e, "errno", None) else str(e))
    finally:
        s.close()
    r["ms"] = round((time.monotonic() - t0) * 1000, 2)
    return r


def short(a):
    targets = [parse_target(t) for t in a.targets.split(",")]
    count = min(a.count, MAX_CONNS)
    flows = plan(targets, a.src.split(","), count)
    if a.sport_base and a.sport_base + count > 65535:
        sys.exit("traffic.py: --sport-base %d + --count %d passes port 65535" % (a.sport_base, count))
    deadline = time.monotonic() + min(a.max_seconds, MAX_SECONDS)
    start = time.monotonic()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(a.concurrency, 256))) as pool:
        futs = []
        for i, (fam, dst, port, src) in enumerate(flows):
            sport = a.sport_base + i if a.sport_base else 0
            not_before = start + (i / a.rate if a.rate else 0)
            futs.append(pool.submit(one_http, i, fam, dst, port, src, sport, a.timeout, not_before))
        for f in futs:
            left = deadline - time.monotonic()
            try:
                results.append(f.result(timeout=max(left, 0.01)))
            except concurrent.futures.TimeoutError:
                f.cancel()
                results.append({"i": len(results), "ok": False, "error": "not run: deadline"})
    with open(a.out, "w") as f:
        json.dump({"mode": "short", "seconds": round(time.monotonic() - start, 3), "conns": results}, f)
    bad = sum(1 for r in results if not r["ok"])
    print("short: %d connections, %d failed, %.1f s" % (len(results), bad, time.monotonic() - start))


# ---- long -------------------------------------------------------------------

class Conn:
    def __init__(self, i, fam, dst, port, src):
        self.i, self.dst, self.port, self.src = i, dst, port, src
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sport = 0
        self.connected = False
        self.backend = None
        self.sent = 0
        self.received = 0
        self.buf = b""
        self.out = b""
        self.broken = None
        self.broken_at = None
        self.last_reply = None
        self.max_gap = 0.0

    def fail(self, reason, sel):
        if self.broken is None:
            self.broken = reason
            self.broken_at = time.time()
        try:
            sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()

    def record(self):
        return {"i": self.i, "dst": self.dst, "port": self.port, "src": self.src, "sport": self.sport,
                "connected": self.connected, "backend": self.backend, "sent": self.sent,
                "received": self.received, "max_gap": round(self.max_gap, 3),
                "broken": self.broken, "broken_at": self.broken_at,
                "last_reply_at": self.last_reply}


TIMELINE_INTERVAL = 0.5  # seconds between the long mode's timeline samples


def timeline_sample(conns):
    """[epoch, connections alive, broken, lines answered so far]: one point of
    the long mode's timeline (ecmp-lab/timeline.py plots it)."""
    alive = sum(1 for c in conns if c.connected and c.broken is None)
    broken = sum(1 for c in conns if c.broken is not None)
    return [round(time.time(), 3), alive, broken, sum(c.received for c in conns)]


def long_lived(a):
    targets = [parse_target(t) for t in a.targets.split(",")]
    n = min(a.conns, MAX_CONNS)
    seconds = min(a.seconds, MAX_SECONDS)
    sel = selectors.DefaultSelector()
    conns = []
    for i, (fam, dst, port, src) in enumerate(plan(targets, a.src.split(","), n)):
        c = Conn(i, fam, dst, port, src)
        c.sock.setblocking(False)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.sock.bind((src, 0))
        c.sport = c.sock.getsockname()[1]
        err = c.sock.connect_ex((dst, port))
        if err not in (0, errno.EINPROGRESS):
            c.fail("connect: " + os.strerror(err), sel)
        else:
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        conns.append(c)

    def wants(c):
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out or not c.connected else 0)

    def update(c):
        if c.broken is None:
            sel.modify(c.sock, wants(c), c)

    def on_event(c, mask, now):
        if not c.connected:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return c.fail("connect: " + os.strerror(err), sel)
            c.connected = True
            c.last_reply = time.time()
        if mask & selectors.EVENT_WRITE and c.out:
            try:
                k = c.sock.send(c.out)
                c.out = c.out[k:]
            except BlockingIOError:
                pass
            except OSError as e:
                return c.fail("send: " + os.strerror(e.errno), sel)
        if mask & selectors.EVENT_READ:
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError as e:
                return c.fail("recv: " + os.strerror(e.errno), sel)
            if data == b"":
                return c.fail("eof", sel)
            if data:
                c.buf += data
                for _ in range(100000):
                    line, sep, rest = c.buf.partition(b"\n")
                    if not sep:
                        break
                    c.buf = rest
                    name, _, seq = line.decode(errors="replace").partition(" ")
                    if c.backend is None:
                        c.backend = name
                    elif name != c.backend:
                        return c.fail("backend changed %s -> %s" % (c.backend, name), sel)
                    if seq != str(c.received):
                        return c.fail("out of order: got %r, expected %d" % (seq, c.received), sel)
                    c.received += 1
                    t = time.time()
                    c.max_gap = max(c.max_gap, t - c.last_reply)
                    c.last_reply = t
        update(c)

    start = time.monotonic()
    connect_deadline = start + 10
    # Sending starts once every connection is up (or failed) and lasts S seconds.
    send_until = connect_deadline + seconds
    hard_deadline = send_until + 3          # replies may trail the last send by up to 3 s
    next_tick = start
    ready_written = False
    sending_from = None
    timeline = []
    next_sample = start
    for _ in range(10_000_000):
        now = time.monotonic()
        if now >= hard_deadline:
            break
        if now >= next_sample:
            timeline.append(timeline_sample(conns))
            next_sample = now + TIMELINE_INTERVAL
        if not ready_written and (all(c.connected or c.broken for c in conns) or now > connect_deadline):
            for c in conns:
                if not c.connected and c.broken is None:
                    c.fail("connect: timeout", sel)
            if a.ready:
                open(a.ready, "w").close()
            ready_written = True
            send_until = now + seconds
            sending_from = time.time()
            hard_deadline = send_until + 3
            next_tick = now
        if now >= next_tick and now < send_until and ready_written:
            for c in conns:
                if c.broken is None and c.connected and c.sent - c.received < 100:
                    c.out += b"%d\n" % c.sent
                    c.sent += 1
                    update(c)
            next_tick += a.interval
            if next_tick < now:                 # fell behind: don't burst
                next_tick = now + a.interval
        if now >= send_until and all(c.broken or c.received == c.sent for c in conns):
            break
        timeout = max(0.0, min(next_tick if now < send_until else hard_deadline, hard_deadline) - now)
        for key, mask in sel.select(timeout=min(timeout, 0.05)):
            on_event(key.data, mask, now)
    for c in conns:
        if c.broken is None:
            if c.received != c.sent:
                c.fail("no reply to %d of %d lines" % (c.sent - c.received, c.sent), sel)
            else:
                try:
                    c.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                sel.unregister(c.sock)
                c.sock.close()
    if a.ready and not ready_written:
        open(a.ready, "w").close()
    timeline.append(timeline_sample(conns))
    recs = [c.record() for c in conns]
    with open(a.out, "w") as f:
        json.dump({"mode": "long", "started": time.time() - (time.monotonic() - start),
                   "seconds": round(time.monotonic() - start, 3), "interval": a.interval,
                   "sending_from": sending_from, "sending_seconds": seconds,
                   "timeline_fields": ["t", "alive", "broken", "answered"], "timeline": timeline, "conns": recs}, f)
    print("long: %d connections, %d broken, %d lines answered" %
          (len(recs), sum(1 for r in recs if r["broken"]), sum(r["received"] for r in recs)))


if __name__ == "__main__":
    refuse_outside_lab()
    p = argparse.ArgumentParser(description="xdplb lab traffic client (see the module docstring)")
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("short")
    s.add_argument("--targets", required=True)
    s.add_argument("--src", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--concurrency", type=int, default=16)
    s.add_argument("--sport-base", type=int, default=0)
    s.add_argument("--rate", type=float, default=0, help="connection starts per second (0: as fast as possible)")
    s.add_argument("--timeout", type=float, default=5)
    s.add_argument("--max-seconds", type=float, default=120)
    s.add_argument("--out", required=True)
    l = sub.add_parser("long")
    l.add_argument("--targets", required=True)
    l.add_argument("--src", required=True)
    l.add_argument("--conns", type=int, required=True)
    l.add_argument("--seconds", type=float, required=True)
    l.add_argument("--interval", type=float, default=0.1)
    l.add_argument("--ready")
    l.add_argument("--out", required=True)
    a = p.parse_args()
    {"short": short, "long": long_lived}[a.mode](a)
