#!/usr/bin/env python3
"""Checks of the Grafana dashboard and the Prometheus rules against a real agent.

Used by Tests/observability/run.sh; each verb prints what it checked and exits
non-zero with one line per problem:

  promql.py names SCRAPE EXPRS          every metric, label and label value the
                                        expressions use exists in the scrape
  promql.py dashboard DASHBOARD         the JSON model: datasource variable,
                                        template variables, panels, unique ids
  promql.py exprs DASHBOARD             the dashboard's expressions as JSON lines
                                        {"where", "expr", "live"} (live: Grafana's
                                        variables replaced, ready for Prometheus)
  promql.py as-rules EXPRS OUT          those as a rules file for promtool check rules
  promql.py rules EXPRS_OUT RULES_JSON  lint of the loaded rules (GET /api/v1/rules):
                                        severity, summary/description naming the
                                        object, no evaluation error; writes their
                                        expressions as EXPRS_OUT
  promql.py coverage RULES_JSON TESTS   every alert has a unit test where it fires
                                        and one where it stays silent
  promql.py live EXPRS URL              every expression returns data from Prometheus
  promql.py alerts RULES_URL EXPECTED   the alerts pending or firing are exactly
                                        EXPECTED: "Name{label=value,...}" items
                                        separated by ";" (empty: none)

An EXPRS file holds one JSON object per line with "where" and "expr".
"""
import json
import re
import sys
import urllib.parse
import urllib.request

# Names Prometheus makes itself (per target): no agent exports them.
EXEMPT = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Grafana's variables, as the suite's Prometheus sees them (scrape interval 1 s).
GRAFANA_VARS = {"__rate_interval": "5s", "__interval": "2s", "__range": "1m", "job": "xdplb", "instance": ".*", "vip": ".*"}


def scrape(path):
    """{metric name: [label dicts]} from a text exposition."""
    series = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+", line)
        if not m:
            raise SystemExit(f"{path}: cannot parse line: {line}")
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        series.setdefault(m.group(1), []).append(labels)
    return series


def parse(expr):
    """The selectors and grouping labels of a PromQL expression.

    Returns (selectors, grouping, created): selectors are (metric or None,
    [(label, op, value)]); grouping the label names of by/without/on/ignoring/
    group_left/group_right; created the labels count_values makes.
    """
    selectors, grouping = [], []
    created = re.findall(r'count_values\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(\s*"([^"]+)"', expr)
    i, n, last_metric = 0, len(expr), None

    def string_at(j):
        q = expr[j]
        k = j + 1
        while k < n and expr[k] != q:
            k += 2 if expr[k] == "\\" else 1
        return expr[j + 1:k], k + 1

    def skip_ws(j):
        while j < n and expr[j].isspace():
            j += 1
        return j

    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
        elif c in "\"'`":
            _, i = string_at(i)
            last_metric = None
        elif c == "$":  # a Grafana variable: $name or ${name}
            i += 1
            if i < n and expr[i] == "{":
                i = expr.index("}", i) + 1
            else:
                while i < n and (expr[i].isalnum() or expr[i] == "_"):
                    i += 1
        elif c == "[":
            i = expr.index("]", i) + 1
        elif c == "{":
            end = i + 1
            matchers = []
            while True:
                end = skip_ws(end)
                if expr[end] == "}":
                    break
                m = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*").match(expr, end)
                if not m:
                    raise ValueError(f"cannot parse matchers at: {expr[end:end + 30]!r}")
                value, end = string_at(skip_ws(m.end()))
                matchers.append((m.group(1), m.group(2), value))
                end = skip_ws(end)
                if expr[end] == ",":
                    end += 1
            if last_metric is not None:  # name{...}: the matchers belong to the name just read
                selectors[-1] = (last_metric, matchers)
            else:
                selectors.append((None, matchers))
            last_metric = None
            i = end + 1
        elif c.isalpha() or c in "_:":
            m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(expr, i)
            word, i = m.group(0), m.end()
            j = skip_ws(i)
            follows_paren = j < n and expr[j] == "("
            if word in GROUPING:
                if follows_paren:
                    k = expr.index(")", j)
                    grouping += [w.strip() for w in expr[j + 1:k].split(",") if w.strip()]
                    i = k + 1
            elif word.lower() in KEYWORDS or word in AGGREGATIONS or follows_paren:
                pass  # a keyword, an aggregation (its by/without may come first) or a function
            else:
                selectors.append((word, []))
                last_metric = word
                continue
            last_metric = None
        else:
            if c.isdigit() or c == ".":  # numbers and durations (5m, 1e3)
                while i < n and (expr[i].isalnum() or expr[i] in "._"):
                    i += 1
            else:
                i += 1
            last_metric = None
    return selectors, grouping, created


def matches(op, want, have):
    if op == "=":
        return have == want
    if op == "=~":
        return re.fullmatch(want, have) is not None
    return True  # != and !~ select by absence: nothing to prove


def check_names(series, where, expr):
    """Problems with one expression against the scrape."""
    problems = []
    try:
        selectors, grouping, created = parse(expr)
    except (ValueError, IndexError) as e:
        return [f"{where}: {e}"], set()
    names, labels_in_expr, missing = set(), set(TARGET_LABELS) | set(created), False
    for metric, matchers in selectors:
        if metric is None:
            problems.append(f"{where}: a selector without a metric name: {matchers}")
            continue
        names.add(metric)
        if metric in EXEMPT:
            continue
        if not metric.startswith("xdplb_"):
            problems.append(f"{where}: {metric} is neither an xdplb_* metric nor one Prometheus makes")
            continue
        if metric not in series:
            problems.append(f"{where}: {metric} is not in the agent's /metrics")
            missing = True
            continue
        have = series[metric]
        labels_in_expr |= {k for s in have for k in s}
        for label, op, value in matchers:
            if label in TARGET_LABELS:
                continue
            if not any(label in s for s in have):
                problems.append(f"{where}: {metric} has no label {label} (it has {sorted({k for s in have for k in s})})")
            elif "$" not in value and not any(matches(op, value, s.get(label, "")) for s in have):
                values = sorted({s[label] for s in have if label in s})
                problems.append(f'{where}: no series {metric}{{{label}{op}"{value}"}} (values: {values})')
    for label in sorted(set(grouping)) if not missing else []:  # a missing metric's labels are unknown
        if label not in labels_in_expr:
            problems.append(f"{where}: groups by {label}, a label none of its metrics has")
    return problems, names


def read_exprs(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])  # collapsed rows hold theirs


def grafana_live(expr):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?", lambda m: GRAFANA_VARS.get(m.group(1), m.group(0)), expr)


def dashboard_exprs(dashboard):
    out = []
    for p in panels(dashboard):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append({"where": f"panel '{p.get('title')}' {t.get('refId', '')}", "expr": t["expr"], "live": grafana_live(t["expr"])})
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q  # Grafana 10 may save {query, refId}
        m = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)\s*", q)
        if not m:
            raise SystemExit(f"variable {v.get('name')}: not a label_values(SELECTOR, LABEL) query: {q}")
        # label_values(S, L) is the values of L among the series S selects.
        out.append({"where": f"variable {v['name']}", "expr": m.group(1), "live": f"count by ({m.group(2)}) ({grafana_live(m.group(1))})",
                    "label": m.group(2)})
    return out


def lint_dashboard(d):
    problems = []
    if not 36 <= d.get("schemaVersion", 0) <= 41:
        problems.append(f"schemaVersion {d.get('schemaVersion')}: want a Grafana 10/11 model (36..41)")
    for key in ("uid", "title"):
        if not d.get(key):
            problems.append(f"no {key}")
    variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no datasource variable 'datasource' of type prometheus")
    for name in ("job", "instance", "vip"):
        v = variables.get(name)
        if not v:
            problems.append(f"no template variable {name}")
        elif v.get("type") != "query" or v.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"variable {name}: want a query variable on ${{datasource}}")
    ids, count, cells = set(), 0, {}
    for p in panels(d):
        count += 1
        where = f"panel '{p.get('title')}'"
        if p.get("id") in ids:
            problems.append(f"{where}: id {p.get('id')} used twice")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(k in g for k in "hwxy"):
            problems.append(f"{where}: no gridPos")
            continue
        if g["x"] + g["w"] > 24:
            problems.append(f"{where}: wider than the 24-column grid")
        for cell in ((x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])):
            if cell in cells:
                problems.append(f"{where}: overlaps panel '{cells[cell]}'")
                break
            cells[cell] = p.get("title")
        if p.get("type") == "row":
            continue
        if p.get("type") not in ("timeseries", "stat"):
            problems.append(f"{where}: type {p.get('type')}")
        if p.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            problems.append(f"{where}: datasource {p.get('datasource')}, not ${{datasource}}")
        if not p.get("targets"):
            problems.append(f"{where}: no query")
        for t in p.get("targets", []):
            if not t.get("expr") or not t.get("refId"):
                problems.append(f"{where}: a target without expr or refId")
            elif t.get("datasource", p["datasource"]) != p["datasource"]:
                problems.append(f"{where}: target {t['refId']} on another datasource")
    return problems, count


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"{url}: {body}")
    return body["data"]


def main(argv):
    verb, args = argv[1], argv[2:]
    problems = []
    if verb == "names":
        series = scrape(args[0])
        used = set()
        exprs = read_exprs(args[1])
        for e in exprs:
            p, names = check_names(series, e["where"], e["expr"])
            problems += p
            used |= names
        print(f"{len(exprs)} expressions, metrics used: {' '.join(sorted(used))}")
    elif verb == "dashboard":
        problems, count = lint_dashboard(json.load(open(args[0])))
        print(f"{count} panels")
    elif verb == "exprs":
        for e in dashboard_exprs(json.load(open(args[0]))):
            print(json.dumps(e))
    elif verb == "as-rules":
        rules = [{"record": f"xdplb:dashboard:{i}", "expr": e["live"]} for i, e in enumerate(read_exprs(args[0]))]
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(args[1], "w"), indent=1)
    elif verb == "rules":
        out = open(args[0], "w")
        groups = json.load(open(args[1]))["data"]["groups"]
        alerts = [r for g in groups for r in g["rules"] if r["type"] == "alerting"]
        for r in alerts:
            where = f"alert {r['name']}"
            out.write(json.dumps({"where": where, "expr": r["query"]}) + "\n")
            if r["labels"].get("severity") not in ("critical", "warning", "info"):
                problems.append(f"{where}: severity {r['labels'].get('severity')}")
            for a in ("summary", "description"):
                text = r["annotations"].get(a, "")
                if not re.search(r"\{\{ \$labels\.(instance|vip|backend) \}\}", text):
                    problems.append(f"{where}: {a} names no instance, VIP or backend: {text!r}")
            if r.get("health") != "ok":
                problems.append(f"{where}: health {r.get('health')}: {r.get('lastError')}")
        print(f"{len(alerts)} alerts: {' '.join(r['name'] for r in alerts)}")
    elif verb == "coverage":
        groups = json.load(open(args[0]))["data"]["groups"]
        names = [r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"]
        text = open(args[1]).read()
        fires, silent = set(), set()
        # Each alert_rule_test names its alert before its exp_alerts (flow or block style).
        for m in re.finditer(r"alertname:\s*(\w+)[\s,]+exp_alerts:\s*(\[\s*\])?", text):
            (silent if m.group(2) else fires).add(m.group(1))
        for name in names:
            if name not in fires:
                problems.append(f"{name}: no test where it fires")
            if name not in silent:
                problems.append(f"{name}: no test where it stays silent")
        for name in (fires | silent) - set(names):
            problems.append(f"{name}: tested but not a rule")
        print(f"{len(names)} alerts, each tested firing and silent: {not problems}")
    elif verb == "live":
        base = args[1]
        exprs = read_exprs(args[0])
        for e in exprs:
            data = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": e["live"]}))
            result = data["result"]
            if not result:
                problems.append(f"{e['where']}: no data for {e['live']}")
            elif "label" in e and not all(r["metric"].get(e["label"]) for r in result):
                problems.append(f"{e['where']}: series without {e['label']}: {result}")
        print(f"{len(exprs)} queries, {len(exprs) - len(problems)} answered with data")
    elif verb == "alerts":
        data = get(args[0])
        got = set()
        for g in data["groups"]:
            for r in g["rules"]:
                if r["type"] != "alerting":
                    continue
                if r.get("health") != "ok":
                    problems.append(f"alert {r['name']}: health {r.get('health')}: {r.get('lastError')}")
                for a in r.get("alerts", []):
                    keep = {k: v for k, v in a["labels"].items() if k not in ("alertname", "severity", "job", "instance")}
                    got.add(r["name"] + "{" + ",".join(f"{k}={v}" for k, v in sorted(keep.items())) + "}")
        want = {w.strip() for w in args[1].split(";") if w.strip()}
        for w in sorted(want - got):
            problems.append(f"not pending or firing: {w}")
        for g in sorted(got - want):
            problems.append(f"pending or firing, but should not: {g}")
        print(f"pending or firing: {'; '.join(sorted(got)) or 'none'}")
    else:
        raise SystemExit(__doc__)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
