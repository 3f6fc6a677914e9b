#!/usr/bin/env bash
# Scenario 6, drain: `xdplb drain` backend 2 (both addresses) on every node
# while long-lived connections run. Its established connections keep working
# to their end (conntrack keeps draining backends' flows); new connections
# avoid it. Afterwards it is undrained.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" drain

victim=2
meta victim "be$victim"
meta victim_v4 "$(be4 $victim)"
meta victim_v6 "$(be6 $victim)"
meta backends "$(active_backends)"

long_start long $((2 * PHASE + 3))
sleep "$PHASE"
meta t_drain "$(now)"
for i in $(up_nodes); do
	lbx "$i" drain "$(be4 $victim)" >>"$SC/drain.out"
	lbx "$i" drain "$(be6 $victim)" >>"$SC/drain.out"
done
snapshot_status "$SC/status_drained.json"
short_conns "$SC/short.json" "$SHORT_CONNS" >"$SC/short.log"
long_wait
for i in $(up_nodes); do
	lbx "$i" undrain "$(be4 $victim)" >>"$SC/drain.out"
	lbx "$i" undrain "$(be6 $victim)" >>"$SC/drain.out"
done
t=$(wait_until 10 all_healthy) && meta undrain_seconds "$t" || meta undrain_seconds -1
analyze
