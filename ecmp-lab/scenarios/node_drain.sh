#!/usr/bin/env bash
# Scenario 3, node drain: while long-lived connections run, the last LB node
# is drained (`xdplb node drain`: the agent withdraws every VIP; bird tells
# the router, which takes the node out of its ECMP set). Its flows move to
# the other nodes while it keeps forwarding whatever still arrives. Once its
# VIP traffic has stopped (the agent's traffic_stopped, and its VIP packet
# counters no longer growing), its agent and BGP daemon are stopped.
# Goals: 0 broken, 0 packets lost (client TCP retransmits, LB drops).
# The node stays out of service until node_join.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" node_drain

pick_victim node_drain
meta route_before "$(ecmp_nodes 4)"

long_start long $((3 * PHASE + 4))
phase "$PHASE"
snapshot_stats "$SC/stats0.json"
meta retrans0 "$(client_retrans)"
poll_node "$victim" stopped stopped
route_event drain $others
now >"$SC/stopped.t"
lbx "$victim" node drain >"$SC/drain.out"        # the drain hook: xdplb node drain
t=$(wait_until 10 ecmp_is $others) || t=-1
meta drain_poll_s "$t"
meta route_during "$(ecmp_nodes 4)"
wait "$POLL_PID" || true
meta traffic_stopped_s "$(cat "$SC/stopped-$victim" 2>/dev/null || echo timeout)"
snapshot_stats "$SC/stats1.json"
sleep 0.5
snapshot_stats "$SC/stats1b.json"                 # the victim's VIP counters: no longer growing
status_json "$victim" >"$SC/status_drained.json"
meta t_stop "$(now)"
stop_agent "$victim"
stop_bgp "$victim"
touch "$LAB_STATE_DIR/lb$victim.stopped"
meta stop_s "$(python3 -c "import sys; print('%.2f' % ($(now) - float(sys.argv[1])))" "$(sed -n 's/^t_stop\t//p' "$SC/meta.tsv")")"
phase "$PHASE"
long_wait
meta retrans1 "$(client_retrans)"
meta route_after "$(ecmp_nodes 4)"
snapshot_stats "$SC/stats2.json"
analyze
