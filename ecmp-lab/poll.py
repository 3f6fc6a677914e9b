#!/usr/bin/env python3
"""Watch one LB node's agent for a backend to leave or join the rings (stdlib only).

    poll.py --admin 127.0.0.1:9180 --address A [--address B] --want removed|present
            --since EPOCH|@FILE --timeout S --out FILE

Runs inside an LB node's namespace (nsenter --net=/run/netns/xl-lbN) and reads
the agent's GET /status on its loopback admin address every 20 ms, so a timing
costs no process start per sample. "removed": every VIP entry of the given
addresses is unhealthy with 0 slots; "present": healthy with slots. Writes the
seconds from EPOCH until then, or "timeout". --since @FILE: the epoch is in
FILE, written when the event happens (start the poller first, then act). Loopback only; nothing else is
contacted. Refuses to run outside an xl- namespace.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request


def refuse_outside_lab():
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                          capture_output=True, text=True).stdout.strip()
    if not name.startswith("xl-"):
        sys.exit("poll.py: refusing to run outside an xl- lab namespace (ip netns identify: %r)" % name)


def reached(status, addresses, want):
    entries = [b for v in status["vips"] for b in v["backends"] if b["address"] in addresses]
    if not entries:
        return want == "removed"
    if want == "removed":
        return all(not b["healthy"] and b["slots"] == 0 for b in entries)
    return all(b["healthy"] and b["slots"] > 0 for b in entries)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--admin", default="127.0.0.1:9180")
    p.add_argument("--address", action="append", required=True)
    p.add_argument("--want", choices=["removed", "present"], required=True)
    p.add_argument("--since", required=True)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    host = a.admin.rsplit(":", 1)[0].strip("[]")
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        sys.exit("poll.py: --admin must be a loopback address")
    url = "http://%s/status" % a.admin
    deadline = time.time() + min(a.timeout, 120)
    since = None
    if not a.since.startswith("@"):
        since = float(a.since)
    else:
        for _ in range(100000):             # the event has not happened yet
            if time.time() > deadline:
                break
            try:
                since = float(open(a.since[1:]).read())
                break
            except (OSError, ValueError):
                time.sleep(0.01)
    if since is None:
        with open(a.out, "w") as f:
            f.write("timeout\n")
        return
    result = "timeout"
    for _ in range(100000):
        if time.time() > deadline:
            break
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                status = json.load(r)
            if reached(status, set(a.address), a.want):
                result = "%.2f" % (time.time() - since)
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    with open(a.out, "w") as f:
        f.write(result + "\n")


if __name__ == "__main__":
    refuse_outside_lab()
    main()
