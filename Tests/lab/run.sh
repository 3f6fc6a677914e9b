#!/usr/bin/env bash
# Tests/lab/run.sh — the reduced ecmp-lab end to end, and its outcomes.
#
# Runs `ecmp-lab/run --quick --lb-nodes 2 --backends 2 --report FILE` with the
# given xdplb binary (2 LB nodes announcing the VIPs over BGP — bird2 on the
# router and on each node, eBGP + BFD, the router's ECMP routes learned from
# BGP only —, 2 backends + 1 that joins, native XDP, GRE decap in BPF, real
# HTTP and echo servers, a three-member etcd cluster the agents take their
# VIPs, backends and agreed health from) and asserts on the JSON report:
#   setup            the lab's one `xdplb cluster push --wait` converged on
#                    both nodes
#   distribution     no failed connection; every backend and every LB node
#                    within 4 standard deviations of an even share (800
#                    connections over 2: ±14.1%); the same ring digest on both
#   node_failure     a node silently cut off: the router's ECMP set loses it
#                    (BFD) and gets it back after the restore, seen in its route
#                    history; 0 broken long-lived connections; flows really moved
#   node_drain       xdplb node drain, then the node stopped: the router's ECMP
#                    set loses it; 0 broken, 0 client retransmits, 0 LB drops,
#                    no VIP packet reached it after its traffic stopped
#   node_join        the node starts again: the router's ECMP set gets it back;
#                    no announcement before its health converged; 0 broken
#   backend_failure  removed from both nodes' rings within fall x interval +
#                    timeout + 1.5 s + 1.5 s for the agreed health through
#                    etcd (measured without a cluster: release 1.6 s, debug
#                    1.6-2.6 s; with it, debug: 2.3-3.1 s);
#                    0 broken connections to the other backends; no new
#                    connection to it, none failed; cluster status agrees
#                    after the removal (every node has the same tables)
#   flood            a spoofed SYN flood (ecmp-lab/flood.py, sources only in
#                    the lab-only 198.18.0.0/16, blackholed at the router) and
#                    one abusive source (hping3), twice: protection off, then
#                    per-source limits on (node files + xdplb reload). Both
#                    rounds: the flood reached the LB nodes, 0 of the
#                    long-lived connections broke (a backend joined mid-flood),
#                    no short connection failed, the established flows stayed
#                    in conntrack (established >= long-lived connections, and
#                    on no node fewer after the flood than before), no
#                    TCP segment reached the attacker. Off: the flood sat in
#                    conntrack as embryonic flows, no protection drops, the
#                    abusive source got everything through. On: the abusive
#                    source cut (dropped > 0, counted as drop_rate_src_syn or
#                    _pps; delivered <= nodes x (rate x seconds + burst)) and
#                    no drop on the real client's VIPs; protection off again
#   backend_added    changed fraction within ±25% of Maglev's 1/(M+1);
#                    0 broken established connections
#   agent_restart    0 broken/failed connections, 0 LB drops, program adopted,
#                    0 changes of the router's VIP routes (route history)
#   drain            no new connection to the drained backend; all its
#                    established connections finished (drained by a push)
#   cluster_push     two pushes: each exits 0 with a revision above the old
#                    one, both nodes run exactly that revision with the digests
#                    `xdplb maglev` computes offline, `xdplb cluster status`
#                    exits 0; the times are printed (goal < 1 s: the lab
#                    report says ok or MISS; not asserted)
#   bad_push         an invalid file: exit 2, "nothing was written", etcd's
#                    revision unchanged; the same text put with etcdctl: both
#                    nodes refuse exactly that revision (naming ring_size),
#                    keep the old revision and digests, cluster status exits 1,
#                    no short connection fails; a good push converges and
#                    clears the refusals (status exit 0); 0 broken
#   html             the lab's --html report, opened in headless Chromium
#                    (Debian's chromium, installed without its recommendations
#                    when missing; run in a network namespace of its own with
#                    only lo, down, on a file:// URL, killed after 60 s): the
#                    rendered DOM (--dump-dom) has a section for every scenario
#                    of the JSON report, ok/MISS as the report says, a timeline
#                    plot (svg) in each whose timeline has series, the settings
#                    and the distribution's bars; a screenshot (--screenshot)
#                    is a PNG of the window's size that is not blank
#                    (Tests/lab/check_html.py)
# Needs root. Fixed lab names (xl-*): fails if a lab is already up.
# Usage: Tests/lab/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
umask 022
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[ $# = 1 ] || { echo "usage: Tests/lab/run.sh PATH/TO/xdplb" >&2; exit 2; }
XDPLB=$(readlink -f "$1")
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() {
	echo "lab: $pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit
}

if [ "$(id -u)" != 0 ]; then
	if [ "${CI:-}" = true ]; then bad "needs root (CI=true: not skipping)"; else echo "SKIP lab: needs root"; fi
	finish
fi
[ -x "$XDPLB" ] || { bad "no xdplb binary at $1"; finish; }

tmp=$(mktemp -d /tmp/xdplb-lab-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
report=$tmp/report.json
html=$tmp/report.html

start=$(date +%s)
rc=0
XDPLB=$XDPLB timeout 420 "$root/ecmp-lab/run" --quick --lb-nodes 2 --backends 2 --report "$report" --html "$html" >"$tmp/lab.log" 2>&1 || rc=$?
secs=$(($(date +%s) - start))
# The lab's own summary: one line per scenario.
sed -n '/^==== ecmp-lab report/,/^\[lab/p' "$tmp/lab.log" | grep -v '^\[lab' | sed 's/^/    /'
if [ -s "$report" ]; then
	ok "lab ran with 2 LB nodes and 2 backends in ${secs}s (exit $rc) and wrote its report"
else
	bad "lab ran and wrote its report (exit $rc after ${secs}s)"
	tail -n 40 "$tmp/lab.log" | sed 's/^/    /'
	finish
fi
[ "$rc" = 0 ] || tail -n 60 "$tmp/lab.log" | sed 's/^/    /'
if ip netns list | grep -q '^xl-'; then bad "lab removed its namespaces"; else ok "lab removed its namespaces"; fi

# check NAME PYTHON-EXPR: the expression over the report `r` must be true;
# the message shows the numbers it looked at.
check() {
	local name=$1 expr=$2 out
	if out=$(python3 - "$report" "$expr" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
expr = sys.argv[2]
try:
    ok = eval(expr, {"r": r, "abs": abs, "all": all, "sum": sum})
except Exception as e:          # a missing key is a failure, shown
    print("error: %s: %s" % (type(e).__name__, e)); sys.exit(1)
sys.exit(0 if ok else 1)
PY
	); then ok "$name"; else bad "$name"; [ -z "$out" ] || echo "    $out"; fi
}
num() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($1)" "$report" 2>/dev/null || echo '?'; }

d=distribution
check "distribution: $(num r[\'$d\'][\'connections\']) short connections, none failed" "r['$d']['failed'] == 0 and r['$d']['connections'] >= 500"
# Tolerance: 4 standard deviations of a fair random split of n flows over k
# buckets, 400 x sqrt((1-1/k)/(n/k)) % (800 connections over 2: ±14.1%); it
# must come out at most 20%, or the lab sent too few connections to tell.
check "distribution: every backend within $(num r[\'$d\'][\'tolerance_backend_pct\'])% (4 sigma) of an even share (max $(num r[\'$d\'][\'max_backend_deviation_pct\'])%)" \
	"r['$d']['max_backend_deviation_pct'] <= r['$d']['tolerance_backend_pct'] <= 20"
check "distribution: every LB node within $(num r[\'$d\'][\'tolerance_node_pct\'])% (4 sigma) of an even share (max $(num r[\'$d\'][\'max_node_deviation_pct\'])%)" \
	"r['$d']['max_node_deviation_pct'] <= r['$d']['tolerance_node_pct'] <= 20"
check "distribution: the same Maglev ring digest on every node" "r['$d']['digests_equal'] is True"

d=node_failure
check "node_failure: the router's ECMP set lost the cut node ($(num r[\'$d\'][\'detection_to_new_ecmp_s\'])s, BFD $(num r[\'$d\'][\'bfd\'])) and got it back after the restore" \
	"r['$d']['route_before'] == '1 2' and r['$d']['route_during'] == '1' and r['$d']['route_after'] == '1 2' and r['$d']['detection_to_new_ecmp_s'] is not None and r['$d']['rejoin_to_ecmp_s'] is not None"
check "node_failure: 0 of $(num r[\'$d\'][\'long_lived\'][\'connections\']) long-lived connections broke ($(num r[\'$d\'][\'flows_moved_to_other_nodes_ct_miss\']) flows moved node; lost: $(num r[\'$d\'][\'packets_lost_router_into_cut\']) packets into the cut, $(num r[\'$d\'][\'client_tcp_retransmits_failure\']) retransmits)" \
	"r['$d']['long_lived']['broken'] == 0 and r['$d']['long_lived']['connected'] == r['$d']['long_lived']['connections'] and r['$d']['flows_moved_to_other_nodes_ct_miss'] > 0"

d=node_drain
check "node_drain: the router's ECMP set lost the drained node ($(num r[\'$d\'][\'drain_to_new_ecmp_s\'])s), and it stayed out after the node stopped" \
	"r['$d']['route_before'] == '1 2' and r['$d']['route_during'] == '1' and r['$d']['route_after'] == '1' and r['$d']['drain_to_new_ecmp_s'] is not None"
check "node_drain: 0 broken, 0 client TCP retransmits, 0 LB drops, no VIP packet to the node after its traffic stopped" \
	"r['$d']['long_lived']['broken'] == 0 and r['$d']['client_tcp_retransmits'] == 0 and r['$d']['lb_drops'] == 0 and r['$d']['victim_vip_packets_after_stopped'] == 0 and r['$d']['flows_moved_to_other_nodes_ct_miss'] > 0"

d=node_join
check "node_join: the router's ECMP set got the node back ($(num r[\'$d\'][\'start_to_ecmp_s\'])s after start), announced only after its health converged" \
	"r['$d']['route_before'] == '1' and r['$d']['route_after'] == '1 2' and r['$d']['start_to_ecmp_s'] is not None and r['$d']['announced_before_converged_samples'] == 0"
check "node_join: 0 broken long-lived connections, $(num r[\'$d\'][\'flows_taken_by_the_node_ct_miss\']) flows moved to the joined node" \
	"r['$d']['long_lived']['broken'] == 0 and r['$d']['flows_taken_by_the_node_ct_miss'] > 0"

d=backend_failure
check "backend_failure: out of every ring in $(num r[\'$d\'][\'removal_seconds_max\'])s (bound $(num r[\'$d\'][\'removal_bound_s\'])s: $(num r[\'$d\'][\'bound_formula\']))" \
	"r['$d']['removal_seconds_max'] is not None and r['$d']['removal_seconds_max'] <= r['$d']['removal_bound_s']"
check "backend_failure: 0 broken connections on the other backends ($(num r[\'$d\'][\'connections_on_victim\']) on the dead one broke with it)" \
	"r['$d']['broken_on_other_backends'] == 0 and r['$d']['connections_on_victim'] > 0"
check "backend_failure: new connections: none failed, none to the dead backend" "r['$d']['new_failed'] == 0 and r['$d']['new_to_victim'] == 0"
check "backend_failure: both nodes agree on the tables without it (xdplb cluster status exit $(num r[\'$d\'][\'cluster_status_after_removal\'][\'exit\']); flagged: $(num r[\'$d\'][\'cluster_status_after_removal\'][\'flagged\']))" \
	"r['$d']['cluster_status_after_removal']['exit'] == 0"

d=flood
for t in off on; do
	f="r['$d']['rounds']['$t']"
	check "flood ($t): $(num "$f['flood']['sent']") spoofed SYNs at $(num "$f['flood']['pps_offered']") pps offered, $(num "$f['flood']['new_flows_seen']") new flows seen at the LB nodes" \
		"$f['flood']['sent'] > 0 and $f['flood']['new_flows_seen'] > 0"
	check "flood ($t): 0 of $(num "$f['long_lived']['connections']") long-lived connections broke (be$(num "r['$d']['new_backend'][2:]") joined mid-flood), 0 of $(num "$f['short']['connections']") short failed" \
		"$f['long_lived']['connections'] > 0 and $f['long_lived']['connected'] == $f['long_lived']['connections'] and $f['long_lived']['broken'] == 0 and $f['short']['connections'] > 0 and $f['short']['failed'] == 0"
	check "flood ($t): established flows kept: $(num "$f['established_before_flood']") -> $(num "$f['established_after_flood']") established (>= $(num "r['$d']['long_conns']") long-lived; change per node $(num "$f['established_change_per_node']"), never down) with $(num "$f['embryonic_mid_flood']") embryonic mid-flood" \
		"$f['established_after_flood'] >= r['$d']['long_conns'] and all(v >= 0 for v in $f['established_change_per_node'].values())"
	check "flood ($t): no TCP segment reached the attacker (router blackhole; $(num "$f['attacker_tcp_in_segments']"))" \
		"$f['attacker_tcp_in_segments'] == 0"
done
f="r['$d']['rounds']['off']"
check "flood (off): the flood in conntrack ($(num "$f['embryonic_mid_flood']") embryonic), no protection drops, the abusive source's $(num "$f['abusive']['sent']") SYNs all through ($(num "$f['abusive']['delivered']"))" \
	"$f['embryonic_mid_flood'] > 0 and sum(sum(v.values()) for v in $f['drops_per_vip'].values()) == 0 and $f['abusive']['sent'] > 0 and 0 < $f['abusive']['delivered'] <= $f['abusive']['sent'] and $f['abusive']['dropped_syn'] + $f['abusive']['dropped_pps'] == 0"
f="r['$d']['rounds']['on']"
check "flood (on): the abusive source cut: $(num "$f['abusive']['delivered']") of $(num "$f['abusive']['sent']") delivered (limit bound $(num "$f['abusive']['limit_bound']")), $(num "$f['abusive']['dropped_syn']") + $(num "$f['abusive']['dropped_pps']") dropped and counted" \
	"$f['abusive']['sent'] > 0 and $f['abusive']['dropped_syn'] + $f['abusive']['dropped_pps'] > 0 and 0 < $f['abusive']['delivered'] <= $f['abusive']['limit_bound'] and $f['abusive']['delivered'] < $f['abusive']['sent'] and $f['drops']['drop_rate_src_syn'] + $f['drops']['drop_rate_src_pps'] >= $f['abusive']['dropped_syn'] + $f['abusive']['dropped_pps']"
check "flood (on): no drop on the real client's VIPs ($(num "$f['drops_on_other_vips']"))" "$f['drops_on_other_vips'] == 0"
check "flood: protection off again at the end ($(num "r['$d']['protection_after']"))" "r['$d']['protection_after'].startswith('protection: off')"

d=backend_added
check "backend_added: $(num r[\'$d\'][\'changed_fraction\']) of flows changed backend, Maglev ideal $(num r[\'$d\'][\'ideal_fraction\']) ±25%" \
	"abs(r['$d']['changed_fraction'] - r['$d']['ideal_fraction']) <= 0.25 * r['$d']['ideal_fraction']"
check "backend_added: 0 broken established connections, no probe failed" \
	"r['$d']['long_lived']['broken'] == 0 and r['$d']['probe_failed_before'] + r['$d']['probe_failed_after'] == 0"

d=agent_restart
check "agent_restart: SIGKILL + start on each node: 0 broken long-lived, 0 failed short connections" \
	"r['$d']['long_lived']['broken'] == 0 and r['$d']['short']['failed'] == 0 and r['$d']['short']['connections'] > 0"
check "agent_restart: 0 packets dropped by the LB nodes ($(num r[\'$d\'][\'client_tcp_retransmits\']) client retransmits)" "r['$d']['lb_drops'] == 0"
check "agent_restart: every agent adopted its pinned program" "r['$d']['all_adopted_same_program'] is True"
check "agent_restart: the router's VIP routes never changed during the restarts (route history: $(num r[\'$d\'][\'route_changes_during_restarts\']) changes)" \
	"r['$d']['route_changes_during_restarts'] == 0 and r['$d']['route_before'] == r['$d']['route_after'] == '1 2'"

d=drain
check "drain: no new connection to the drained backend, none failed" "r['$d']['new_to_drained'] == 0 and r['$d']['new_failed'] == 0 and r['$d']['new_connections'] > 0"
check "drain: $(num r[\'$d\'][\'finished_on_drained\'])/$(num r[\'$d\'][\'connections_on_drained\']) established connections on it finished" \
	"r['$d']['connections_on_drained'] > 0 and r['$d']['finished_on_drained'] == r['$d']['connections_on_drained'] and r['$d']['long_lived']['broken'] == 0"

# count_checks: show the PASS/FAIL lines a Python checker prints (stdin) and count them.
count_checks() {
	local line
	while IFS= read -r line; do
		case $line in
		PASS\ *) pass=$((pass + 1)) ;;
		FAIL\ *) fail=$((fail + 1)) ;;
		esac
		echo "$line"
	done
}

# The cluster checks, in one Python run: each prints PASS or FAIL and the
# numbers it looked at.
count_checks < <(python3 - "$report" <<'PY' 2>&1 || echo "FAIL cluster checks: the checker failed"
import json, sys
r = json.load(open(sys.argv[1]))

def check(name, fn):
    try:
        ok = fn()
    except Exception as e:                   # a missing key is a failure, shown
        print("FAIL %s\n    error: %s: %s" % (name, type(e).__name__, e)); return
    print(("PASS " if ok else "FAIL ") + name)

ip = r["lab"]["cluster"]["initial_push"]
check("setup: one xdplb cluster push --wait (revision %s) converged on both nodes in %.0f ms" % (ip["revision"], ip["converge_ms"]),
      lambda: ip["converged"] is True and sorted(ip["nodes"]) == ["lb1", "lb2"] and ip["vips"] == 4)

c = r["cluster_push"]
for key, what in (("weight_change", "be1 weight 50"), ("weight_back", "weights back to 100")):
    p = c[key]
    check("cluster_push: push (%s) exit %s, revision %s -> %s, both nodes run exactly it with the offline digests %s"
          % (what, p["exit"], p["revision_before"], p["revision"], p["expected_digests"]),
          lambda p=p: p["exit"] == 0 and p["converged"] is True and p["revision"] > p["revision_before"]
          and sorted(p["node_revisions"]) == ["lb1", "lb2"] and all(v == p["revision"] for v in p["node_revisions"].values())
          and all(t is not None for t in p["node_seconds"].values()) and len(p["node_seconds"]) == 2)
    check("cluster_push: (%s) every node in %s s (goal < 1 s), --wait %s ms; xdplb cluster status exit %s, agreed %s"
          % (what, p["max_node_seconds"], p["converge_ms"], p["cluster_status"]["exit"], p["cluster_status"]["agreed"]),
          lambda p=p: p["cluster_status"]["exit"] == 0 and p["cluster_status"]["agreed"] is True
          and p["cluster_status"]["digests_equal"]
          and all(x["revision"] == p["revision"] for x in p["cluster_status"]["nodes"].values()))
check("cluster_push: the weight change changed both families' tables (%s -> %s) and the push back restored them"
      % (c["weight_back"]["expected_digests"], c["weight_change"]["expected_digests"]),
      lambda: all(c["weight_change"]["expected_digests"][f] != c["weight_back"]["expected_digests"][f] for f in ("4", "6")))

b = r["bad_push"]
e = b["etcdctl_put"]
check("bad_push: xdplb cluster push of an invalid file: exit %s, names vips[0].ring_size %s, says nothing was written %s, revision %s -> %s"
      % (b["cli"]["exit"], b["cli"]["names_the_key"], b["cli"]["says_nothing_was_written"], b["revision_before"], b["cli"]["revision_after"]),
      lambda: b["cli"]["exit"] == 2 and b["cli"]["names_the_key"] and b["cli"]["says_nothing_was_written"]
      and b["cli"]["revision_after"] == b["revision_before"])
check("bad_push: the same text put with etcdctl (revision %s) is refused by both nodes (refused_revision %s) in %s s, naming ring_size"
      % (e["revision"], [x["refused_revision"] for x in e["nodes"].values()], e["max_seconds_to_refused"]),
      lambda: e["revision"] > b["revision_before"] and sorted(e["nodes"]) == ["lb1", "lb2"]
      and all(x["refused_revision"] == e["revision"] and "ring_size" in x["refused_error"] for x in e["nodes"].values()))
check("bad_push: ... both keep revision %s (%s) and their digests; cluster status exit %s"
      % (b["revision_before"], [x["revision"] for x in e["nodes"].values()], e["cluster_status_exit"]),
      lambda: all(x["revision"] == b["revision_before"] for x in e["nodes"].values()) and e["digests_kept"] is True
      and e["cluster_status_exit"] == 1)
check("bad_push: ... and forward: %d short connections, %d failed" % (b["short_while_refused"]["connections"], b["short_while_refused"]["failed"]),
      lambda: b["short_while_refused"]["failed"] == 0 and b["short_while_refused"]["connections"] > 0)
gp = b["good_push"]
check("bad_push: a good push then (exit %s, revision %s) runs on both nodes in %s s, refusals cleared, cluster status exit %s"
      % (gp["exit"], gp["revision"], gp["max_node_seconds"], gp["cluster_status"]["exit"]),
      lambda: gp["exit"] == 0 and gp["revision"] > e["revision"] and len(gp["node_revisions"]) == 2
      and all(v == gp["revision"] for v in gp["node_revisions"].values()) and b["refusals_cleared"]
      and gp["cluster_status"]["exit"] == 0)
check("bad_push: 0 of %d long-lived connections broke, %d LB drops" % (b["long_lived"]["connections"], b["lb_drops"]),
      lambda: b["long_lived"]["broken"] == 0 and b["long_lived"]["connections"] > 0 and b["lb_drops"] == 0)
PY
)

# ---- the HTML report, in a real browser ----------------------------------------
# browse ARGS...: headless Chromium on the report: in a network namespace of
# its own (unshare --net: only lo, down; nothing can leave it), a throwaway
# profile and home, background networking off; 60 s at most, then its whole
# process group is killed (timeout -k).
browse() {
	HOME=$tmp/chromium-home timeout -k 5 60 unshare --net -- chromium --headless --no-sandbox --disable-gpu \
		--user-data-dir="$tmp/chromium-profile" --no-first-run --no-default-browser-check --disable-extensions \
		--disable-background-networking --disable-component-update --disable-sync --disable-default-apps \
		--disable-breakpad --dns-prefetch-disable "$@" "file://$html"
}
shot_w=1280 shot_h=3200
if ! command -v chromium >/dev/null; then
	t=$SECONDS
	"$root/tools/install-deps" --no-recommends chromium >"$tmp/chromium-install.log" 2>&1 ||
		tail -n 20 "$tmp/chromium-install.log" | sed 's/^/    /'
	echo "    (chromium installed in $((SECONDS - t)) s)"
fi
if [ ! -s "$html" ]; then
	bad "html: the lab wrote its HTML report (--html)"
elif ! command -v chromium >/dev/null; then
	bad "html: chromium is installed (tools/install-deps --no-recommends chromium)"
else
	ok "html: the lab wrote its HTML report ($(($(stat -c %s "$html") / 1024)) KiB)"
	links=$(unshare --net -- ip -o link show | awk -F': ' '{print $2}' | paste -sd, -)
	if [ "$links" = lo ] && ! unshare --net -- ip -o link show lo | grep -q 'state UP'; then
		ok "html: chromium runs in a network namespace of its own (links: $links, down)"
	else
		bad "html: chromium runs in a network namespace of its own (links: $links)"
	fi
	mkdir -p "$tmp/chromium-home"
	t0=$(date +%s.%N)
	rc=0
	browse --dump-dom >"$tmp/dom.html" 2>"$tmp/chromium-dom.log" || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" = 0 ] && [ -s "$tmp/dom.html" ]; then
		ok "html: headless chromium rendered it ($(chromium --version 2>/dev/null | head -n 1); --dump-dom in $(python3 -c "print('%.1f' % ($t1 - $t0))") s)"
		count_checks < <(python3 "$here/check_html.py" dom "$report" "$tmp/dom.html" 2>&1 || echo "FAIL html: check_html.py dom failed")
	else
		bad "html: headless chromium rendered it (exit $rc$([ "$rc" != 124 ] || echo ': killed after 60 s'))"
		tail -n 10 "$tmp/chromium-dom.log" | sed 's/^/    /'
	fi
	rc=0
	t0=$(date +%s.%N)
	browse --window-size="$shot_w,$shot_h" --hide-scrollbars --screenshot="$tmp/shot.png" >"$tmp/chromium-shot.log" 2>&1 || rc=$?
	t1=$(date +%s.%N)
	if [ "$rc" = 0 ] && [ -s "$tmp/shot.png" ]; then
		echo "    (screenshot in $(python3 -c "print('%.1f' % ($t1 - $t0))") s)"
		count_checks < <(python3 "$here/check_html.py" png "$tmp/shot.png" "$shot_w" "$shot_h" 2>&1 || echo "FAIL html: check_html.py png failed")
	else
		bad "html: headless chromium took a screenshot (exit $rc)"
		tail -n 10 "$tmp/chromium-shot.log" | sed 's/^/    /'
	fi
fi

finish
