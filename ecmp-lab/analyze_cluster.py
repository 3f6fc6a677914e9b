"""Numbers of the lab's cluster scenarios (cluster_push, bad_push); used by analyze.py, stdlib only.

Each scenario directory holds meta.tsv, the JSON `xdplb cluster push --json`
and `xdplb cluster status --json` printed (TAG.json, TAG-cluster.json), the
pollers' results (TAG-N: seconds from TAG.t until node N reached the state,
TAG-N.rev: the revision it ran then), snapshots of every node's status and
stats, and the traffic client's JSON.
"""
import os
import re

import analyze as A


def node_times(d, tag):
    """{lbN: seconds or None (timed out)} from the pollers' TAG-N files."""
    out = {}
    for name in os.listdir(d):
        mm = re.fullmatch(re.escape(tag) + r"-(\d+)", name)
        if mm:
            v = open(os.path.join(d, name)).read().strip()
            out["lb" + mm.group(1)] = float(v) if v not in ("timeout", "") else None
    return dict(sorted(out.items(), key=lambda kv: A.natural(kv[0])))


def node_revisions(d, tag):
    out = {}
    for name in os.listdir(d):
        mm = re.fullmatch(re.escape(tag) + r"-(\d+)\.rev", name)
        if mm:
            out["lb" + mm.group(1)] = int(open(os.path.join(d, name)).read().strip())
    return dict(sorted(out.items(), key=lambda kv: A.natural(kv[0])))


def load_or(d, name, default=None):
    try:
        return A.load(os.path.join(d, name))
    except (OSError, ValueError):
        return default


def cluster_view(d, tag):
    """What `xdplb cluster status --json` said after TAG: exit, agreed, per node revision and digests."""
    c = load_or(d, tag + "-cluster.json", {}) or {}
    rows = c.get("rows") or []
    digests = [r.get("digests") or {} for r in rows]
    return {
        "exit": None,
        "agreed": c.get("agreed"),
        "config_revision": c.get("configRevision", c.get("config_revision")),
        "nodes": {r.get("node"): {"lease": r.get("lease"), "revision": r.get("revision"),
                                  "problems": r.get("problems") or []} for r in rows},
        "vips": len(c.get("vips") or []),
        "digests_equal": bool(rows) and all(x == digests[0] for x in digests) and bool(digests[0]),
    }


def push(d, m, tag):
    """One push: the command's result, every node's time to it, the cluster's view after."""
    p = load_or(d, tag + ".json", {}) or {}
    times = node_times(d, tag)
    revs = node_revisions(d, tag)
    view = cluster_view(d, tag)
    view["exit"] = m.get(tag + "_status_rc")
    rev = p.get("revision")
    return {
        "exit": m.get(tag + "_rc"), "revision_before": m.get(tag + "_before"), "revision": rev,
        "converged": p.get("converged"),
        "converge_ms": round(p["converge_ms"], 1) if isinstance(p.get("converge_ms"), (int, float)) else None,
        "command_s": m.get(tag + "_command_s"),
        "vips": p.get("vips"), "backends": p.get("backends"),
        "node_seconds": times, "max_node_seconds": A.worst(times),
        "node_revisions": revs,
        "every_node_on_revision": bool(revs) and rev is not None and all(r == rev for r in revs.values())
        and len(revs) == len(times),
        "expected_digests": load_or(d, tag + ".digests"),
        "cluster_status": view,
    }


def cluster_push(d, m, out):
    goal_s = float(m.get("goal_s", 1))
    pushes = {t: push(d, m, t) for t in ("half", "full")}
    big = {t: push(d, m, t) for t in ("big", "big_back") if (t + "_rc") in m}
    res = {"lb_nodes": m.get("lb_nodes"), "backends": m.get("backends"), "goal_s": goal_s,
           "weight_change": pushes["half"], "weight_back": pushes["full"]}
    worst = [p["max_node_seconds"] for p in pushes.values()]
    res["max_push_to_every_node_s"] = None if None in worst else max(worst)
    for t, p in pushes.items():
        A.say("push %s (revision %s -> %s, exit %s): every node runs it with the expected digests after %s s (%s); "
              "push --wait: converged %s in %s ms, command %s s; cluster status exit %s",
              "be1 weight 50" if t == "half" else "weights back to 100", p["revision_before"], p["revision"], p["exit"],
              p["max_node_seconds"], "  ".join("%s %s" % kv for kv in p["node_seconds"].items()),
              p["converged"], p["converge_ms"], p["command_s"], p["cluster_status"]["exit"])
    goals = []
    for t, p in pushes.items():
        goals += [
            goal("push %s: every node runs the new revision with the offline digests (s)" % t,
                 p["exit"] == 0 and p["every_node_on_revision"] and p["max_node_seconds"] is not None
                 and p["max_node_seconds"] < goal_s, p["max_node_seconds"], "< %g on %s nodes" % (goal_s, m.get("lb_nodes"))),
            goal("push %s: xdplb cluster status agrees (exit)" % t, p["cluster_status"]["exit"] == 0,
                 p["cluster_status"]["exit"], 0),
        ]
    if big:
        res["big"] = {"vips": m.get("big_vips"), "backends_per_vip": m.get("big_backends_per_vip"), **big["big"]}
        res["big_back"] = big["big_back"]
        for t, p in big.items():
            A.say("push %s (revision %s, %s VIPs, %s distinct backends, exit %s): converged %s, every node's report "
                  "in etcd names it %s ms after the write (command %s s); cluster status exit %s, digests equal on "
                  "every node %s", "100 VIPs x 100 backends" if t == "big" else "back to the lab's 4 VIPs",
                  p["revision"], p["vips"], p["backends"], p["exit"], p["converged"], p["converge_ms"],
                  p["command_s"], p["cluster_status"]["exit"], p["cluster_status"]["digests_equal"])
            goals.append(goal("push %s: converged on every node, same digests, status agrees" % t,
                              p["exit"] == 0 and p["converged"] is True and p["cluster_status"]["exit"] == 0
                              and p["cluster_status"]["digests_equal"],
                              "%s ms" % p["converge_ms"], "converged (time reported)"))
    return A.finish("cluster_push", res, goals, out)


goal = A.goal


def node_views(status):
    """{lbN: (revision, refused_revision, refused_error, {vip: digest})} from a status snapshot."""
    out = {}
    for n, s in sorted(status.items(), key=lambda kv: int(kv[0])):
        c = s.get("cluster") or {}
        out["lb" + n] = {"revision": c.get("revision"), "refused_revision": c.get("refused_revision"),
                         "refused_error": c.get("refused_error"), "etcd_reachable": c.get("etcd_reachable"),
                         "health": c.get("health"), "health_consensus": c.get("health_consensus"),
                         "digests": {v["name"]: v["digest"] for v in s.get("vips", [])}}
    return out


def bad_push(d, m, out):
    ls, _ = A.long_summary(os.path.join(d, "long.json"))
    short = A.short_summary(os.path.join(d, "short.json"))
    v0 = node_views(A.load(os.path.join(d, "status0.json")))
    vr = node_views(A.load(os.path.join(d, "status_refused.json")))
    vg = node_views(A.load(os.path.join(d, "status_good.json")))
    delta = A.stats_delta(A.load(os.path.join(d, "stats0.json")), A.load(os.path.join(d, "stats1.json")))
    lb_drops = sum(A.drops(v) for v in delta.values())
    r0, bad = m.get("revision_before"), m.get("bad_revision")
    refused = node_times(d, "refused")
    digests_kept = set(v0) == set(vr) and all(vr[n]["digests"] == v0[n]["digests"] for n in v0)
    kept_revision = bool(vr) and all(vr[n]["revision"] == r0 for n in vr)
    refused_all = bool(vr) and all(x["refused_revision"] == bad for x in vr.values())
    names_key = all("ring_size" in (x["refused_error"] or "") for x in vr.values())
    good = push(d, m, "good")
    good["cluster_status"]["exit"] = m.get("status_good_rc")
    cleared = bool(vg) and all(x["refused_revision"] is None and x["revision"] == good["revision"] for x in vg.values())
    res = {
        "revision_before": r0,
        "cli": {"exit": m.get("cli_rc"), "says_nothing_was_written": m.get("cli_says_nothing_written", 0) > 0,
                "names_the_key": m.get("cli_names_key", 0) > 0, "revision_after": m.get("revision_after_cli")},
        "etcdctl_put": {"revision": bad, "refused_by_every_node": refused_all, "refusal_names_ring_size": names_key,
                        "seconds_to_refused": refused, "max_seconds_to_refused": A.worst(refused),
                        "revision_kept": kept_revision, "digests_kept": digests_kept,
                        "cluster_status_exit": m.get("status_refused_rc"),
                        "nodes": {n: {k: x[k] for k in ("revision", "refused_revision", "refused_error")} for n, x in vr.items()}},
        "short_while_refused": short,
        "good_push": good, "refusals_cleared": cleared,
        "long_lived": ls, "lb_drops": lb_drops,
    }
    A.say("invalid file: xdplb cluster push exit %s (names vips[0].ring_size: %s, says nothing was written: %s); "
          "etcd's config revision %s -> %s", m.get("cli_rc"), res["cli"]["names_the_key"],
          res["cli"]["says_nothing_was_written"], r0, m.get("revision_after_cli"))
    A.say("the same text put with etcdctl (revision %s): refused by every node %s after %s s (%s); each kept revision %s: %s, "
          "digests unchanged: %s; cluster status exit %s", bad, refused_all, A.worst(refused),
          "  ".join("%s %s" % kv for kv in refused.items()), r0, kept_revision, digests_kept, m.get("status_refused_rc"))
    A.say("while refused: %d short connections, %d failed; then a good push (revision %s, exit %s): every node after %s s, "
          "refusals cleared %s, cluster status exit %s", short["connections"], short["failed"], good["revision"],
          good["exit"], good["max_node_seconds"], cleared, m.get("status_good_rc"))
    A.say("long-lived: %d connections, %d broken; LB drops %d", ls["connections"], ls["broken"], lb_drops)
    goals = [
        goal("invalid push refused: exit 2, revision unchanged",
             m.get("cli_rc") == 2 and m.get("revision_after_cli") == r0 and res["cli"]["says_nothing_was_written"],
             "exit %s, revision %s -> %s" % (m.get("cli_rc"), r0, m.get("revision_after_cli")), "exit 2, unchanged"),
        goal("bad value in etcd refused by every node (refused_revision)", refused_all and names_key,
             ",".join(str(x["refused_revision"]) for x in vr.values()), bad),
        goal("old config kept: revision and digests unchanged on every node", kept_revision and digests_kept,
             kept_revision and digests_kept, True),
        goal("cluster status flags the refusal (exit)", m.get("status_refused_rc") == 1, m.get("status_refused_rc"), 1),
        goal("short connections failed while refused", short["failed"] == 0 and short["connections"] > 0,
             short["failed"], 0),
        goal("good push converges, refusals cleared, status agrees",
             good["exit"] == 0 and good["every_node_on_revision"] and cleared and m.get("status_good_rc") == 0,
             "exit %s, every node %s s" % (good["exit"], good["max_node_seconds"]), "exit 0, all, status 0"),
        goal("broken long-lived connections", ls["broken"] == 0, ls["broken"], 0),
    ]
    return A.finish("bad_push", res, goals, out)


def key_numbers(name, r):
    if name == "cluster_push":
        s = "push -> every node (offline digests): %s s / %s s (goal < %g s, %s nodes); --wait %s / %s ms" % (
            r["weight_change"]["max_node_seconds"], r["weight_back"]["max_node_seconds"], r["goal_s"], r["lb_nodes"],
            r["weight_change"]["converge_ms"], r["weight_back"]["converge_ms"])
        if "big" in r:
            s += "; 100 VIPs x 100 backends: %s ms (back: %s ms), digests equal %s" % (
                r["big"]["converge_ms"], r["big_back"]["converge_ms"], r["big"]["cluster_status"]["digests_equal"])
        return s
    if name == "bad_push":
        e = r["etcdctl_put"]
        return ("push of an invalid file: exit %s, revision %s -> %s; etcdctl put (rev %s) refused by every node %s in %s s, "
                "old revision/digests kept %s; %d/%d short failed; good push %s s; %d broken") % (
            r["cli"]["exit"], r["revision_before"], r["cli"]["revision_after"], e["revision"], e["refused_by_every_node"],
            e["max_seconds_to_refused"], e["revision_kept"] and e["digests_kept"], r["short_while_refused"]["failed"],
            r["short_while_refused"]["connections"], r["good_push"]["max_node_seconds"], r["long_lived"]["broken"])
    return None


SCENARIOS = {"cluster_push": cluster_push, "bad_push": bad_push}
WITH_ROUTES = set()
