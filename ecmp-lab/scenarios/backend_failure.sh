#!/usr/bin/env bash
# Scenario 3, backend failure: long-lived echo connections run to every
# backend; backend 1's servers are killed. Measured: the time until every LB
# node's health checks take it out of every VIP's ring (status: healthy false,
# 0 slots), against fall x interval + timeout + slack + the consensus' round
# trip through etcd (every node removes it once the majority's probes say
# so, HC_CONSENSUS_S); connections to the
# other backends that break (goal 0); new connections after the removal (none
# may fail or reach the dead backend); the time until it is back after a restart.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" backend_failure

victim=1
meta victim "be$victim"
meta victim_v4 "$(be4 $victim)"
meta victim_v6 "$(be6 $victim)"
meta hc_interval_ms "$HC_INTERVAL_MS"
meta hc_timeout_ms "$HC_TIMEOUT_MS"
meta hc_fall "$HC_FALL"
meta hc_rise "$HC_RISE"
meta slack_s "$HC_SLACK_S"
meta consensus_s "$HC_CONSENSUS_S"

long_start long $((2 * PHASE + 4))
phase "$PHASE"
watch_backend removed removed "$(be4 $victim)" "$(be6 $victim)"
now >"$SC/removed.t"
stop_backend "$victim"
watch_wait
# The nodes agree on the tables without it (a node whose view lags shows here).
meta removed_status_rc "$(cluster_status_json "$SC/cluster_after_removal.json")"
short_conns "$SC/short.json" "$SHORT_CONNS" >"$SC/short.log"
long_wait
watch_backend present back "$(be4 $victim)" "$(be6 $victim)"
now >"$SC/back.t"
start_backend "$victim"
watch_wait
analyze
