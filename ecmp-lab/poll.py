#!/usr/bin/env python3
"""Watch one LB node's agent for a backend to leave or join the rings, or for
its announcement state (stdlib only).

    poll.py --admin SOCKET --address A [--address B] --want removed|present
            [--port P] --since EPOCH|@FILE --timeout S --out FILE
    poll.py --admin SOCKET --want converged|stopped --since ... --out FILE
    poll.py --admin SOCKET --want revision --above R [--digests FILE] --since ... --out FILE
    poll.py --admin SOCKET --want refused --above R | --want reachable|unreachable ...

Runs inside an LB node's namespace (nsenter --net=/run/netns/xl-lbN) and reads
the agent's GET /status on its admin socket every 20 ms, so a timing
costs no process start per sample. "removed": every VIP entry of the given
addresses is unhealthy with 0 slots; "present": healthy with slots (with
--port P: only the VIPs on port P count);
"converged": the agent's health checks converged (it may announce);
"stopped": traffic to the node has stopped (announcements.traffic_stopped);
"revision": the node runs a cluster config revision above R (and with
--digests, every VIP's table digest is the one FILE gives for its family:
{"4": DIGEST, "6": DIGEST}); the revision seen goes to OUT.rev;
"refused": the node refused a revision above R (cluster.refused_revision; the
revision goes to OUT.rev);
"reachable"/"unreachable": the node's cluster.etcd_reachable.
--table T (with converged): at every sample before convergence, also look at
the node's announcement table T (routes proto 222, which bird exports) and
count the samples that found a VIP route there in OUT.early. Writes the
seconds from EPOCH until then, or "timeout". --since @FILE: the epoch is in
FILE, written when the event happens (start the poller first, then act). Only
the agent's unix socket is contacted. Refuses to run outside an xl- namespace.
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time


def refuse_outside_lab():
    name = subprocess.run(["ip", "netns", "identify", str(os.getpid())],
                          capture_output=True, text=True).stdout.strip()
    if not name.startswith("xl-"):
        sys.exit("poll.py: refusing to run outside an xl- lab namespace (ip netns identify: %r)" % name)


def family(vip_name):
    """4 or 6, from a VIP name like 10.100.0.1:80/tcp or [fd00:100::1]:80/tcp."""
    return "6" if vip_name.startswith("[") or vip_name.count(":") > 1 else "4"


def reached(status, addresses, want, a=None):
    if want in ("converged", "stopped"):
        key = "health_converged" if want == "converged" else "traffic_stopped"
        return (status.get("announcements") or {}).get(key) is True
    cluster = status.get("cluster") or {}
    if want == "revision":
        if (cluster.get("revision") or 0) <= a.above:
            return False
        if a.digests:
            return bool(status["vips"]) and all(v["digest"] == a.digests.get(family(v["name"])) for v in status["vips"])
        return True
    if want == "refused":
        return (cluster.get("refused_revision") or 0) > a.above
    if want in ("reachable", "unreachable"):
        return cluster.get("etcd_reachable") is (want == "reachable")
    vips = [v for v in status["vips"] if a is None or a.port is None or v["name"].rsplit("/", 1)[0].endswith(":%d" % a.port)]
    entries = [b for v in vips for b in v["backends"] if b["address"] in addresses]
    if not entries:
        return want == "removed"
    if want == "removed":
        return all(not b.get("agreed_healthy", b["healthy"]) and b["slots"] == 0 for b in entries)
    return all(b.get("agreed_healthy", b["healthy"]) and b["slots"] > 0 for b in entries)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--admin", required=True, help="the agent's admin unix socket (node.admin)")
    p.add_argument("--address", action="append", default=[])
    p.add_argument("--want", choices=["removed", "present", "converged", "stopped", "revision", "refused",
                                      "reachable", "unreachable"], required=True)
    p.add_argument("--port", type=int, help="--want removed|present: only the VIPs on this port")
    p.add_argument("--above", type=int, default=0, help="--want revision|refused: a revision above this one")
    p.add_argument("--digests", help="--want revision: JSON file {\"4\": DIGEST, \"6\": DIGEST}")
    p.add_argument("--interval", type=float, default=0.02, help="seconds between samples (0.02 .. 1)")
    p.add_argument("--since", required=True)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--out", required=True)
    p.add_argument("--table", type=int)
    a = p.parse_args()
    if a.want in ("removed", "present") and not a.address:
        p.error("--want %s needs --address" % a.want)
    a.interval = min(max(a.interval, 0.02), 1.0)
    if a.digests:
        with open(a.digests) as f:
            a.digests = json.load(f)
    if not a.admin.startswith("/"):
        sys.exit("poll.py: --admin must be the agent's unix socket path")
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
    early = 0
    for _ in range(100000):
        if time.time() > deadline:
            break
        # The table is read before the status: a route seen there while the
        # status read after it still says "not converged" was announced early
        # (convergence only moves forward, so the reverse order would count a
        # route added between the two reads).
        in_table = a.table is not None and announced(a.table)
        try:
            status = get_status(a.admin)
            if reached(status, set(a.address), a.want, a):
                # The agent's own time of convergence, when it tells it (the
                # sample's time is later by up to a poll and a status call).
                at = (status.get("announcements") or {}).get("health_converged_at") if a.want == "converged" else None
                result = "%.2f" % ((at if at else time.time()) - since)
                if a.want in ("revision", "refused"):
                    with open(a.out + ".rev", "w") as f:
                        f.write("%d\n" % status["cluster"]["revision" if a.want == "revision" else "refused_revision"])
                break
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if in_table:
            early += 1
        time.sleep(a.interval)
    with open(a.out, "w") as f:
        f.write(result + "\n")
    if a.table is not None:
        with open(a.out + ".early", "w") as f:
            f.write("%d\n" % early)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over an agent's admin unix socket (also used by sample.py)."""

    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get_status(path):
    c = UnixHTTPConnection(path)
    try:
        c.request("GET", "/status")
        r = c.getresponse()
        if r.status != 200:
            raise OSError("status %d" % r.status)
        return json.load(r)
    finally:
        c.close()


def announced(table):
    """A VIP route in the announcement table now (what bird would export)."""
    for fam in ("-4", "-6"):
        out = subprocess.run(["ip", fam, "route", "show", "table", str(table), "proto", "222"],
                             capture_output=True, text=True).stdout
        if out.strip():
            return True
    return False


if __name__ == "__main__":
    refuse_outside_lab()
    main()
