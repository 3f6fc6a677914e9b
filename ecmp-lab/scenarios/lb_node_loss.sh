#!/usr/bin/env bash
# Scenario 2, LB node loss: LONG_CONNS long-lived echo connections send
# continuously; mid-flight the router's ECMP routes lose the last LB node's
# nexthop (ip route replace, as a routing daemon withdrawing the node would),
# later it comes back. ECMP rehashes flows onto other nodes, whose conntrack
# has never seen them (ct_miss): they take the Maglev ring, which is the same
# on every node, so they reach the same backend. Goal: 0 broken connections.
set -o errexit -o nounset -o pipefail
umask 077
LAB_DIR=${LAB_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
REPO=${REPO:-$(cd "$LAB_DIR/.." && pwd)}
. "$LAB_DIR/config.sh"
. "$LAB_DIR/lib.sh"
. "$LAB_DIR/topology.sh"
scenario_begin lb_node_loss

lost=$LB_NODES
others=()
for ((i = 1; i < LB_NODES; i++)); do others+=("$i"); done
meta lost_node "$lost"
meta lb_nodes "$LB_NODES"
meta method "nexthop removed from the router's ECMP routes (v4 and v6), restored after"

long_start long $((3 * PHASE + 1))
sleep "$PHASE"
snapshot_stats "$SC/stats0.json"
meta t_remove "$(now)"
ecmp_route_set "${others[@]}"
meta route_during "$(ecmp_nodes)"
snapshot_stats "$SC/stats0b.json"    # from here on, no packet may reach the removed node
sleep "$PHASE"
snapshot_stats "$SC/stats1.json"
meta t_restore "$(now)"
ecmp_route_set $(seq 1 "$LB_NODES")
meta route_after "$(ecmp_nodes)"
long_wait
snapshot_stats "$SC/stats2.json"
analyze
