#!/usr/bin/env python3
"""The timeline sampler of one scenario (stdlib only; sends no packets).

    sample.py --node N=SOCKET=LOG [--node ...] --backends A[,B...] --out FILE.jsonl
              [--interval S] [--max-seconds S]

Runs in the background while a scenario runs (ecmp-lab/lib.sh starts it in
scenario_begin and stops it in analyze, with SIGTERM) and appends JSON lines
to FILE:

    {"kind": "stats", "round": K, "t": EPOCH, "node": N, "vip": P, "drop": P,
     "ct_miss": P, "new_flow": P, "backends": {ADDR: P, ...}}
        every --interval seconds (default 0.5), per LB node, from the agent's
        GET /stats on its admin socket: cumulative packet counts (VIP packets,
        drop_* summed, conntrack misses, new flows, packets per backend of
        --backends; round K counts the rounds, one line per node each).
        {"kind": "stats", "round": K, "t": EPOCH, "node": N, "error": TEXT}
        when the agent does not answer (stopped or restarting).
    {"kind": "log", "t_lo": EPOCH, "t_hi": EPOCH, "node": N, "line": TEXT}
        every line the node's agent appends to its log, read every 0.1 s: the
        line happened in [t_lo, t_hi] (the time of the read before and of this
        one; timeline.py narrows it with the line's own timestamp).

GET /stats costs the agent a few milliseconds (GET /status, with health and
digests, about twenty times more: health transitions and ring changes come from
the agents' logs instead). A slow answer stretches the interval (at least three
times the time the last round took), so the sampler never keeps an agent busy.
Every loop is bounded by a count and --max-seconds. Refuses to run outside an
xl- namespace (it only reads unix sockets and files, but lab tools run inside
the lab).
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time

from poll import UnixHTTPConnection   # ecmp-lab/poll.py: HTTP over an agent's admin socket

LOG_READ_INTERVAL = 0.1      # seconds between reads of the agents' logs
MAX_LOG_CHUNK = 1 << 20      # bytes read from one log at a time


def refuse_outside_lab():
    """Lab tools run inside a lab namespace only."""
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                          capture_output=True, text=True).stdout.strip()
    if not name.startswith("xl-"):
        sys.exit("sample.py: refusing to run outside an xl- lab namespace (ip netns identify: %r)" % name)


def get_json(socket_path, path):
    """GET PATH from the agent on SOCKET_PATH, decoded; raises OSError or ValueError."""
    conn = UnixHTTPConnection(socket_path, timeout=2.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError("status %d" % resp.status)
        return json.loads(body)
    finally:
        conn.close()


def packets(section):
    """{name: packets} of one /stats section."""
    return {k: int(v.get("packets", 0)) for k, v in (section or {}).items()}


def stats_record(round_no, node, socket_path, backends):
    """One stats line of NODE in round ROUND_NO: cumulative packet counts, or the error."""
    t = time.time()
    try:
        s = get_json(socket_path, "/stats")
    except (OSError, ValueError, http.client.HTTPException) as e:
        return {"kind": "stats", "round": round_no, "t": round(t, 3), "node": node, "error": type(e).__name__}
    counters = packets(s.get("counters"))
    per_backend = packets(s.get("backends"))
    return {
        "kind": "stats", "round": round_no, "t": round(t, 3), "node": node,
        "vip": sum(packets(s.get("vips")).values()),
        "drop": sum(v for k, v in counters.items() if k.startswith("drop_")),
        "ct_miss": counters.get("ct_miss", 0),
        "new_flow": counters.get("new_flow", 0),
        "backends": {a: per_backend[a] for a in backends if a in per_backend},
    }


class LogTail:
    """New lines of one agent log since the sampler started."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.partial = b""
        self.last_read = time.time()

    def new_lines(self):
        """Complete lines appended since the last call, and the read window."""
        t_lo, t_hi = self.last_read, time.time()
        self.last_read = t_hi
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return [], t_lo, t_hi
        if size < self.offset:               # truncated or replaced: start over
            self.offset, self.partial = 0, b""
        if size == self.offset:
            return [], t_lo, t_hi
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(MAX_LOG_CHUNK)
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [ln.decode(errors="replace") for ln in lines if ln], t_lo, t_hi


def parse_node(spec):
    """N=SOCKET=LOG -> (N, SOCKET, LOG)."""
    parts = spec.split("=", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].startswith("/"):
        raise argparse.ArgumentTypeError("--node wants N=/path/to/admin.sock=/path/to/agent.log, not %r" % spec)
    return int(parts[0]), parts[1], parts[2]


def main():
    """Sample until SIGTERM, SIGINT or --max-seconds."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--node", type=parse_node, action="append", required=True,
                   help="N=SOCKET=LOG: LB node N's admin socket and agent log")
    p.add_argument("--backends", default="", help="backend addresses whose packets to record, comma separated")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between /stats rounds (0.2 .. 5)")
    p.add_argument("--max-seconds", type=float, default=900)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    interval = min(max(a.interval, 0.2), 5.0)
    backends = [b for b in a.backends.split(",") if b]
    deadline = time.time() + min(a.max_seconds, 3600)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    tails = {n: LogTail(log) for n, _, log in a.node}
    next_stats = time.time()
    round_no = 0
    with open(a.out, "a") as out:
        for _ in range(10_000_000):
            now = time.time()
            if stopping or now > deadline:
                break
            for n, tail in tails.items():
                lines, t_lo, t_hi = tail.new_lines()
                for line in lines:
                    out.write(json.dumps({"kind": "log", "t_lo": round(t_lo, 3), "t_hi": round(t_hi, 3),
                                          "node": n, "line": line}) + "\n")
            if now >= next_stats:
                t0 = time.time()
                for n, sock, _ in a.node:
                    out.write(json.dumps(stats_record(round_no, n, sock, backends)) + "\n")
                round_no += 1
                took = time.time() - t0
                next_stats = t0 + max(interval, 3 * took)
            out.flush()
            time.sleep(max(0.0, min(LOG_READ_INTERVAL, next_stats - time.time())))
        # The lines logged until the stop, so the last events are not lost.
        for n, tail in tails.items():
            lines, t_lo, t_hi = tail.new_lines()
            for line in lines:
                out.write(json.dumps({"kind": "log", "t_lo": round(t_lo, 3), "t_hi": round(t_hi, 3),
                                      "node": n, "line": line}) + "\n")
    return 0


if __name__ == "__main__":
    refuse_outside_lab()
    sys.exit(main())
