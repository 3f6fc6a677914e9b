#!/usr/bin/env bash
# Tests/lab/run.sh — the reduced ecmp-lab end to end, and its outcomes.
#
# Runs `ecmp-lab/run --quick --lb-nodes 2 --backends 2 --report FILE` with the
# given xdplb binary (2 LB nodes announcing the VIPs over BGP — bird2 on the
# router and on each node, eBGP + BFD, the router's ECMP routes learned from
# BGP only —, 2 backends + 1 that joins, native XDP, GRE decap in BPF, real
# HTTP and echo servers) and asserts on the JSON report:
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
#                    timeout + 1.5 s (measured: release 1.6 s, debug 2.0-2.6 s);
#                    0 broken connections to the other backends; no new
#                    connection to it, none failed
#   backend_added    changed fraction within ±25% of Maglev's 1/(M+1);
#                    0 broken established connections
#   agent_restart    0 broken/failed connections, 0 LB drops, program adopted,
#                    0 changes of the router's VIP routes (route history)
#   drain            no new connection to the drained backend; all its
#                    established connections finished
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

start=$(date +%s)
rc=0
XDPLB=$XDPLB timeout 300 "$root/ecmp-lab/run" --quick --lb-nodes 2 --backends 2 --report "$report" >"$tmp/lab.log" 2>&1 || rc=$?
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

finish
