#!/usr/bin/env bash
# Scenario 6, drain: backend 2 (both addresses) is drained on every node at
# once — one `xdplb cluster push` with its weight 0 — while long-lived
# connections run. Its established connections keep working to their end
# (conntrack keeps draining backends' flows); new connections avoid it.
# Afterwards it is undrained (the config pushed again with weight 100).
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" drain

victim=2
meta victim "be$victim"
meta victim_v4 "$(be4 $victim)"
meta victim_v6 "$(be6 $victim)"
meta backends "$(active_backends)"

long_start long $((2 * PHASE + 3))
phase "$PHASE"
meta t_drain "$(now)"
write_shared "$SC/drained.yaml" "$(active_backends)" "$victim=0"
lab_push "$SC/drained.yaml" --wait 30 --json >"$SC/drain.json" 2>"$SC/drain.err" || warn "drain push: exit $? ($(cat "$SC/drain.err"))"
snapshot_status "$SC/status_drained.json"
short_conns "$SC/short.json" "$SHORT_CONNS" >"$SC/short.log"
long_wait
push_current >"$SC/undrain.json" 2>"$SC/undrain.err" || warn "undrain push: exit $? ($(cat "$SC/undrain.err"))"
t=$(wait_until 10 all_healthy) && meta undrain_seconds "$t" || meta undrain_seconds -1
analyze
