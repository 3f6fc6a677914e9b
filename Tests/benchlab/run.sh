#!/usr/bin/env bash
# Tests/benchlab/run.sh — tools/bench-lab still works end to end (a smoke run,
# not a measurement: the numbers are printed, never asserted).
#
# One round of the smallest useful run (2 LB nodes, 2 backends, 16 wrk
# connections for 2 s, 1 s of iperf3 each way, no CPU probes) through all
# three targets: xdplb (the lab's agents, the benchmark VIPs pushed to etcd),
# HAProxy and the no-balancer baseline, with the backends decapsulating GRE
# in XDP (--decap-mode xdp). Passes when bench-lab exits 0 (it
# checks itself that each target serves the exact 102,400-byte body before
# timing it) and its JSON has every target and workload with requests
# answered, no wrk error of any kind, and bulk bytes moved each way.
# bench-lab brings the lab up and removes it, also on failure; all traffic
# is inside the lab's namespaces.
# Then tools/bench-health the same way: 50 backends probed by HTTP for 4 s
# (an agent and a small server in two namespaces it makes and removes);
# passes when every backend ends healthy and both views of probe timing (the
# agent's lateness record, the server's gaps between probes) are printed.
# Usage: Tests/benchlab/run.sh PATH/TO/xdplb
set -o errexit -o nounset -o pipefail
XDPLB=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d /tmp/xdplb-benchlab.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
. "$here/../lib.sh"

check "bench-lab refuses an unknown decap mode" usage_error "--decap-mode must be auto, kernel, bpf or xdp" \
	"$root/tools/bench-lab" --decap-mode gre
check "ecmp-lab/run refuses an unknown decap mode" usage_error "--decap-mode must be auto, kernel, bpf or xdp" \
	"$root/ecmp-lab/run" --decap-mode gre

# The backends decapsulate in XDP here (the lab suite covers the kernel's GRE
# devices), as gre-decap status on each reports.
if XDPLB=$XDPLB timeout 600 "$root/tools/bench-lab" --rounds 1 --duration 2 --bulk-seconds 1 --backends 2 --decap-mode xdp \
	--connections 16 --load-wait 5 --no-probes --json "$tmp/lab.json" >"$tmp/bench-lab.log" 2>&1; then
	ok "bench-lab ran every target and removed the lab"
else
	bad "bench-lab failed (its log's end:)"
	tail -n 15 "$tmp/bench-lab.log" | sed 's/^/    /'
fi
if ip netns list | grep -q '^xl-'; then bad "a lab namespace is left"; else ok "no lab namespace left"; fi

if [ -s "$tmp/lab.json" ]; then
	check "every target answered every workload, no wrk error, bulk moved bytes, both backends decapsulate in XDP" python3 - "$tmp/lab.json" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
seen = {}
for r in runs:
    seen[(r["target"], r["workload"])] = r
problems = []
for t in ("xdplb", "haproxy", "direct"):
    for w in ("large", "short"):
        r = seen.get((t, w))
        if r is None:
            problems.append(f"{t} {w}: missing")
        elif r["requests"] <= 0 or any(r["errors"].values()):
            problems.append(f"{t} {w}: {r['requests']} requests, errors {r['errors']}")
    for w in ("bulk_upload", "bulk_download"):
        r = seen.get((t, w))
        if r is None or not r.get("gbit") or r["gbit"] <= 0:
            problems.append(f"{t} {w}: {r and r.get('gbit')}")
settings = json.load(open(sys.argv[1]))["settings"]
if settings.get("decap_mode") != "xdp" or settings.get("decap_installed") != ["xdp", "xdp"]:
    problems.append(f"decap asked {settings.get('decap_mode')!r}, installed {settings.get('decap_installed')!r}: expected xdp on both backends")
print("\n".join(problems) or "ok")
sys.exit(1 if problems else 0)
PY
	python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print("  %-8s %-14s %s" % (r["target"], r["workload"], ("%.0f req/s" % r["rps"]) if "rps" in r else ("%.2f Gbit/s" % r["gbit"])))' "$tmp/lab.json"
else
	bad "bench-lab wrote no JSON"
fi

if XDPLB=$XDPLB timeout 180 "$root/tools/bench-health" 50 4 >"$tmp/bench-health.log" 2>&1; then
	ok "bench-health ran"
else
	bad "bench-health failed (its log's end:)"
	tail -n 15 "$tmp/bench-health.log" | sed 's/^/    /'
fi
sed 's/^/  /' "$tmp/bench-health.log"
check "bench-health: 50/50 backends healthy" grep -q "^health checks: 50 backends, .* 50/50 healthy" "$tmp/bench-health.log"
check "bench-health: the agent's probe lateness is reported" grep -q "^  probe lateness (agent, last .* probes): p50" "$tmp/bench-health.log"
check "bench-health: the server saw repeated probes of the 50 backends" \
	grep -Eq "^  gap between two probes of one backend \(server, [1-9][0-9]* gaps over 50 backends" "$tmp/bench-health.log"
if ip netns list | grep -q '^xt-hb-'; then bad "a bench-health namespace is left"; else ok "no bench-health namespace left"; fi
if compgen -G "/sys/fs/bpf/xdplb-hb-*" >/dev/null; then bad "a bench-health pin directory is left"; else ok "no bench-health pin directory left"; fi
echo "benchlab: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
