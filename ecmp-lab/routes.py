#!/usr/bin/env python3
"""The router's route history, from `ip -ts monitor route` (stdlib only).

    routes.py history LOG [--prefix P]...
        Prints every change of the given prefixes: time, prefix, next hops.
    routes.py converge LOG --prefix P --since EPOCH --want NH[,NH...] [--until EPOCH]
        Prints the seconds from EPOCH to the first change of P at or after
        EPOCH that leaves exactly the next hops NH (comma separated gateway
        addresses; "" = no route), or "none".
    routes.py changes LOG --prefix P --since EPOCH --until EPOCH
        Prints how many changes of P the router logged in [since, until].

`ip -ts monitor route` writes one block per change: a first line
"[YYYY-MM-DDTHH:MM:SS.ffffff] [Deleted ]PREFIX (via GW dev IF | proto ...)"
and, for a multipath route, one "\\tnexthop via GW dev IF ..." line per next
hop. The time is the machine's local time.
"""
import argparse
import datetime
import re
import sys

HEAD = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\]\s+(Deleted\s+)?(\S+)(.*)$")
VIA = re.compile(r"\bvia\s+(?:inet6?\s+)?([0-9a-fA-F.:]+)")


def parse(path):
    """[(epoch seconds, prefix, frozenset of gateways)], in log order; a
    deleted route has no gateways. Routes of other tables or kinds (local,
    broadcast, unreachable) are skipped. Next hops marked linkdown count as
    gone (the router ignores them: ignore_routes_with_linkdown)."""
    events, cur = [], None

    def flush():
        if cur is not None:
            t, prefix, deleted, gws = cur
            events.append((t, prefix, frozenset() if deleted else frozenset(gws)))

    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = HEAD.match(line)
        if m:
            flush()
            cur = None
            stamp, deleted, prefix, rest = m.groups()
            if prefix in ("local", "broadcast", "multicast", "unreachable", "blackhole", "prohibit") or " table " in rest:
                continue
            if "/" not in prefix:
                prefix += "/128" if ":" in prefix else "/32"
            t = datetime.datetime.fromisoformat(stamp).timestamp()
            gws = [] if "linkdown" in rest else VIA.findall(rest)
            cur = (t, prefix, bool(deleted), gws)
        elif cur is not None and line.startswith("\tnexthop"):
            if "linkdown" not in line and "dead" not in line:
                cur[3].extend(VIA.findall(line))
    flush()
    return events


def norm(prefix):
    if "/" not in prefix:
        prefix += "/128" if ":" in prefix else "/32"
    return prefix


def converge(events, prefix, since, want, until=None):
    """Seconds from `since` to the first change of `prefix` that leaves the
    next hops `want`, or None."""
    for t, p, gws in events:
        if p == prefix and t >= since and (until is None or t <= until) and gws == want:
            return t - since
    return None


def changes(events, prefix, since, until):
    return [(t, gws) for t, p, gws in events if p == prefix and since <= t <= until]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["history", "converge", "changes"])
    ap.add_argument("log")
    ap.add_argument("--prefix", action="append", default=[])
    ap.add_argument("--since", type=float)
    ap.add_argument("--until", type=float)
    ap.add_argument("--want", default="")
    a = ap.parse_args()
    ev = parse(a.log)
    prefixes = [norm(p) for p in a.prefix]
    if a.what == "history":
        for t, p, gws in ev:
            if not prefixes or p in prefixes:
                print("%.6f %s %s" % (t, p, " ".join(sorted(gws)) or "(none)"))
        return 0
    if len(prefixes) != 1 or a.since is None:
        ap.error("%s needs one --prefix and --since" % a.what)
    if a.what == "converge":
        want = frozenset(x for x in a.want.split(",") if x)
        s = converge(ev, prefixes[0], a.since, want, a.until)
        print("none" if s is None else "%.3f" % s)
    else:
        if a.until is None:
            ap.error("changes needs --until")
        print(len(changes(ev, prefixes[0], a.since, a.until)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
