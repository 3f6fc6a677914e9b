#!/usr/bin/env python3
"""Lab traffic for the agent test (stdlib only; run inside a test namespace).

send SRC DST DPORT --sports A,B,... --count N --interval S
    N rounds; each round one UDP datagram per source port, then sleep S.
recv --seconds T --out FILE
    count GRE packets delivered to this namespace for T seconds; writes JSON
    {"SPORT": {"OUTER_DST": count}} keyed by the inner UDP source port.
Refuses to run in the root network namespace.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time


def refuse_root_namespace():
    """Only run inside a named namespace (ip netns), never the machine's own."""
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True).stdout.strip()
    if not name.startswith("xt-"):
        sys.exit("traffic.py: refusing to run outside a test namespace (ip netns identify: %r)" % name)


def send(args):
    src, dst, dport = args[0], args[1], int(args[2])
    sports = [int(p) for p in args[args.index("--sports") + 1].split(",")]
    count = int(args[args.index("--count") + 1])
    interval = float(args[args.index("--interval") + 1])
    count = min(count, 100000)
    socks = []
    for p in sports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, p))
        socks.append(s)
    deadline = time.monotonic() + 120
    for i in range(count):
        for s in socks:
            s.sendto(struct.pack("!I", i) + b"xdplb-agent-test", (dst, dport))
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    print(count * len(socks))


def recv(args):
    seconds = min(float(args[args.index("--seconds") + 1]), 120)
    out = args[args.index("--out") + 1]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
    s.settimeout(0.2)
    counts = {}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            pkt = s.recv(65535)
        except socket.timeout:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        outer_dst = socket.inet_ntoa(pkt[16:20])
        gre = pkt[ihl:ihl + 4]
        if gre[2:4] != b"\x08\x00":
            continue
        # A second hop (second chance) adds the 4-byte key (K bit).
        glen = 8 if gre[0] & 0x20 else 4
        inner = pkt[ihl + glen:]
        iihl = (inner[0] & 0x0F) * 4
        if inner[9] != 17:
            continue
        sport = struct.unpack("!H", inner[iihl:iihl + 2])[0]
        per = counts.setdefault(str(sport), {})
        per[outer_dst] = per.get(outer_dst, 0) + 1
    with open(out, "w") as f:
        json.dump(counts, f)


if __name__ == "__main__":
    refuse_root_namespace()
    {"send": send, "recv": recv}[sys.argv[1]](sys.argv[2:])
