#!/usr/bin/env bash
# Scenario 4, backend added: backend M+1 joins every VIP on every node
# (one `xdplb cluster push` of the shared config with it) while long-lived
# connections run. The same
# PROBE_FLOWS fixed flows (source address and port) are sent before and after:
# the fraction that changes backend is compared with Maglev's ideal 1/(M+1)
# (only flows now owned by the new backend should move). Goal: 0 broken
# established connections (conntrack keeps them on their backend).
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" backend_added

old=$(active_backends)
new=$((old + 1))
[ "$new" -le $((BACKENDS + 1)) ] || die "backend_added already ran (the VIPs list $old backends; the lab has $((BACKENDS + 1)))"
meta backends_before "$old"
meta backends_after "$new"
meta new_backend "be$new"
meta tolerance_rel 0.25
sport_base=20000

long_start long $((2 * PHASE + 8))
short_conns "$SC/probe0.json" "$PROBE_FLOWS" --sport-base "$sport_base" >"$SC/probe0.log"
watch_backend present joined "$(be4 $new)" "$(be6 $new)"
echo "$new" >"$LAB_STATE_DIR/active_backends"
write_shared "$LAB_STATE_DIR/shared.yaml" "$new"
now >"$SC/joined.t"
lab_push "$LAB_STATE_DIR/shared.yaml" --wait 30 --json >"$SC/push.json" 2>"$SC/push.err" || warn "push of be$new: exit $? ($(cat "$SC/push.err"))"
watch_wait
wait_until 30 all_healthy >/dev/null || die "be$new not healthy in every node's ring within 30 s"
sleep 1
short_conns "$SC/probe1.json" "$PROBE_FLOWS" --sport-base "$sport_base" >"$SC/probe1.log"
long_wait
analyze
