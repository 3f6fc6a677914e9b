#!/usr/bin/env bash
# Scenario 3, backend failure: long-lived echo connections run to every
# backend; backend 1's servers are killed. Measured: the time until every LB
# node's health checks take it out of every VIP's ring (status: healthy false,
# 0 slots), against fall x interval + timeout; connections to the other
# backends that break (goal 0); new connections after the removal (none may
# fail or reach the dead backend); the time until it is back after a restart.
set -o errexit -o nounset -o pipefail
umask 077
LAB_DIR=${LAB_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
REPO=${REPO:-$(cd "$LAB_DIR/.." && pwd)}
. "$LAB_DIR/config.sh"
. "$LAB_DIR/lib.sh"
scenario_begin backend_failure

victim=1
meta victim "be$victim"
meta victim_v4 "$(be4 $victim)"
meta victim_v6 "$(be6 $victim)"
meta hc_interval_ms "$HC_INTERVAL_MS"
meta hc_timeout_ms "$HC_TIMEOUT_MS"
meta hc_fall "$HC_FALL"
meta hc_rise "$HC_RISE"
meta slack_s "$HC_SLACK_S"

# removed I: node I has the victim out of every VIP's ring.
removed() {
	status_json "$1" | python3 -c "
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if all(not b['healthy'] and b['slots'] == 0 for v in d['vips'] for b in v['backends']
                  if b['address'] in ('$(be4 $victim)', '$(be6 $victim)')) else 1)"
}
back() { all_healthy; }

long_start long $((2 * PHASE + 4))
sleep "$PHASE"
t_kill=$(now)
meta t_kill "$t_kill"
stop_backend "$victim"
# One bounded poller per node, each in the background for an even start.
pollers=()
for ((i = 1; i <= LB_NODES; i++)); do
	(t=$(wait_until 20 removed "$i") && echo "$(elapsed "$t_kill" "$(now)")" >"$SC/removed-$i" || echo fail >"$SC/removed-$i") &
	pollers+=($!)
done
for p in "${pollers[@]}"; do wait "$p" || true; done
short_conns "$SC/short.json" "$SHORT_CONNS" >"$SC/short.log"
long_wait
start_backend "$victim"
t=$(wait_until 20 back) && meta back_seconds "$t" || meta back_seconds -1
analyze
