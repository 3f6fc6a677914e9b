#!/usr/bin/env bash
# Scenario 8, bad push: while long-lived connections run,
#  1. `xdplb cluster push` of an invalid file (vips[0].ring_size 1000, not
#     prime) must exit 2, say "nothing was written", and leave etcd's config
#     at its revision;
#  2. the same bad value written straight into etcd (etcdctl put, around the
#     CLI's check) must be refused by every agent (cluster.refused_revision =
#     the put's revision, refused_error naming ring_size); each keeps running
#     the old revision with the old digests and forwarding: short connections
#     then all succeed; `xdplb cluster status` flags it (exit 1);
#  3. a good push then converges every node and clears the refusals (status
#     exit 0). Goals: 0 broken long-lived connections, 0 failed short ones.
set -o errexit -o nounset -o pipefail
. "$(dirname "$0")/../scenario.sh" bad_push

n=$(active_backends)
long_start long $((PHASE + 6)) nowait          # up by step 2 (long_ready)
maglev_digests "$SC/good.digests" "$n"
snapshot_status "$SC/status0.json"
r0=$(config_revision)
meta revision_before "$r0"

# A bad file: the running config with ring_size 1000 on the first VIP.
write_shared "$SC/good.yaml" "$n"
python3 - "$SC/good.yaml" "$SC/bad.yaml" <<'PY'
import sys
s = open(sys.argv[1]).read()
i = s.index("    protocol: tcp\n")
open(sys.argv[2], "w").write(s[:i] + "    ring_size: 1000\n" + s[i:])
PY

# 1. Refused by the CLI.
rc=0
lab_push "$SC/bad.yaml" --wait 10 --json >"$SC/bad_cli.out" 2>&1 || rc=$?
meta cli_rc "$rc"
meta cli_says_nothing_written "$(grep -c 'nothing was written' "$SC/bad_cli.out" || true)"
meta cli_names_key "$(grep -c 'vips\[0\].ring_size' "$SC/bad_cli.out" || true)"
meta revision_after_cli "$(config_revision)"

# 2. Around the CLI: etcdctl put of the same text; a poller per node waits
# for the node to refuse a revision above the running one.
long_ready long
snapshot_stats "$SC/stats0.json"
watch_cluster refused refused --above "$r0"
now >"$SC/refused.t"
etcdctl_lab put "${CLUSTER_PREFIX}config" -w json <"$SC/bad.yaml" >"$SC/put.out" 2>&1 || warn "etcdctl put failed: $(cat "$SC/put.out")"
bad_rev=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["header"]["revision"])' "$SC/put.out" 2>/dev/null) ||
	bad_rev=$(config_revision)
meta bad_revision "$bad_rev"
watch_wait
snapshot_status "$SC/status_refused.json"
meta status_refused_rc "$(cluster_status_json "$SC/refused-cluster.json")"
short_conns "$SC/short.json" "$SHORT_CONNS" >"$SC/short.log"

# 3. A good push (the running config again): every node runs it, the
# refusals are gone.
watch_cluster revision good --above "$bad_rev" --digests "$SC/good.digests"
now >"$SC/good.t"
rc=0
lab_push "$SC/good.yaml" --wait 30 --json >"$SC/good.json" 2>"$SC/good.err" || rc=$?
meta good_rc "$rc"
watch_wait
snapshot_status "$SC/status_good.json"
meta status_good_rc "$(cluster_status_json "$SC/good-cluster.json")"
long_wait
snapshot_stats "$SC/stats1.json"
analyze
