#!/usr/bin/env python3
"""The timeline of one lab scenario, as JSON (stdlib only; reads files, sends nothing).

    timeline.py --name NAME --dir SCDIR --routes ROUTES.log --out NAME.timeline.json

Reads what the scenario left in SCDIR and turns it into time series and
events, in seconds since the scenario began (SCDIR/scenario.begin):

  - the traffic client's files: long-lived connections alive and broken, echo
    lines answered per second (long*.json: their 0.5 s timeline), short
    connections finished per second, ok and failed (short*.json, probe*.json);
  - the sampler's file (samples.jsonl, ecmp-lab/sample.py): VIP packets per
    second per LB node and packets per second per backend (all nodes), from
    every agent's /stats (a rate between two samples is drawn at their
    middle); and from the agents' log lines: health transitions,
    ring rebuilds, config revisions, announcements;
  - the router's route history (routes.log): the VIP routes' ECMP next hops;
  - the scenario's own marks: meta.tsv keys t_* and the TAG.t files of its pollers.

The result: {"name", "begin", "end", "seconds", "panels": [{"title", "unit",
"series": [{"label", "points": [[t, value or null], ...], "step"}]}],
"lanes": [...], "events": [{"t", "lane", "kind", "text"}], "actions":
[{"t", "text"}]}. ecmp-lab/report_html.py draws it; analyze.py report puts
it into the JSON report ("timelines").
"""
import argparse
import calendar
import collections
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import routes  # noqa: E402  (ecmp-lab/routes.py: the router's route history)

BIN_SECONDS = 1.0            # width of the bins of per-second counts
MAX_POINTS = 2000            # per series: a longer one is thinned evenly
GROUP_SECONDS = 1.5          # log events of one kind, node and subject this close are one event
ACTION_MERGE_SECONDS = 0.25  # marks this close are one action

# Lab addresses (ecmp-lab/config.sh): backend i is 10.96.i.2 / fd00:96:i::2,
# LB node i is 10.97.i.2 / fd00:97:i::2 on its router link.
BACKEND_ADDR = re.compile(r"^(?:10\.96\.(\d+)\.2|fd00:96:(\d+)::2)$")
NODE_ADDR = re.compile(r"^(?:10\.97\.(\d+)\.2|fd00:97:(\d+)::2)$")
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([+-]\d{4}|Z)?\s+(\w+)\s+\S+:\s*(.*?)\s*(?:\[(\w+)\]\s*(.*))?$")
KEY_VALUE = re.compile(r"([\w.]+)=(\S*)")


# ---- small helpers ---------------------------------------------------------

def load_json(path):
    """The JSON in PATH, or None when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_epoch(path):
    """The epoch seconds written in PATH (a TAG.t file), or None."""
    try:
        return float(open(path).read().strip())
    except (OSError, ValueError):
        return None


def read_meta(d):
    """meta.tsv as {key: text}."""
    out = {}
    try:
        for line in open(os.path.join(d, "meta.tsv")):
            k, _, v = line.rstrip("\n").partition("\t")
            out[k] = v
    except OSError:
        pass
    return out


def backend_name(address):
    """beN for a lab backend address, else the address."""
    m = BACKEND_ADDR.match(address)
    return "be%s" % (m.group(1) or m.group(2)) if m else address


def node_name(address):
    """lbN for an LB node's address on its router link, else the address."""
    m = NODE_ADDR.match(address)
    return "lb%s" % (m.group(1) or m.group(2)) if m else address


def natural(s):
    """Sort key: be2 before be10."""
    head = s.rstrip("0123456789")
    tail = s[len(head):]
    return (head, int(tail) if tail else -1)


def thin(points):
    """At most MAX_POINTS points, evenly chosen, the last one kept."""
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    out = [points[int(i * step)] for i in range(MAX_POINTS - 1)]
    return out + [points[-1]]


def series(label, points, step=False, key=None, dashed=False):
    """One series of a panel. KEY names what it is about (a traffic file, a
    node, a backend): series with the same key share a colour in the plot;
    DASHED draws it dashed (the broken connections next to the alive ones)."""
    out = {"label": label, "points": thin(points), "step": step, "key": key or label}
    if dashed:
        out["dashed"] = True
    return out


class Clock:
    """Epoch seconds -> seconds since the scenario began, rounded."""

    def __init__(self, begin):
        self.begin = begin

    def rel(self, epoch):
        """EPOCH as seconds since the scenario began."""
        return round(epoch - self.begin, 2)


# ---- traffic ---------------------------------------------------------------

def traffic_files(d, prefixes):
    """SCDIR's traffic client files whose names start with one of PREFIXES."""
    names = [n for n in os.listdir(d) if n.endswith(".json") and n.startswith(prefixes)]
    return sorted(names, key=natural)


def long_points_from_records(data):
    """[epoch, alive, broken, None] from the connection records, for a long
    file written without a timeline: alive from the start of sending until
    each connection broke or the traffic ended."""
    conns = data.get("conns") or []
    start = data.get("sending_from") or data.get("started")
    if not start:
        return []
    end = start + (data.get("sending_seconds") or 0)
    breaks = sorted(c["broken_at"] for c in conns if c.get("broken_at"))
    connected = sum(1 for c in conns if c.get("connected"))
    out, t = [], start
    for _ in range(100000):
        if t > end + 0.01:
            break
        broken = sum(1 for b in breaks if b <= t)
        out.append([t, max(connected - broken, 0), broken, None])
        t += 0.5
    return out


def long_traffic(d, clock):
    """Series of the long-lived connections: alive, broken, lines answered/s."""
    alive, rates = [], []
    runs = []
    for name in traffic_files(d, ("long",)):
        data = load_json(os.path.join(d, name))
        if data and data.get("mode") == "long":
            runs.append((data.get("started") or 0, name[:-5], data))
    for _, stem, data in sorted(runs, key=lambda r: r[0]):       # in the order they ran
        tag = "" if len(runs) == 1 else " (%s)" % stem
        points = data.get("timeline") or long_points_from_records(data)
        if not points:
            continue
        alive.append(series("alive" + tag, [[clock.rel(p[0]), p[1]] for p in points], step=True, key=stem))
        if any(p[2] for p in points):
            alive.append(series("broken" + tag, [[clock.rel(p[0]), p[2]] for p in points], step=True, key=stem,
                                dashed=True))
        answered = [[clock.rel((a[0] + b[0]) / 2), round((b[3] - a[3]) / (b[0] - a[0]), 1)]
                    for a, b in zip(points, points[1:]) if b[3] is not None and a[3] is not None and b[0] > a[0]]
        if answered:
            rates.append(series("lines answered/s" + tag, answered, key=stem))
    return alive, rates


def short_traffic(d, clock):
    """Series of short connections finished per second, ok and failed, per file."""
    out = []
    for name in traffic_files(d, ("short", "probe")):
        data = load_json(os.path.join(d, name))
        if not data or data.get("mode") != "short":
            continue
        ok, failed = collections.Counter(), collections.Counter()
        for c in data.get("conns") or []:
            if "t" not in c:
                continue
            done = c["t"] + (c.get("ms") or 0) / 1000.0
            (ok if c.get("ok") else failed)[int((done - clock.begin) // BIN_SECONDS)] += 1
        if not ok and not failed:
            continue
        bins = range(min(list(ok) + list(failed)) - 1, max(list(ok) + list(failed)) + 2)
        stem = name[:-5]
        out.append(series("%s ok/s" % stem, [[round((b + 0.5) * BIN_SECONDS, 2), ok[b] / BIN_SECONDS] for b in bins],
                          key=stem))
        if failed:
            out.append(series("%s failed/s" % stem,
                              [[round((b + 0.5) * BIN_SECONDS, 2), failed[b] / BIN_SECONDS] for b in bins],
                              key=stem, dashed=True))
    return out


# ---- the sampler: packets --------------------------------------------------

def read_samples(d):
    """The sampler's lines: (stats records, log records)."""
    stats, logs = [], []
    try:
        f = open(os.path.join(d, "samples.jsonl"))
    except OSError:
        return stats, logs
    with f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue            # a line cut short by the stop
            (stats if r.get("kind") == "stats" else logs).append(r)
    return stats, logs


def rate(a, b, key):
    """Packets per second of counter KEY between two records of one node, or
    None (no answer in one of them, or the counter went back: a new data plane)."""
    if "error" in a or "error" in b or b["t"] <= a["t"]:
        return None
    va, vb = a.get(key), b.get(key)
    if va is None or vb is None or vb < va:
        return None
    return (vb - va) / (b["t"] - a["t"])


def node_packet_series(stats, clock):
    """VIP packets/s per LB node, and the drops the nodes counted (events)."""
    by_node = collections.defaultdict(list)
    for r in stats:
        by_node[r["node"]].append(r)
    out, drop_events = [], []
    for node in sorted(by_node):
        recs = by_node[node]
        points = []
        for a, b in zip(recs, recs[1:]):
            v = rate(a, b, "vip")
            points.append([clock.rel((a["t"] + b["t"]) / 2), round(v, 1) if v is not None else None])
            dropped = (b.get("drop") or 0) - (a.get("drop") or 0) if "error" not in a and "error" not in b else 0
            if dropped > 0:
                drop_events.append({"t": clock.rel(b["t"]), "lane": "lb%d" % node, "kind": "drop",
                                    "text": "lb%d dropped %d packets" % (node, dropped)})
        if points:
            out.append(series("lb%d" % node, points))
    return out, drop_events


def backend_packet_series(stats, clock):
    """Packets/s per backend (both families, every node), round by round."""
    rounds = collections.defaultdict(dict)
    for r in stats:
        rounds[r.get("round", 0)][r["node"]] = r
    keys = sorted(rounds)
    per_backend = collections.defaultdict(list)
    names = sorted({backend_name(a) for r in stats for a in (r.get("backends") or {})}, key=natural)
    for k0, k1 in zip(keys, keys[1:]):
        r0, r1 = rounds[k0], rounds[k1]
        t = (max(r["t"] for r in r0.values()) + max(r["t"] for r in r1.values())) / 2
        sums = collections.Counter()
        for node, b in r1.items():
            a = r0.get(node)
            if a is None or "error" in a or "error" in b or b["t"] <= a["t"]:
                continue
            for addr, count in (b.get("backends") or {}).items():
                before = (a.get("backends") or {}).get(addr)
                if before is not None and count >= before:
                    sums[backend_name(addr)] += (count - before) / (b["t"] - a["t"])
        for name in names:
            per_backend[name].append([clock.rel(t), round(sums[name], 1)])
    return [series(name, per_backend[name]) for name in names if per_backend[name]]


# ---- the sampler: agent log lines ------------------------------------------

def log_time(record, stamp):
    """The best time for a log line: its own second-resolution stamp (UTC)
    narrowed by the sampler's read window [t_lo, t_hi]."""
    lo, hi = record["t_lo"], record["t_hi"]
    try:
        sec = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return hi
    lo2, hi2 = max(lo, sec), min(hi, sec + 1)
    return (lo2 + hi2) / 2 if lo2 <= hi2 else hi


def probe_backend(probe):
    """beN from a probe's text: "tcp [fd00:96:1::2]:7" or "http 10.96.1.2:80/healthz"."""
    target = probe.split()[-1] if probe else ""
    if target.startswith("["):
        addr = target[1:].split("]")[0]
    else:
        addr = target.rsplit(":", 1)[0] if ":" in target else target
    return backend_name(addr)


def classify(fields, label, message):
    """(kind, subject, text) for one agent log line, or None for lines the
    timeline leaves out."""
    if label == "Health" and message.startswith("health state changed"):
        up = fields.get("health.healthy") == "true"
        return ("health_up" if up else "health_down", probe_backend(fields.get("probe", "")), None)
    if label == "Agent" and message.startswith("reconciled"):
        rings = [r for r in fields.get("rings.replaced", "").split(",") if r]
        if not rings:
            return None
        return ("ring", fields.get("reason", "?"), "%d rings rebuilt (%s)" % (len(rings), fields.get("reason", "?")))
    if label == "Cluster" and message.startswith("applied the shared config"):
        return ("config", "revision", "runs config revision %s" % fields.get("revision", "?"))
    if label == "Cluster" and message.startswith("refused the shared config"):
        return ("refused", "revision", "refused config revision %s" % fields.get("revision", "?"))
    if label == "Cluster" and "etcd" in message:
        return ("cluster", message, message)
    if label == "Routing" and message.startswith("announcement changed"):
        return ("announce", fields.get("state", "?"), "announcement: %s" % fields.get("state", "?"))
    if message.startswith("health checks converged"):
        return ("converged", "", "health checks converged")
    if label == "xdplb" and message.startswith("agent running"):
        return ("agent", "", "agent running (%s)" % fields.get("up", "?"))
    return None


def log_events(logs, clock):
    """Events from the agents' log lines, grouped: one per kind, node and
    subject within GROUP_SECONDS of the previous line (a backend's four probes
    failing is one health transition: "be1 down (4 probes)")."""
    groups, open_by_key = [], {}
    for r in logs:
        m = LOG_LINE.match(r.get("line", ""))
        if not m:
            continue
        stamp, _zone, _level, body, label, message = m.groups()
        if label is None:
            label, message = "", body
        what = classify(dict(KEY_VALUE.findall(body)), label, message or "")
        if what is None:
            continue
        kind, subject, text = what
        t = log_time(r, stamp)
        key = (r["node"], kind, subject)
        g = open_by_key.get(key)
        if g is not None and t - g["last"] <= GROUP_SECONDS:
            g["count"] += 1
            g["last"] = t
            g["text"] = text or g["text"]       # a revision: the last one counts
            continue
        g = {"t": t, "last": t, "node": r["node"], "kind": kind, "subject": subject, "text": text, "count": 1}
        open_by_key[key] = g
        groups.append(g)
    return [{"t": clock.rel(g["t"]), "lane": "lb%d" % g["node"], "kind": g["kind"], "text": event_text(g)}
            for g in groups]


def event_text(group):
    """The text of a grouped log event."""
    if group["kind"] in ("health_up", "health_down"):
        n = group["count"]
        return "%s %s (%d probe%s)" % (group["subject"] or "?", "up" if group["kind"] == "health_up" else "down",
                                       n, "" if n == 1 else "s")
    if group["count"] > 1 and group["kind"] in ("ring", "announce"):
        return "%s, %d times" % (group["text"], group["count"])
    return group["text"] or group["kind"]


# ---- the router ------------------------------------------------------------

def route_series(routes_log, meta, clock, end):
    """ECMP next hops of the VIP routes (v4, v6) as step series, and one
    event per change."""
    if not routes_log or not os.path.exists(routes_log):
        return [], []
    history = routes.parse(routes_log)
    out, events = [], []
    for fam, key in (("IPv4", "vip4"), ("IPv6", "vip6")):
        prefix = routes.norm(meta.get(key) or ("10.100.0.1/32" if fam == "IPv4" else "fd00:100::1/128"))
        current = None
        points = []
        for t, p, gws in history:
            if p != prefix:
                continue
            if t < clock.begin:
                current = gws
                continue
            if t > end:
                break
            if current is None or not points:
                points.append([0.0, len(current) if current is not None else 0])
            points.append([clock.rel(t), len(gws)])
            events.append({"t": clock.rel(t), "lane": "router", "kind": "route",
                           "text": "%s next hops: %s" % (fam, ", ".join(sorted((node_name(g) for g in gws),
                                                                            key=natural)) or "none")})
            current = gws
        if not points:
            points.append([0.0, len(current) if current is not None else 0])
        points.append([clock.rel(end), points[-1][1]])
        out.append(series(fam, points, step=True))
    return out, events


# ---- the scenario's own marks ---------------------------------------------

def actions(d, meta, clock):
    """What the scenario did when: meta t_* keys and TAG.t files, merged when close."""
    marks = []
    for k, v in meta.items():
        if k.startswith("t_"):
            try:
                marks.append((float(v), k[2:]))
            except ValueError:
                pass
    for name in os.listdir(d):
        if name.endswith(".t"):
            t = read_epoch(os.path.join(d, name))
            if t is not None:
                marks.append((t, name[:-2]))
    marks.sort()
    out = []
    for t, text in marks:
        if out and t - out[-1]["epoch"] <= ACTION_MERGE_SECONDS:
            if text not in out[-1]["text"].split(" / "):
                out[-1]["text"] += " / " + text
            continue
        out.append({"epoch": t, "t": clock.rel(t), "text": text})
    for a in out:
        del a["epoch"]
    return out


# ---- the whole timeline ----------------------------------------------------

def known_window(d, meta, stats):
    """(first, last) epoch the scenario's files know of, for a directory
    without scenario.begin/end (a scenario of an older lab, or run by hand)."""
    times = [r["t"] for r in stats]
    times += [float(v) for k, v in meta.items() if k.startswith("t_") and v.replace(".", "", 1).isdigit()]
    for name in traffic_files(d, ("long", "short", "probe")):
        data = load_json(os.path.join(d, name)) or {}
        if data.get("started"):
            times += [data["started"], data["started"] + (data.get("seconds") or 0)]
        times += [c["t"] for c in data.get("conns") or [] if "t" in c]
    now = time.time()
    return (min(times), max(times)) if times else (now, now)


def build(name, d, routes_log):
    """The timeline of scenario NAME from its directory D."""
    meta = read_meta(d)
    stats, logs = read_samples(d)
    begin = read_epoch(os.path.join(d, "scenario.begin"))
    end = read_epoch(os.path.join(d, "scenario.end"))
    if begin is None or end is None:
        lo, hi = known_window(d, meta, stats)
        begin, end = begin or lo, end or hi
    clock = Clock(begin)
    alive, answered = long_traffic(d, clock)
    shorts = short_traffic(d, clock)
    node_pk, drop_events = node_packet_series(stats, clock)
    backend_pk = backend_packet_series(stats, clock)
    route_pk, route_events = route_series(routes_log, meta, clock, end)
    agent_events = log_events(logs, clock)
    panels = [
        {"title": "Long-lived connections (broken: dashed)", "unit": "connections", "series": alive},
        {"title": "Echo lines answered per second, on the long-lived connections", "unit": "lines/s",
         "series": answered},
        {"title": "Short connections finished per second (failed: dashed)", "unit": "connections/s",
         "series": shorts},
        {"title": "VIP packets per second, per LB node", "unit": "packets/s", "series": node_pk},
        {"title": "Packets per second to each backend (every LB node)", "unit": "packets/s", "series": backend_pk},
        {"title": "Router: ECMP next hops of the VIP routes", "unit": "next hops", "series": route_pk},
    ]
    panels = [p for p in panels if p["series"]]
    events = sorted(agent_events + drop_events + route_events, key=lambda e: e["t"])
    lanes = sorted({e["lane"] for e in events if e["lane"] != "router"}, key=natural)
    if any(e["lane"] == "router" for e in events):
        lanes.append("router")
    return {"name": name, "begin": round(begin, 3), "end": round(end, 3), "seconds": round(end - begin, 2),
            "panels": panels, "lanes": lanes, "events": events, "actions": actions(d, meta, clock)}


def main():
    """Build the timeline, write it (atomically: a reader never sees half)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--routes")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    t = build(a.name, a.dir, a.routes)
    with open(a.out + ".tmp", "w") as f:
        json.dump(t, f, separators=(",", ":"))
    os.replace(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
