#!/usr/bin/env python3
"""The measuring half of tools/bench-lab (stdlib only).

tools/bench-lab builds the lab and its benchmark service, then runs this with
the targets. Every load generator (wrk, iperf3, curl) runs inside the lab's
client namespace and checks that it is there before it starts; every run is
bounded by `timeout`. Prints a table and the xdplb/haproxy ratios; --json
writes every run. Benchmarks print numbers; this never fails on a timing.

CPU per request, three ways (see BENCHMARKS.md, "Lab throughput"):
  machine   busy CPU of the whole machine (/proc/stat: user+nice+system+irq+
            softirq) during the run, minus the same machine's idle rate measured
            just before the round, divided by requests. Includes the client, the
            router, the backends and the balancer: everything the request cost.
  added     machine CPU per request through a balancer minus the same through
            no balancer (direct): what the balancer adds, wherever it runs.
  own       the balancer's own accounting: HAProxy's utime+stime
            (/proc/PID/stat), xdplb's XDP program run time (kernel.bpf_stats_enabled,
            run_time_ns of the balancer program on every LB node).
"""
import argparse
import ctypes
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
WRK_LUA = r'''
-- tools/bench-lab: one JSON line with wrk's summary
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "bytes": %d, "duration_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
'''
# sh -c script: refuse unless this really is the lab's client namespace, then exec.
IN_NS = '[ "$(ip netns identify $$)" = "$0" ] || { echo "not in namespace $0" >&2; exit 99; }; exec "$@"'


class NapiProbe:
    """tools/bench-lab-napi.bpf.c, loaded and attached through libbpf (ctypes).

    Times, from tracepoints: NAPI polls of the LB nodes' XDP interfaces (`lb`),
    receive processing of packets arriving on the proxy's interface (`proxy`),
    and softirq time spent while HAProxy was the current task (`watch_pid`).
    Attached while this process lives; the kernel detaches it when it exits.
    """

    def __init__(self, obj_path, lb_ifaces, proxy_ifaces, watch_pid):
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
        vp = ctypes.c_void_p
        for fn, res, argt in [("bpf_object__open_file", vp, [ctypes.c_char_p, vp]),
                              ("bpf_object__load", ctypes.c_int, [vp]),
                              ("bpf_object__next_program", vp, [vp, vp]),
                              ("bpf_program__attach", vp, [vp]),
                              ("bpf_object__find_map_by_name", vp, [vp, ctypes.c_char_p]),
                              ("bpf_map__fd", ctypes.c_int, [vp]),
                              ("bpf_map_update_elem", ctypes.c_int, [ctypes.c_int, vp, vp, ctypes.c_uint64]),
                              ("bpf_map_lookup_elem", ctypes.c_int, [ctypes.c_int, vp, vp]),
                              ("libbpf_num_possible_cpus", ctypes.c_int, [])]:
            f = getattr(lib, fn)
            f.restype, f.argtypes = res, argt
        self.lib = lib
        obj = lib.bpf_object__open_file(obj_path.encode(), None)
        if not obj:
            raise OSError(ctypes.get_errno(), "bpf_object__open_file(%s)" % obj_path)
        if lib.bpf_object__load(obj) != 0:
            raise OSError(ctypes.get_errno(), "bpf_object__load(%s)" % obj_path)
        self.obj, self.links, prog = obj, [], None
        self.fd = {m: lib.bpf_map__fd(lib.bpf_object__find_map_by_name(obj, m.encode()))
                   for m in ("names", "times", "rx", "sirq_watched", "watch")}
        self.ncpu = lib.libbpf_num_possible_cpus()
        self.lb_slots = list(range(len(lb_ifaces)))
        self.proxy_slots = list(range(len(lb_ifaces), len(lb_ifaces) + len(proxy_ifaces)))
        for slot, name in enumerate(list(lb_ifaces) + list(proxy_ifaces)):
            self.update("names", ctypes.create_string_buffer(name.encode(), 16), ctypes.c_uint32(slot))
        self.update("watch", ctypes.c_uint32(0), ctypes.c_uint32(watch_pid or 0))
        while True:
            prog = lib.bpf_object__next_program(obj, prog)
            if not prog:
                break
            link = lib.bpf_program__attach(prog)
            if not link:
                raise OSError(ctypes.get_errno(), "bpf_program__attach")
            self.links.append(link)

    def update(self, m, key, val):
        if self.lib.bpf_map_update_elem(self.fd[m], ctypes.byref(key), ctypes.byref(val), 0) != 0:
            raise OSError(ctypes.get_errno(), "bpf_map_update_elem(%s)" % m)

    def percpu(self, m, key, width):
        buf = (ctypes.c_uint64 * (width * self.ncpu))()
        k = ctypes.c_uint32(key)
        if self.lib.bpf_map_lookup_elem(self.fd[m], ctypes.byref(k), buf) != 0:
            raise OSError(ctypes.get_errno(), "bpf_map_lookup_elem(%s)" % m)
        return [sum(buf[width * c + i] for c in range(self.ncpu)) for i in range(width)]

    def read(self):
        """{"lb": [ns, polls, packets], "proxy": [ns, packets], "sirq_watched": ns}, totals so far."""
        lb, px = [0, 0, 0], [0, 0]
        for slot in self.lb_slots:
            lb = [x + y for x, y in zip(lb, self.percpu("times", slot, 3))]
        for slot in self.proxy_slots:
            px = [x + y for x, y in zip(px, self.percpu("rx", slot, 3)[:2])]
        return {"lb": lb, "proxy": px, "sirq_watched": self.percpu("sirq_watched", 0, 1)[0]}


def log(msg):
    print("[bench-lab %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Bench:
    def __init__(self, a):
        self.a = a
        if not a.client_ns.startswith("xl-") or not os.path.exists("/run/netns/" + a.client_ns):
            sys.exit("bench-lab.py: %r is not a lab namespace; traffic starts only inside the lab" % a.client_ns)
        self.targets = [tuple(t.split("=", 1)) for t in a.target]
        self.prog_ids = [int(x) for x in a.xdp_prog_ids.split(",") if x]
        self.lua = os.path.join(a.state, "report.lua")
        with open(self.lua, "w") as f:
            f.write(WRK_LUA)
        self.bpf_stats_before = self.sysctl_get("kernel.bpf_stats_enabled")
        self.napi = None
        if a.probes and a.napi_probe:
            try:
                self.napi = NapiProbe(a.napi_probe, [x for x in a.lb_ifaces.split(",") if x],
                                      [x for x in a.proxy_ifaces.split(",") if x], a.haproxy_pid)
            except OSError as e:
                log("warning: the veth NAPI probe did not load (%s); no LB-node NAPI time" % e)
        self.runs = []            # every measured run, as dicts
        self.idle = []            # idle baselines (busy cores), one per round
        self.load_waits = []

    # ---- helpers -----------------------------------------------------------
    def in_client(self, argv, limit):
        """argv inside the client namespace (checked there), bounded by `timeout`."""
        return ["ip", "netns", "exec", self.a.client_ns, "sh", "-c", IN_NS, self.a.client_ns,
                "timeout", "-k", "5", str(int(limit)), *argv]

    @staticmethod
    def sysctl_get(key):
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()

    @staticmethod
    def sysctl_set(key, value):
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(str(value))

    @staticmethod
    def cpu():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
        return {"t": time.monotonic(), "busy": user + nice + system + irq + softirq,
                "user": user + nice, "system": system, "softirq": softirq + irq}

    @staticmethod
    def proc_ticks(pid):
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])          # utime + stime

    def prog_stats(self):
        cnt = ns = 0
        for pid in self.prog_ids:
            out = subprocess.run(["bpftool", "prog", "show", "id", str(pid), "--json"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode != 0:
                continue
            d = json.loads(out.stdout)
            cnt += d.get("run_cnt", 0)
            ns += d.get("run_time_ns", 0)
        return cnt, ns

    def wait_quiet(self, why):
        """The idle baseline, once the machine is quiet: at most --max-busy cores
        busy with the lab idle (our own traffic has stopped, so this sees other
        jobs, unlike the load average, which still remembers our last run)."""
        start = time.monotonic()
        last_log = None
        while True:
            idle = self.idle_baseline()
            waited = time.monotonic() - start
            if idle <= self.a.max_busy:
                self.load_waits.append({"before": why, "idle_busy_cores": round(idle, 3), "waited_s": round(waited)})
                return idle
            if waited >= self.a.load_wait:
                log("warning: %.2f cores busy with the lab idle after %d s of waiting; measuring anyway" % (idle, waited))
                self.load_waits.append({"before": why, "idle_busy_cores": round(idle, 3), "waited_s": round(waited),
                                        "gave_up": True})
                return idle
            if last_log is None or waited - last_log >= 60:
                last_log = waited
                log("%.2f cores busy with the lab idle (> %.2f: another job on this machine?); waiting (at most %d s more)"
                    % (idle, self.a.max_busy, self.a.load_wait - waited))
            time.sleep(7)

    def idle_baseline(self, seconds=3.0):
        """Busy cores of the idle lab (and anything else on the machine), and the
        LB nodes' NAPI time per second then (the agents' health checks)."""
        n0 = self.napi.read() if self.napi else None
        c0 = self.cpu()
        time.sleep(seconds)
        c1 = self.cpu()
        n1 = self.napi.read() if self.napi else None
        wall = c1["t"] - c0["t"]
        self.napi_idle_ns_per_s = (n1["lb"][0] - n0["lb"][0]) / wall if n0 else 0.0
        self.proxy_rx_idle_ns_per_s = (n1["proxy"][0] - n0["proxy"][0]) / wall if n0 else 0.0
        return (c1["busy"] - c0["busy"]) / TICK / wall

    # ---- checks ------------------------------------------------------------
    def preflight(self):
        for name, host in self.targets:
            url = "http://%s:%d/large" % (host, self.a.port)
            out = subprocess.run(self.in_client(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                                                 "--max-time", "5", url], 15), capture_output=True, text=True)
            got = out.stdout.strip()
            if got != "200 %d" % self.a.size:
                sys.exit("bench-lab.py: %s (%s) answered %r, want '200 %d' (stderr: %s)"
                         % (name, url, got, self.a.size, out.stderr.strip()))
        log("every target serves the %d-byte body from inside %s" % (self.a.size, self.a.client_ns))

    # ---- one wrk run -------------------------------------------------------
    def wrk(self, rnd, name, host, workload, idle):
        a = self.a
        path = "/large" if workload == "large" else "/small"
        argv = ["wrk", "-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.duration, "--timeout", "5s",
                "-s", self.lua]
        if workload == "short":
            argv += ["-H", "Connection: close"]
        argv.append("http://%s:%d%s" % (host, a.port, path))
        xdp = name == "xdplb" and a.probes and self.prog_ids
        napi = self.napi if name in ("xdplb", "haproxy") else None
        if xdp:
            self.sysctl_set("kernel.bpf_stats_enabled", 1)
        try:
            p0 = self.prog_stats() if xdp else None
            n0 = napi.read() if napi else None
            h0 = self.proc_ticks(a.haproxy_pid) if name == "haproxy" else None
            c0 = self.cpu()
            out = subprocess.run(self.in_client(argv, a.duration + 30), capture_output=True, text=True)
            c1 = self.cpu()
            h1 = self.proc_ticks(a.haproxy_pid) if name == "haproxy" else None
            n1 = napi.read() if napi else None
            p1 = self.prog_stats() if xdp else None
        finally:
            if xdp:
                self.sysctl_set("kernel.bpf_stats_enabled", self.bpf_stats_before)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")]
        if out.returncode != 0 or not line:
            sys.exit("bench-lab.py: wrk against %s failed (exit %d): %s %s" % (name, out.returncode, out.stdout[-800:], out.stderr[-800:]))
        w = json.loads(line[0][8:])
        secs = w["duration_us"] / 1e6
        wall = c1["t"] - c0["t"]
        req = max(w["requests"], 1)
        busy = (c1["busy"] - c0["busy"]) / TICK
        r = {"round": rnd, "target": name, "workload": workload, "command": shlex.join(argv),
             "requests": w["requests"], "seconds": round(secs, 3), "rps": w["requests"] / secs,
             "errors": w["errors"], "latency_us": w["latency_us"], "wire_bytes": w["bytes"],
             "machine_busy_cores": busy / wall, "idle_busy_cores": idle,
             "machine_cpu_us_per_req": max(busy - idle * wall, 0) / req * 1e6,
             "softirq_cores": (c1["softirq"] - c0["softirq"]) / TICK / wall,
             "system_cores": (c1["system"] - c0["system"]) / TICK / wall,
             "user_cores": (c1["user"] - c0["user"]) / TICK / wall}
        r["p50_ms"] = w["latency_us"]["p50"] / 1e3
        r["p99_ms"] = w["latency_us"]["p99"] / 1e3
        if workload == "large":
            r["goodput_gbit"] = w["requests"] * a.size * 8 / secs / 1e9
        if h0 is not None:
            r["haproxy_process_us_per_req"] = (h1 - h0) / TICK / req * 1e6
            r["haproxy_cores"] = (h1 - h0) / TICK / wall
            if n0 is not None:
                # The proxy node: HAProxy's own user and system time (without the
                # softirq work the kernel charged to it while it was on the CPU)
                # plus the receive processing of packets arriving on its interface.
                sirq = n1["sirq_watched"] - n0["sirq_watched"]
                rx_ns = max(n1["proxy"][0] - n0["proxy"][0] - self.proxy_rx_idle_ns_per_s * wall, 0)
                r["haproxy_softirq_charged_us_per_req"] = sirq / req / 1e3
                r["proxy_rx_us_per_req"] = rx_ns / req / 1e3
                r["proxy_rx_packets_per_req"] = (n1["proxy"][1] - n0["proxy"][1]) / req
                r["own_cpu_us_per_req"] = max(r["haproxy_process_us_per_req"] - sirq / req / 1e3, 0) + rx_ns / req / 1e3
        if p0 is not None:
            pkts, ns = p1[0] - p0[0], p1[1] - p0[1]
            r["xdp_prog_us_per_req"] = ns / req / 1e3
            r["xdp_packets_per_req"] = pkts / req
            r["xdp_prog_ns_per_packet"] = ns / pkts if pkts else None
            r["xdp_prog_cores"] = ns / 1e9 / wall
        if n0 is not None and name == "xdplb":
            ns, polls, pkts = (n1["lb"][k] - n0["lb"][k] for k in range(3))
            r["lb_napi_idle_ns_per_s"] = self.napi_idle_ns_per_s
            r["own_cpu_us_per_req"] = max(ns - self.napi_idle_ns_per_s * wall, 0) / req / 1e3
            r["lb_napi_polls_per_req"] = polls / req
            r["lb_napi_packets_per_req"] = pkts / req
            r["lb_napi_ns_per_packet"] = ns / pkts if pkts else None
            r["lb_napi_cores"] = ns / 1e9 / wall
        errs = sum(w["errors"].values())
        extra = ""
        if "goodput_gbit" in r:
            extra += ", %.2f Gbit/s" % r["goodput_gbit"]
        extra += ", machine %.0f µs/req" % r["machine_cpu_us_per_req"]
        if "own_cpu_us_per_req" in r:
            extra += ", LB node %.2f µs/req" % r["own_cpu_us_per_req"]
        if "xdp_prog_us_per_req" in r:
            extra += " (XDP program %.2f)" % r["xdp_prog_us_per_req"]
        log("  %-7s %-5s %9.0f req/s%s%s" % (name, workload, r["rps"], extra, (", %d errors %s" % (errs, w["errors"])) if errs else ""))
        self.runs.append(r)

    # ---- bulk --------------------------------------------------------------
    def iperf(self, name, host, reverse):
        a = self.a
        argv = ["iperf3", "-c", host, "-p", str(a.bulk_port), "-t", str(a.bulk_seconds), "-J", "--connect-timeout", "3000"]
        if reverse:
            argv.append("-R")
        c0 = self.cpu()
        out = subprocess.run(self.in_client(argv, a.bulk_seconds + 30), capture_output=True, text=True)
        c1 = self.cpu()
        try:
            d = json.loads(out.stdout)
            bps = d["end"]["sum_received"]["bits_per_second"]
            retr = d["end"].get("sum_sent", {}).get("retransmits")
        except (ValueError, KeyError) as e:
            log("warning: iperf3 to %s failed (%s): %s" % (name, e, (out.stdout + out.stderr)[-400:]))
            return
        r = {"target": name, "workload": "bulk_download" if reverse else "bulk_upload", "command": shlex.join(argv),
             "gbit": bps / 1e9, "retransmits": retr,
             "machine_busy_cores": (c1["busy"] - c0["busy"]) / TICK / (c1["t"] - c0["t"])}
        log("  %-7s %-8s %6.2f Gbit/s" % (name, "download" if reverse else "upload", r["gbit"]))
        self.runs.append(r)

    # ---- the whole thing ---------------------------------------------------
    def run(self):
        a = self.a
        self.preflight()
        started = time.time()
        for rnd in range(a.rounds):
            idle = self.wait_quiet("round %d" % (rnd + 1))
            self.idle.append(idle)
            k = rnd % len(self.targets)
            order = self.targets[k:] + self.targets[:k]
            log("round %d/%d: idle machine %.2f cores busy; order %s" % (rnd + 1, a.rounds, idle, " ".join(n for n, _ in order)))
            for workload in ("large", "short"):
                for name, host in order:
                    self.wrk(rnd + 1, name, host, workload, idle)
                    time.sleep(1)
        if a.bulk_seconds:
            self.wait_quiet("bulk")
            log("bulk TCP, one iperf3 stream, %d s each (VIP port %d has backend 1 only)" % (a.bulk_seconds, a.bulk_port))
            for reverse in (False, True):
                for name, host in self.targets:
                    self.iperf(name, a.bulk_direct if name == "direct" and a.bulk_direct else host, reverse)
                    time.sleep(1)
        self.seconds = time.time() - started

    # ---- report ------------------------------------------------------------
    def summary(self):
        keys = ["rps", "goodput_gbit", "machine_cpu_us_per_req", "own_cpu_us_per_req", "xdp_prog_us_per_req",
                "xdp_packets_per_req", "xdp_prog_ns_per_packet", "lb_napi_polls_per_req", "lb_napi_packets_per_req",
                "lb_napi_ns_per_packet", "machine_busy_cores", "haproxy_cores", "xdp_prog_cores", "lb_napi_cores",
                "softirq_cores", "system_cores", "user_cores", "gbit", "p50_ms", "p99_ms",
                "haproxy_process_us_per_req", "haproxy_softirq_charged_us_per_req", "proxy_rx_us_per_req",
                "proxy_rx_packets_per_req"]
        out = {}
        for r in self.runs:
            out.setdefault(r["workload"], {}).setdefault(r["target"], []).append(r)
        s = {}
        for wl, per in out.items():
            for tgt, runs in per.items():
                m = {}
                for key in keys:
                    vals = [r[key] for r in runs if r.get(key) is not None]
                    if vals:
                        m[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}
                m["errors"] = sum(sum(r["errors"].values()) for r in runs if "errors" in r)
                s.setdefault(wl, {})[tgt] = m
        # What a balancer adds: machine CPU per request minus the direct path's.
        for wl, per in s.items():
            base = per.get("direct", {}).get("machine_cpu_us_per_req", {}).get("median")
            for tgt, m in per.items():
                if base is not None and tgt != "direct" and "machine_cpu_us_per_req" in m:
                    m["added_cpu_us_per_req"] = {"median": m["machine_cpu_us_per_req"]["median"] - base}
        return s

    def ratios(self, s):
        def med(wl, tgt, key):
            return s.get(wl, {}).get(tgt, {}).get(key, {}).get("median")

        out = {}
        for wl, key, label in [("large", "rps", "large_rps"), ("large", "goodput_gbit", "large_goodput"),
                               ("short", "rps", "short_conns_per_s"),
                               ("large", "machine_cpu_us_per_req", "large_machine_cpu_per_req"),
                               ("short", "machine_cpu_us_per_req", "short_machine_cpu_per_req"),
                               ("large", "added_cpu_us_per_req", "large_added_cpu_per_req"),
                               ("short", "added_cpu_us_per_req", "short_added_cpu_per_req"),
                               ("large", "own_cpu_us_per_req", "large_own_cpu_per_req"),
                               ("short", "own_cpu_us_per_req", "short_own_cpu_per_req"),
                               ("bulk_upload", "gbit", "bulk_upload"), ("bulk_download", "gbit", "bulk_download")]:
            x, h = med(wl, "xdplb", key), med(wl, "haproxy", key)
            if x is not None and h:
                out[label] = x / h
        return out

    def table(self, s, ratios):
        a = self.a
        names = [n for n, _ in self.targets]

        def cell(wl, tgt, key, fmt):
            m = s.get(wl, {}).get(tgt, {}).get(key)
            if not m:
                return "-"
            txt = fmt % m["median"]
            if m.get("n", 1) > 1 and m["median"]:
                spread = (m["max"] - m["min"]) / 2 / abs(m["median"]) * 100
                txt += " ±%.0f%%" % spread
            return txt

        rows = [
            ("%s-byte GET, %d conns" % (a.size, a.connections), None, None, None, None),
            ("  requests/s", "large", "rps", "%.0f", "large_rps"),
            ("  goodput Gbit/s", "large", "goodput_gbit", "%.2f", "large_goodput"),
            ("  latency p50 ms", "large", "p50_ms", "%.1f", None),
            ("  latency p99 ms", "large", "p99_ms", "%.1f", None),
            ("  machine CPU µs/req", "large", "machine_cpu_us_per_req", "%.1f", "large_machine_cpu_per_req"),
            ("  added vs direct µs/req", "large", "added_cpu_us_per_req", "%.1f", "large_added_cpu_per_req"),
            ("  LB node CPU µs/req", "large", "own_cpu_us_per_req", "%.2f", "large_own_cpu_per_req"),
            ("    XDP program µs/req", "large", "xdp_prog_us_per_req", "%.2f", None),
            ("    packets/req at the LB", "large", "xdp_packets_per_req", "%.1f", None),
            ("    HAProxy utime+stime", "large", "haproxy_process_us_per_req", "%.1f", None),
            ("    - softirq charged to it", "large", "haproxy_softirq_charged_us_per_req", "%.1f", None),
            ("    + its interface's receive", "large", "proxy_rx_us_per_req", "%.1f", None),
            ("short connections, %d conns" % a.connections, None, None, None, None),
            ("  connections/s", "short", "rps", "%.0f", "short_conns_per_s"),
            ("  latency p50 ms", "short", "p50_ms", "%.1f", None),
            ("  latency p99 ms", "short", "p99_ms", "%.1f", None),
            ("  machine CPU µs/req", "short", "machine_cpu_us_per_req", "%.1f", "short_machine_cpu_per_req"),
            ("  added vs direct µs/req", "short", "added_cpu_us_per_req", "%.1f", "short_added_cpu_per_req"),
            ("  LB node CPU µs/req", "short", "own_cpu_us_per_req", "%.2f", "short_own_cpu_per_req"),
            ("    XDP program µs/req", "short", "xdp_prog_us_per_req", "%.2f", None),
            ("    packets/req at the LB", "short", "xdp_packets_per_req", "%.1f", None),
            ("    HAProxy utime+stime", "short", "haproxy_process_us_per_req", "%.1f", None),
            ("    - softirq charged to it", "short", "haproxy_softirq_charged_us_per_req", "%.1f", None),
            ("    + its interface's receive", "short", "proxy_rx_us_per_req", "%.1f", None),
            ("bulk TCP, 1 stream, backend 1", None, None, None, None),
            ("  upload Gbit/s", "bulk_upload", "gbit", "%.2f", "bulk_upload"),
            ("  download Gbit/s", "bulk_download", "gbit", "%.2f", "bulk_download"),
        ]
        w0 = 32
        lines = ["%-*s" % (w0, "") + "".join("%16s" % n for n in names) + "%16s" % "xdplb/haproxy"]
        for i, (label, wl, key, fmt, rk) in enumerate(rows):
            if wl is None:
                section = []
                for row in rows[i + 1:]:
                    if row[1] is None:
                        break
                    section.append(row[1])
                if any(w in s for w in section):
                    lines.append(label)
                continue
            if wl not in s:
                continue
            r = ratios.get(rk) if rk else None
            cells = [cell(wl, n, key, fmt) for n in names]
            if all(c == "-" for c in cells):
                continue
            lines.append("%-*s" % (w0, label) + "".join("%16s" % c for c in cells)
                         + "%16s" % ("%.2f" % r if r is not None else "-"))
        return "\n".join(lines)

    def machine(self):
        model = ""
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
        mem = next((ln.split()[1] for ln in open("/proc/meminfo") if ln.startswith("MemTotal")), "0")

        def ver(argv):
            try:
                o = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (o.stdout + o.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.SubprocessError):
                return None

        commit = ver(["git", "-C", self.a.repo, "rev-parse", "--short", "HEAD"])
        return {"cpu": model, "cpus": os.cpu_count(), "mem_gib": round(int(mem) / 1048576, 1),
                "kernel": platform.release(), "wrk": ver(["wrk", "-v"]), "haproxy": ver(["haproxy", "-v"]),
                "nginx": ver(["nginx", "-v"]), "iperf3": ver(["iperf3", "-v"]), "xdplb": self.a.xdplb,
                "commit": commit}

    def report(self):
        a = self.a
        s = self.summary()
        ratios = self.ratios(s)
        m = self.machine()
        print()
        print("==== bench-lab: %d LB nodes (xdplb, native XDP), HAProxy 2.6 TCP mode in %s, %d backends (nginx, GRE decap %s), "
              "%d round(s) of %d s; medians, ± half the min-max spread ====" % (a.lb_nodes, "xl-px", a.backends, a.decap_installed.replace(",", "/") or a.decap_mode,
                                                                                  a.rounds, a.duration))
        print("machine: %s, %d CPUs, kernel %s; idle baseline %.2f cores busy (median)"
              % (m["cpu"], m["cpus"], m["kernel"], statistics.median(self.idle) if self.idle else 0))
        print(self.table(s, ratios))
        shown = set()
        for r in self.runs:
            if r["target"] == "xdplb" and r["workload"] not in shown:
                shown.add(r["workload"])
                print("%-14s %s" % (r["workload"] + ":", r["command"].replace(self.lua, "report.lua")))
        print("machine = whole-machine busy CPU per request minus the idle rate (client, router, backends, balancer);")
        print("added = machine minus direct's. LB node: xdplb = NAPI poll time of the LB nodes' interfaces (receive,")
        print("XDP program, XDP_TX); HAProxy = its utime+stime, minus the softirq work the kernel ran (and charged to it)")
        print("while it was on the CPU, plus the receive processing of its interface's packets. XDP program = bpf_stats.")
        errors = {wl: {t: v["errors"] for t, v in per.items() if v.get("errors")} for wl, per in s.items()}
        errors = {k: v for k, v in errors.items() if v}
        if errors:
            print("wrk errors (connect/read/write/status/timeout, summed):", errors)
        gave_up = [w for w in self.load_waits if w.get("gave_up")]
        if gave_up:
            print("warning: measured on a busy machine (gave up waiting): %s" % gave_up)
        if a.json:
            doc = {"machine": m,
                   "settings": {"lb_nodes": a.lb_nodes, "backends": a.backends, "decap_mode": a.decap_mode,
                                "decap_installed": [m for m in a.decap_installed.split(",") if m], "duration_s": a.duration,
                                "connections": a.connections, "threads": a.threads, "rounds": a.rounds,
                                "body_bytes": a.size, "bulk_seconds": a.bulk_seconds, "probes": bool(a.probes), "napi_probe": self.napi is not None,
                                "targets": dict(self.targets), "port": a.port, "bulk_port": a.bulk_port},
                   "idle_baseline_cores": self.idle, "load": self.load_waits, "seconds": round(self.seconds, 1),
                   "summary": s, "ratios_xdplb_over_haproxy": ratios, "runs": self.runs}
            with open(a.json, "w") as f:
                json.dump(doc, f, indent=1)
            log("JSON written to %s" % a.json)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--client-ns", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--target", action="append", required=True, help="NAME=ADDRESS")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bulk-port", type=int, required=True)
    p.add_argument("--bulk-direct", help="address of the bulk baseline (backend 1's own)")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bulk-seconds", type=int, default=5)
    p.add_argument("--haproxy-pid", type=int, required=True)
    p.add_argument("--xdp-prog-ids", default="")
    p.add_argument("--probes", type=int, default=1, help="1: bpf_stats and the NAPI probe during xdplb runs")
    p.add_argument("--napi-probe", help="compiled tools/bench-lab-napi.bpf.c")
    p.add_argument("--lb-ifaces", default="", help="the LB nodes' XDP interfaces")
    p.add_argument("--proxy-ifaces", default="", help="the proxy namespace's interface")
    p.add_argument("--load-wait", type=float, default=600)
    p.add_argument("--max-busy", type=float, default=0.3)
    p.add_argument("--lb-nodes", type=int, default=2)
    p.add_argument("--decap-mode", default="auto", help="the backends' GRE decapsulation (tools/gre-decap --mode)")
    p.add_argument("--decap-installed", default="", help="each backend's decapsulation as gre-decap status reports it")
    p.add_argument("--backends", type=int, default=4)
    p.add_argument("--xdplb", default="")
    p.add_argument("--repo", default=".")
    p.add_argument("--json")
    # SIGTERM (tools/bench-lab's cleanup) unwinds like Ctrl-C: subprocess.run
    # kills the running load generator and bpf_stats is restored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(p.parse_args())
    try:
        b.run()
    finally:
        if b.sysctl_get("kernel.bpf_stats_enabled") != b.bpf_stats_before:
            b.sysctl_set("kernel.bpf_stats_enabled", b.bpf_stats_before)
    b.report()


if __name__ == "__main__":
    main()
