#!/usr/bin/env python3
"""The lab's report as one self-contained HTML page (stdlib only).

    report_html.py --report REPORT.json --out REPORT.html

REPORT.json is what `analyze.py report --out` writes (ecmp-lab/run --report;
with --html alone, run keeps it in its state directory). The page holds:

  - the lab's settings (nodes, backends, seed, versions, duration, timers);
  - connections per backend and per LB node (the distribution scenario's
    counts against an even share and its tolerance), as bars;
  - one section per scenario that ran: its name, ok or MISS, its key numbers,
    its goals, connections per backend where it counted them, its timeline
    (timeline.py: traffic, packets per node and per backend, the router's ECMP
    next hops, and a lane of events per LB node and the router: health
    transitions, ring rebuilds, config revisions, announcements, route
    changes; the scenario's own steps as numbered vertical lines), and every
    number it reported.

Plots are inline SVG, styles inline CSS: no scripts, no fonts or images from
anywhere, so the file opens the same anywhere, offline. Sections carry
data-scenario="NAME" and plots class="timeline" (Tests/lab/run.sh checks them).
"""
import argparse
import html
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import analyze  # noqa: E402  (ecmp-lab/analyze.py: the one-line key numbers)

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22"]
# Event kinds of timeline.py: (legend text, colour, marker shape).
EVENT_STYLE = {
    "health_down": ("health down", "#d62728", "down"),
    "health_up": ("health up", "#2ca02c", "up"),
    "ring": ("ring rebuilt", "#1f77b4", "diamond"),
    "config": ("config revision", "#9467bd", "circle"),
    "refused": ("config refused", "#ff7f0e", "cross"),
    "announce": ("announcement", "#17becf", "square"),
    "converged": ("health converged", "#2ca02c", "circle"),
    "agent": ("agent started", "#7f7f7f", "square"),
    "cluster": ("etcd", "#8c564b", "circle"),
    "route": ("route change", "#333333", "bar"),
    "drop": ("LB drops", "#d62728", "cross"),
}
REPORT_KEYS = ("lab", "ok", "timelines")   # top-level keys of REPORT.json that are no scenario

# Geometry of a timeline plot (SVG user units = CSS pixels).
PLOT_WIDTH = 980
PLOT_LEFT = 78
PLOT_RIGHT = 16
PANEL_HEIGHT = 96
PANEL_HEAD = 34          # title and legend above each panel
LANE_HEIGHT = 22
LEGEND_ROW = 15          # a legend that needs more than one row grows its panel by this per row
AXIS_HEIGHT = 30

CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em auto; max-width: 1040px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.02em; margin: 1.2em 0 0.4em; }
table { border-collapse: collapse; font-size: 0.86em; }
td, th { border: 1px solid #ddd; padding: 2px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 0.5em; border-radius: 3px; color: #fff; font-size: 0.85em; }
.badge.ok { background: #2a8f3c; }
.badge.miss { background: #c62828; }
.key { font-family: "DejaVu Sans Mono", monospace; font-size: 0.85em; background: #f7f7f7; padding: 0.4em; }
.cards { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.8em 0; }
.card { border: 1px solid #ddd; border-radius: 4px; padding: 0.3em 0.7em; min-width: 7em; }
.card b { display: block; font-size: 1.15em; }
.card span { color: #666; font-size: 0.8em; }
nav ul { columns: 3; list-style: none; padding-left: 0; font-size: 0.9em; }
ol.actions { font-size: 0.82em; columns: 2; margin-top: 0.2em; }
svg { display: block; margin: 0.3em 0; }
svg text { font-family: "DejaVu Sans", Arial, sans-serif; }
details { margin: 0.5em 0; font-size: 0.9em; }
.error { color: #c62828; font-weight: bold; }
footer { margin-top: 3em; color: #777; font-size: 0.8em; }
div.settings { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
table.settings { max-width: 510px; }
table.settings td { word-break: break-word; }
caption { text-align: left; font-weight: bold; font-size: 0.95em; padding: 0.2em 0; }
"""


# ---- small helpers ---------------------------------------------------------

def esc(x):
    """Text for HTML (and SVG) content or attributes."""
    return html.escape("" if x is None else str(x), quote=True)


def fmt(v):
    """A number or value as the report prints it."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        return ("%.3f" % v).rstrip("0").rstrip(".") if abs(v) < 1000 else "%.0f" % v
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=False)
    return str(v)


def nice_step(span, ticks):
    """A round tick step (1, 2, 5 x 10^k) giving about TICKS ticks over SPAN."""
    if span <= 0:
        return 1.0
    raw = span / max(ticks, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def flatten(value, prefix=""):
    """[(dotted key, leaf value)] of nested dicts; lists stay whole."""
    if isinstance(value, dict) and value:
        out = []
        for k, v in value.items():
            out += flatten(v, "%s.%s" % (prefix, k) if prefix else str(k))
        return out
    return [(prefix, value)]


def scenario_names(report):
    """The scenarios in the order they ran."""
    order = (report.get("lab") or {}).get("scenarios")
    names = [k for k in report if k not in REPORT_KEYS]
    if order:
        return [n for n in order if n in report] + [n for n in names if n not in order]
    return names


# ---- the top of the page ---------------------------------------------------

def settings_cards(lab, report, names):
    """The few settings everyone asks first, as cards."""
    ok = sum(1 for n in names if report[n].get("ok"))
    versions = lab.get("versions") or {}
    started = lab.get("started")
    cards = [
        ("LB nodes", lab.get("lb_nodes")), ("backends", lab.get("backends")),
        ("scenarios ok", "%d / %d" % (ok, len(names))),
        ("duration", "%.0f s" % lab["seconds"] if isinstance(lab.get("seconds"), (int, float)) else "?"),
        ("mode", "quick" if lab.get("quick") else "full"), ("hash seed", lab.get("hash_seed", "?")),
        ("xdplb", versions.get("xdplb", "?")), ("source", versions.get("source_commit", "?")),
        ("kernel", lab.get("kernel", "?")),
        ("started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"),
    ]
    items = "".join('<div class="card"><b>%s</b><span>%s</span></div>' % (esc(v), esc(k)) for k, v in cards)
    return '<div class="cards">%s</div>' % items


def settings_tables(lab):
    """Every lab setting: one small table per group (bgp, health, cluster, ...),
    the plain values first (the initial push summarised)."""
    lab = dict(lab)
    cluster = dict(lab.get("cluster") or {})
    push = cluster.pop("initial_push", None)
    if isinstance(push, dict):
        cluster["initial_push"] = {k: push.get(k) for k in ("revision", "converged", "converge_ms") if k in push}
    lab["cluster"] = cluster
    if isinstance(lab.get("started"), (int, float)):
        lab["started"] = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(lab["started"]))
    plain = {k: v for k, v in lab.items() if not isinstance(v, dict)}
    groups = [("lab", plain)] + [(k, v) for k, v in lab.items() if isinstance(v, dict)]
    tables = []
    for title, values in groups:
        rows = "".join('<tr><th>%s</th><td>%s</td></tr>' % (esc(k), esc(fmt(v))) for k, v in flatten(values))
        tables.append('<table class="settings"><caption>%s</caption>%s</table>' % (esc(title), rows))
    return '<div class="settings">%s</div>' % "".join(tables)


def bars(title, counts, even=None, tolerance_pct=None, unit="connections"):
    """Horizontal bars of COUNTS {name: n}, with the even share and its
    tolerance band when given."""
    if not counts:
        return ""
    names = list(counts)
    top = max(list(counts.values()) + [even * (1 + (tolerance_pct or 0) / 100) if even else 0]) or 1
    label_w, bar_w, row_h = 90, 640, 22
    height = 28 + row_h * len(names) + 22
    x = lambda v: label_w + bar_w * v / top
    parts = ['<svg class="bars" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">'
             % (label_w + bar_w + 150, height, label_w + bar_w + 150, height, esc(title)),
             '<text x="0" y="16" font-size="13" font-weight="bold">%s</text>' % esc(title)]
    y0 = 28
    if even and tolerance_pct:
        lo, hi = even * (1 - tolerance_pct / 100), even * (1 + tolerance_pct / 100)
        parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#2ca02c" opacity="0.12"><title>tolerance '
                     '+-%s%%</title></rect>' % (x(lo), y0 - 4, x(hi) - x(lo), row_h * len(names) + 8, fmt(tolerance_pct)))
    for i, name in enumerate(names):
        v = counts[name]
        y = y0 + i * row_h
        dev = " (%+.1f%%)" % (100.0 * (v - even) / even) if even else ""
        parts.append('<text x="%d" y="%d" font-size="12" text-anchor="end">%s</text>' % (label_w - 6, y + 14, esc(name)))
        parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s %s%s</title></rect>'
                     % (label_w, y + 2, max(x(v) - label_w, 0.5), row_h - 6, PALETTE[i % len(PALETTE)], esc(name), v,
                        unit, dev))
        parts.append('<text x="%.1f" y="%d" font-size="11">%s%s</text>' % (x(v) + 5, y + 14, v, esc(dev)))
    if even:
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#333" stroke-dasharray="4 3"/>'
                     % (x(even), y0 - 6, x(even), y0 + row_h * len(names) + 4))
        parts.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">even share %s%s</text>'
                     % (x(even), height - 4, fmt(round(even, 1)),
                        " +-%s%%" % fmt(tolerance_pct) if tolerance_pct else ""))
    parts.append("</svg>")
    return "".join(parts)


def distribution_section(report):
    """Connections per backend and per LB node, from the distribution scenario."""
    d = report.get("distribution")
    head = '<section id="distribution-bars"><h2>Connections per backend and per LB node</h2>'
    if not isinstance(d, dict) or "per_backend" not in d:
        return head + "<p>The distribution scenario did not run (or has no counts): no bars.</p></section>"
    body = ["<p>%s short connections (IPv4 and IPv6). Per backend: the backend that answered; per LB node: the "
            "SYNs that took the node's Maglev ring (its new_flow counter). The band is the tolerance the "
            "scenario allows (%s binomial standard deviations).</p>" % (esc(d.get("connections")),
                                                                       esc(d.get("tolerance_sigmas")))]
    body.append(bars("Connections per backend", d["per_backend"], d.get("even_share_backend"),
                     d.get("tolerance_backend_pct")))
    body.append(bars("New flows per LB node", d.get("per_lb_node_syns") or {}, d.get("even_share_node"),
                     d.get("tolerance_node_pct"), unit="flows"))
    for fam, counts in sorted((d.get("per_backend_by_family") or {}).items()):
        share = sum(counts.values()) / len(counts) if counts else None
        body.append(bars("Connections per backend, %s" % fam, counts, share))
    return head + "".join(body) + "</section>"


# ---- a scenario ------------------------------------------------------------

def goals_table(result):
    """The scenario's goals: ok or MISS, value, target."""
    goals = result.get("goals") or []
    if not goals:
        return ""
    rows = "".join('<tr><td><span class="badge %s">%s</span></td><td>%s</td><td class="num">%s</td><td>%s</td></tr>'
                   % ("ok" if g.get("ok") else "miss", "ok" if g.get("ok") else "MISS", esc(g.get("goal")),
                      esc(fmt(g.get("value"))), esc(fmt(g.get("target")))) for g in goals)
    return '<table class="goals"><tr><th></th><th>goal</th><th>value</th><th>target</th></tr>%s</table>' % rows


def backend_counts(result, depth=0):
    """[(title, {backend: count})] of every *by_backend count in RESULT."""
    out = []
    for key, value in result.items():
        if key.endswith("by_backend") and isinstance(value, dict) and value:
            vals = {k: (v.get("connections") if isinstance(v, dict) else v) for k, v in value.items()}
            if all(isinstance(v, int) for v in vals.values()):
                out.append((key.replace("_", " "), vals))
        elif isinstance(value, dict) and depth < 2:
            out += [("%s: %s" % (key.replace("_", " "), t), c) for t, c in backend_counts(value, depth + 1)]
    return out


def numbers_table(result):
    """Every number of the scenario, one row per dotted key."""
    skip = {"goals", "name"}
    rows = "".join('<tr><th>%s</th><td>%s</td></tr>' % (esc(k), esc(fmt(v)))
                   for k, v in flatten({k: v for k, v in result.items() if k not in skip}))
    return '<details><summary>Every number of this scenario</summary><table class="numbers">%s</table></details>' % rows


def scenario_section(name, result, timeline):
    """One scenario: name, ok/MISS, numbers, goals, bars, timeline."""
    ok = bool(result.get("ok"))
    parts = ['<section class="scenario" id="scenario-%s" data-scenario="%s" data-ok="%s">'
             % (esc(name), esc(name), "true" if ok else "false"),
             '<h2>%s <span class="badge %s">%s</span></h2>' % (esc(name), "ok" if ok else "miss", "ok" if ok else "MISS")]
    if "error" in result:
        parts.append('<p class="error">%s</p>' % esc(result["error"]))
    line = analyze.key_numbers(name, result)
    if line:
        parts.append('<p class="key">%s</p>' % esc(line))
    parts.append(goals_table(result))
    for title, counts in backend_counts(result):
        parts.append(bars(title, counts))
    if timeline and has_series(timeline):
        parts.append("<h3>Timeline (%s s)</h3>" % esc(fmt(timeline.get("seconds"))))
        parts.append(timeline_svg(name, timeline))
        parts.append(actions_list(timeline))
        parts.append(events_table(timeline))
    else:
        parts.append('<p class="no-timeline">No timeline was recorded for this scenario.</p>')
    parts.append(numbers_table(result))
    parts.append("</section>")
    return "".join(parts)


def has_series(timeline):
    """The timeline has at least one series with two points."""
    return any(len(s.get("points") or []) >= 2 for p in timeline.get("panels") or [] for s in p.get("series") or [])


# ---- the timeline plot -----------------------------------------------------

class Axis:
    """Seconds since the scenario began -> x in the plot."""

    def __init__(self, seconds):
        self.t0 = 0.0
        self.t1 = max(seconds, 1.0)
        self.left, self.right = PLOT_LEFT, PLOT_WIDTH - PLOT_RIGHT

    def x(self, t):
        """The x coordinate of T seconds (clamped to the plot)."""
        t = min(max(t, self.t0), self.t1)
        return self.left + (self.right - self.left) * (t - self.t0) / (self.t1 - self.t0)

    def ticks(self):
        """Round seconds for the axis' ticks."""
        step = nice_step(self.t1 - self.t0, 10)
        n = int(self.t1 // step)
        return [i * step for i in range(n + 1)]


def path_of(points, axis, y_of, step):
    """SVG path data of one series; null values break the line."""
    out, pen_down, last_y = [], False, None
    for t, v in points:
        if v is None:
            pen_down = False
            continue
        x, y = axis.x(t), y_of(v)
        if not pen_down:
            out.append("M%.1f %.1f" % (x, y))
            pen_down = True
        elif step:
            out.append("H%.1f V%.1f" % (x, y))
        else:
            out.append("L%.1f %.1f" % (x, y))
        last_y = y
    return " ".join(out) if last_y is not None else ""


class Colours:
    """One colour per series key within a panel: a traffic file's alive and
    broken series share one. Panels list the traffic files in the same order,
    so a file has the same colour in each."""

    def __init__(self):
        self.by_key = {}

    def of(self, s):
        """The colour of series S."""
        key = s.get("key") or s["label"]
        if key not in self.by_key:
            self.by_key[key] = PALETTE[len(self.by_key) % len(PALETTE)]
        return self.by_key[key]


def legend_svg(items, top, axis):
    """A legend below a panel's title: (svg, height). ITEMS: (text, swatch
    svg at (x, y)) pairs, laid out in rows that fit the plot's width."""
    parts, x, row = [], axis.left, 0
    for text, swatch in items:
        width = 24 + 6.5 * len(text)
        if x + width > axis.right and x > axis.left:
            x, row = axis.left, row + 1
        y = top + 24 + row * LEGEND_ROW
        parts.append(swatch(x + 4, y))
        parts.append('<text x="%d" y="%d" font-size="11">%s</text>' % (x + 12, y + 4, esc(text)))
        x += width
    return "".join(parts), LEGEND_ROW * row


def line_swatch(colour, dashed=False):
    """A legend swatch for a series: a short thick line (two dashes for a dashed series)."""
    if dashed:
        return lambda x, y: ('<rect x="%.1f" y="%.1f" width="5" height="4" fill="%s"/><rect x="%.1f" y="%.1f" '
                             'width="5" height="4" fill="%s"/>' % (x - 6, y - 2, colour, x + 1, y - 2, colour))
    return lambda x, y: '<rect x="%.1f" y="%.1f" width="12" height="4" fill="%s"/>' % (x - 6, y - 2, colour)


def panel_svg(panel, top, axis):
    """One panel: title, legend, y axis, grid and every series: (svg, height)."""
    colours = Colours()
    values = [v for s in panel["series"] for _, v in s["points"] if v is not None]
    vmax = max(values) if values else 1
    step = nice_step(vmax, 3) if vmax > 0 else 1
    ymax = step * max(math.ceil(vmax / step), 1)
    legend, extra = legend_svg([(s["label"], line_swatch(colours.of(s), s.get("dashed"))) for s in panel["series"]],
                               top, axis)
    y1 = top + PANEL_HEAD + extra
    y0 = y1 + PANEL_HEIGHT
    y_of = lambda v: y0 - (y0 - y1) * v / ymax
    parts = ['<text x="%d" y="%d" font-size="12" font-weight="bold">%s</text>' % (axis.left, top + 13, esc(panel["title"])),
             legend,
             '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#bbb"/>'
             % (axis.left, y1, axis.right - axis.left, PANEL_HEIGHT)]
    for k in range(int(round(ymax / step)) + 1):
        v = k * step
        parts.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>' % (axis.left, y_of(v), axis.right, y_of(v)))
        parts.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>'
                     % (axis.left - 4, y_of(v) + 3, esc(fmt(v))))
    parts.append('<text x="12" y="%.1f" font-size="10" transform="rotate(-90 12 %.1f)" text-anchor="middle">%s</text>'
                 % ((y0 + y1) / 2, (y0 + y1) / 2, esc(panel.get("unit", ""))))
    for s in panel["series"]:
        d = path_of(s["points"], axis, y_of, s.get("step"))
        if d:
            parts.append('<path d="%s" fill="none" stroke="%s" stroke-width="1.6"%s><title>%s</title></path>'
                         % (d, colours.of(s), ' stroke-dasharray="5 3"' if s.get("dashed") else "", esc(s["label"])))
    return "".join(parts), PANEL_HEAD + extra + PANEL_HEIGHT + 8


def marker(shape, x, y, colour, title=None):
    """One event marker at (X, Y), with its hover text."""
    tip = "<title>%s</title>" % esc(title) if title else ""
    if shape == "square":
        return '<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s">%s</rect>' % (x - 4, y - 4, colour, tip)
    if shape == "bar":
        return '<rect x="%.1f" y="%.1f" width="2" height="14" fill="%s">%s</rect>' % (x - 1, y - 7, colour, tip)
    if shape == "circle":
        return '<circle cx="%.1f" cy="%.1f" r="4" fill="%s">%s</circle>' % (x, y, colour, tip)
    if shape == "cross":
        return ('<path d="M%.1f %.1f l8 8 m0 -8 l-8 8" stroke="%s" stroke-width="2" fill="none">%s</path>'
                % (x - 4, y - 4, colour, tip))
    shapes = {"down": "M%.1f %.1f l-5 -8 h10 z" % (x, y + 4), "up": "M%.1f %.1f l-5 8 h10 z" % (x, y - 4),
              "diamond": "M%.1f %.1f l5 5 l-5 5 l-5 -5 z" % (x, y - 5)}
    return '<path d="%s" fill="%s">%s</path>' % (shapes.get(shape, shapes["diamond"]), colour, tip)


def lanes_svg(timeline, top, axis):
    """The event lanes: one row per LB node and the router."""
    lanes = timeline.get("lanes") or []
    if not lanes:
        return "", 0
    parts = ['<text x="%d" y="%d" font-size="12" font-weight="bold">Events (hover a marker for its text)</text>'
             % (axis.left, top + 13)]
    kinds = sorted({e["kind"] for e in timeline.get("events") or []}, key=lambda k: list(EVENT_STYLE).index(k)
                   if k in EVENT_STYLE else 99)
    styles = [EVENT_STYLE.get(k, (k, "#555", "circle")) for k in kinds]
    legend, extra = legend_svg([(text, lambda x, y, c=colour, m=shape: marker(m, x, y, c))
                                for text, colour, shape in styles], top, axis)
    parts.append(legend)
    base = top + PANEL_HEAD + extra
    for i, lane in enumerate(lanes):
        y = base + i * LANE_HEIGHT + LANE_HEIGHT / 2
        parts.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>' % (axis.left - 4, y + 4, esc(lane)))
        parts.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>' % (axis.left, y, axis.right, y))
    index = {lane: i for i, lane in enumerate(lanes)}
    for e in timeline.get("events") or []:
        if e["lane"] not in index:
            continue
        text, colour, shape = EVENT_STYLE.get(e["kind"], (e["kind"], "#555", "circle"))
        y = base + index[e["lane"]] * LANE_HEIGHT + LANE_HEIGHT / 2
        parts.append(marker(shape, axis.x(e["t"]), y, colour,
                            "%s s, %s: %s" % (fmt(e["t"]), e["lane"], e.get("text") or text)))
    return "".join(parts), PANEL_HEAD + extra + LANE_HEIGHT * len(lanes) + 8


def timeline_svg(name, timeline):
    """The scenario's timeline: panels, event lanes, steps, time axis."""
    axis = Axis(timeline.get("seconds") or 0)
    body, y = [], 0
    for panel in timeline.get("panels") or []:
        if panel.get("series"):
            svg, h = panel_svg(panel, y, axis)
            body.append(svg)
            y += h
    svg, h = lanes_svg(timeline, y, axis)
    body.append(svg)
    y += h
    for i, a in enumerate(timeline.get("actions") or [], 1):
        x = axis.x(a["t"])
        body.append('<line x1="%.1f" y1="16" x2="%.1f" y2="%d" stroke="#555" stroke-dasharray="3 3"><title>%s s: %s</title>'
                    '</line>' % (x, x, y, esc(fmt(a["t"])), esc(a["text"])))
        body.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#555">%d</text>' % (x, y + 10, i))
    y += 12
    for t in axis.ticks():
        x = axis.x(t)
        body.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>' % (x, y, x, y + 4))
        body.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>' % (x, y + 15, esc(fmt(t))))
    body.append('<text x="%d" y="%d" font-size="10" text-anchor="end">seconds since the scenario began</text>'
                % (axis.right, y + 28))
    height = y + AXIS_HEIGHT + 4
    return ('<svg class="timeline" data-scenario="%s" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
            'aria-label="timeline of %s">%s</svg>' % (esc(name), PLOT_WIDTH, height, PLOT_WIDTH, height, esc(name),
                                                     "".join(body)))


def actions_list(timeline):
    """The numbered steps of the plot's vertical lines."""
    acts = timeline.get("actions") or []
    if not acts:
        return ""
    return '<ol class="actions">%s</ol>' % "".join("<li>%s s: %s</li>" % (esc(fmt(a["t"])), esc(a["text"])) for a in acts)


def events_table(timeline):
    """Every event of the lanes, as a table (folded)."""
    events = timeline.get("events") or []
    if not events:
        return ""
    rows = "".join('<tr><td class="num">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>'
                   % (esc(fmt(e["t"])), esc(e["lane"]), esc(EVENT_STYLE.get(e["kind"], (e["kind"],))[0]),
                      esc(e.get("text"))) for e in events)
    return ('<details><summary>%d events</summary><table class="events"><tr><th>s</th><th>where</th><th>kind</th>'
            '<th>what</th></tr>%s</table></details>' % (len(events), rows))


# ---- the page --------------------------------------------------------------

def page(report):
    """The whole HTML page of REPORT."""
    lab = report.get("lab") or {}
    names = scenario_names(report)
    timelines = report.get("timelines") or {}
    misses = [n for n in names if not report[n].get("ok")]
    title = "ecmp-lab report: %s LB nodes, %s backends%s" % (lab.get("lb_nodes", "?"), lab.get("backends", "?"),
                                                            " (quick)" if lab.get("quick") else "")
    nav = "".join('<li><a href="#scenario-%s">%s</a> <span class="badge %s">%s</span></li>'
                  % (esc(n), esc(n), "ok" if report[n].get("ok") else "miss", "ok" if report[n].get("ok") else "MISS")
                  for n in names)
    parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>%s</title><style>%s</style></head><body>" % (esc(title), CSS),
             "<header><h1>%s</h1>" % esc(title),
             "<p>%s</p>" % esc("Every scenario ok." if not misses else "MISS: " + ", ".join(misses)),
             settings_cards(lab, report, names), "</header>",
             '<nav><h2>Scenarios</h2><ul>%s</ul></nav>' % nav,
             '<section id="settings"><h2>Lab settings</h2>%s</section>' % settings_tables(lab),
             distribution_section(report)]
    parts += [scenario_section(n, report[n], timelines.get(n)) for n in names]
    parts.append("<footer>Written by ecmp-lab/report_html.py from the lab's JSON report, %s.</footer></body></html>\n"
                 % esc(time.strftime("%Y-%m-%d %H:%M:%S")))
    return "".join(parts)


def main():
    """Read the JSON report, write the page."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--report", required=True, help="the JSON report (analyze.py report --out)")
    p.add_argument("--out", required=True, help="the HTML file to write")
    a = p.parse_args()
    with open(a.report) as f:
        report = json.load(f)
    text = page(report)
    with open(a.out + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
