#!/usr/bin/env bash
# Scenario 10, etcd loss: while long-lived connections and a steady stream of
# short ones run,
#  1. the etcd member that leads is killed (SIGKILL): a push (backend 1's
#     weight 100 -> 50) must still converge every node on the new revision with
#     the offline digests, and `xdplb cluster status` agree (exit 0);
#  2. the two other members are killed too: every agent must say etcd is
#     unreachable, keep its revision and digests, and keep forwarding; after
#     cluster.fallback_after it uses its own probes (status: health "local
#     (etcd unreachable …)", health_consensus false), and the probes keep
#     running (every backend's last_check moves on) — etcd stays down for
#     fallback_after + 2 s;
#  3. the three members start again (same data): every agent reconnects,
#     `xdplb cluster status` agrees again, and a push (weights back) converges.
# Goals: 0 broken long-lived, 0 failed short connections, 0 LB drops.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" etcd_loss

n=$(active_backends)
outage=$(python3 -c "print(int('$CLUSTER_FALLBACK_AFTER'.rstrip('s')) + 2)")
meta outage_s "$outage"
meta fallback_after "$CLUSTER_FALLBACK_AFTER"
meta members "$ETCD_MEMBERS"
secs=$((2 * PHASE + outage + 16))
agreed() { cluster_cmd status >/dev/null 2>&1; }
SC_UNDO+=("for e in \$(seq 1 $ETCD_MEMBERS); do etcd_running \$e || start_etcd \$e; done; wait_until 30 etcd_healthy >/dev/null || true")

long_start long "$secs"
snapshot_stats "$SC/stats0.json"
meta retrans0 "$(client_retrans)"
short_steady "$secs"
phase "$PHASE"

# 1. The leader dies; a push still converges.
leader=$(etcd_leader) || die "etcd_loss: no etcd leader before the test"
meta leader "e$leader"
write_shared "$SC/half.yaml" "$n" 1=50
maglev_digests "$SC/member.digests" "$n" 1=50
r0=$(config_revision)
meta member_before "$r0"
watch_cluster revision member "--above" "$r0" --digests "$SC/member.digests"
meta t_member_down "$(now)"
stop_etcd "$leader" KILL
now >"$SC/member.t"
rc=0
lab_push "$SC/half.yaml" --wait 30 --json >"$SC/member.json" 2>"$SC/member.err" || rc=$?
meta member_rc "$rc"
watch_wait
meta member_status_rc "$(cluster_status_json "$SC/member-cluster.json")"
cluster_cmd status >"$SC/member-cluster.txt" 2>&1 || true
t=$(wait_until 20 agreed) || t=-1
meta member_agreed_after_s "$t"
meta new_leader "e$(etcd_leader || echo none)"

# 2. Every member down.
watch_cluster unreachable unreachable
now >"$SC/unreachable.t"
for ((e = 1; e <= ETCD_MEMBERS; e++)); do [ "$e" = "$leader" ] || stop_etcd "$e" KILL; done
watch_wait
snapshot_status "$SC/status_down0.json"
phase "$outage" "etcd down"
snapshot_status "$SC/status_down1.json"

# 3. Every member back.
watch_cluster reachable reachable
now >"$SC/reachable.t"
t0=$(now)
for ((e = 1; e <= ETCD_MEMBERS; e++)); do start_etcd "$e"; done
t=$(wait_until 30 etcd_healthy) || t=-1
meta etcd_back_s "$t"
watch_wait
wait_until 30 agreed >/dev/null && meta agreed_s "$(elapsed "$t0" "$(now)")" || meta agreed_s -1
meta back_status_rc "$(cluster_status_json "$SC/back-cluster.json")"
snapshot_status "$SC/status_back.json"
maglev_digests "$SC/final.digests" "$n"
r1=$(config_revision)
meta final_before "$r1"
watch_cluster revision final --above "$r1" --digests "$SC/final.digests"
now >"$SC/final.t"
rc=0
push_current >"$SC/final.json" 2>"$SC/final.err" || rc=$?
meta final_rc "$rc"
watch_wait
meta final_status_rc "$(cluster_status_json "$SC/final-cluster.json")"

with_progress "$SC_NAME: short connections" wait "$SHORT_PID" || warn "short traffic exited with $?"
long_wait
meta retrans1 "$(client_retrans)"
snapshot_stats "$SC/stats1.json"
analyze
