#!/usr/bin/env bash
# Scenario 1, distribution: DIST_CONNS short HTTP connections (IPv4 and IPv6
# VIPs, 4 client addresses, random source ports). Counts per backend (each
# reply names its backend) and per LB node (the node's new_flow counter: one
# per SYN that took the Maglev ring) against an even share, allowing 4
# standard deviations of a fair random split; the ring digests of every VIP
# must be equal on every node.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" distribution

meta backends "$(active_backends)"
meta lb_nodes "$LB_NODES"
meta tolerance_sigmas 4
snapshot_status "$SC/status.json"
snapshot_stats "$SC/stats0.json"
short_conns "$SC/short.json" "$DIST_CONNS" >"$SC/short.log"
snapshot_stats "$SC/stats1.json"
analyze
