#!/usr/bin/python3
"""Side-by-side benchmark of two director binaries ("ours" and "stock").

Brings up, via tests/integration/rig.py, N loopback backends and two standalone
director proxies in front of the same backends: one running the stock director,
one running ours. Then, in alternating rounds, for each director:
  1. auth lookups on its login/director socket: pipelined (fresh users, then
     the same users again = known users) and one-at-a-time, with the director's
     CPU time per lookup (and the auth process's);
  2. the same client against that instance's own auth-login socket (the socket
     the director itself connects to): the "director cost = 0" baseline;
  3. IMAP LOGIN/LOGOUT sessions/s through the proxy at concurrency C.
Prints a table (stock, ours, ours/stock) and the director/direct-auth ratio,
plus each director's RSS at the end. Reports numbers; it does not pass or fail
on them (exit status 1 only if the rig could not be brought up at all).

It starts and stops only the Dovecot masters it brought up (by recorded pid,
through rig.py). Every step has a deadline.

usage: run-bench.py [--ours BIN] [--stock BIN] [--bench-dir DIR] [--rounds N]
                    [--auth-secs S] [--serial-secs S] [--imap-secs S] [--quick] ...
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import rig  # noqa: E402

DEFAULT_OURS = "/tmp/build-bench/src/director/director"
DEFAULT_BENCH_DIR = "/tmp/build-bench/bench"


# --- process probes ------------------------------------------------------------

def child_pids(master_pid):
    """{pid: cmdline} of the direct children of a master."""
    res = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open("/proc/%s/stat" % p) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != master_pid:
                continue
            with open("/proc/%s/cmdline" % p, "rb") as f:
                res[int(p)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return res


def auth_pid(inst):
    """The instance's main auth process (not an auth worker)."""
    for pid, cmd in child_pids(inst.master_pid).items():
        words = cmd.split()
        # the title is "<instance_name>/auth"; workers are ".../auth worker"
        if words and words[0].endswith("/auth") and len(words) == 1:
            return pid
    return None


def cpu_ns(pid):
    """On-CPU nanoseconds of pid (schedstat; stat ticks as a fallback)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0])
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")
    return None


def proc_status(pid, key):
    """A kB value (VmRSS, VmHWM) from /proc/<pid>/status, or None."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    return None


def set_affinity(pid, cpus):
    """Pin every thread of pid (a process this run started) to cpus."""
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/%d/task" % pid):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)


def machine_busy(secs=0.5):
    """Fraction of all CPUs busy over secs, from /proc/stat. Sampled while
    the rig is idle, it measures load from outside the benchmark."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    t1, i1 = sample()
    time.sleep(secs)
    t2, i2 = sample()
    return 1.0 - (i2 - i1) / (t2 - t1) if t2 > t1 else None


def parse_kv(line):
    res = {}
    for word in line.split()[1:]:
        k, sep, v = word.partition("=")
        if not sep:
            continue
        try:
            res[k] = float(v)
        except ValueError:
            res[k] = v
    return res


# --- one measurement --------------------------------------------------------------

class Runner:
    def __init__(self, args, log):
        self.args = args
        self.log = log
        self.auth_bench = os.path.join(args.bench_dir, "auth-bench")
        self.imap_bench = os.path.join(args.bench_dir, "imap-bench")
        self.client_cpus = None     # set while the auth phase is pinned

    def _run(self, cmd, deadline_secs, client_cpus=None):
        self.log.write("$ %s%s\n" % ("[cpus %s] " % sorted(client_cpus) if client_cpus else "",
                                     " ".join(cmd)))
        pin = (lambda: os.sched_setaffinity(0, client_cpus)) if client_cpus else None
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=deadline_secs, preexec_fn=pin)
        except subprocess.TimeoutExpired:
            self.log.write("  timed out after %ss\n" % deadline_secs)
            return None
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        self.log.write(out + err)
        self.log.flush()
        lines = [x for x in out.splitlines() if ": " in x and "=" in x]
        if not lines:
            sys.stderr.write("bench: no result from %s: %s\n" % (cmd[0], err.strip()[:300]))
            return None
        res = parse_kv(lines[-1])
        res["exit"] = p.returncode
        if err.strip():
            res["error"] = err.strip().splitlines()[-1]
        return res

    def auth(self, label, socket_path, probes, connections, inflight, secs, users,
             user_offset, expect_host):
        cmd = [self.auth_bench, "--label", label, "--socket", socket_path,
               "--connections", str(connections), "--inflight", str(inflight),
               "--duration", str(secs), "--timeout", str(secs + 30),
               "--users", str(users), "--user-offset", str(user_offset)]
        if expect_host:
            cmd.append("--expect-host")
        for name, pid in probes.items():
            if pid:
                cmd += ["--pid", "%s=%d" % (name, pid)]
        return self._run(cmd, secs + 40, self.client_cpus)

    def imap(self, label, inst, director_pid, secs):
        a = self.args
        cmd = [self.imap_bench, "--label", label, "--host", inst.ip, "--port", "143",
               "--connections", str(a.imap_connections), "--duration", str(secs),
               "--users", str(a.imap_users), "--user-offset", "1"]
        before = cpu_ns(director_pid) if director_pid else None
        res = self._run(cmd, secs + 30)
        after = cpu_ns(director_pid) if director_pid else None
        if res is not None and before is not None and after is not None and res.get("ok"):
            res["director_cpu_us_per_session"] = (after - before) / 1e3 / res["ok"]
        return res


class DirectorUnderTest:
    """Pids and per-run state of one director instance."""

    def __init__(self, inst):
        self.inst = inst
        self.name = inst.bench_name
        self.dpid = inst.director_pid()
        self.apid = auth_pid(inst)
        self.known = 0              # users inserted by this round's dir-pipe-new
        self.rounds = []            # one {metric: value} per round

    def probes(self):
        return {"director": self.dpid, "auth": self.apid}


def cpu_us(r):
    return r.get("director_sched_us_per_lookup", r.get("director_cpu_us_per_lookup"))


def step_pipe(runner, t, m, rnd, args):
    """Pipelined lookups with fresh users through the director, then the same
    client straight on auth-login (adjacent in time, so their ratio is fair)."""
    d = t.inst
    offset = 10_000_000 * (rnd + 1)   # fresh names each round, same for both directors
    r = runner.auth(t.name + "/dir-pipe-new", d.path("login/director"), t.probes(),
                    args.auth_connections, args.inflight, args.auth_secs, 100_000_000,
                    offset, True)
    if r:
        m["dir_pipe_new_lps"] = r.get("lookups_per_sec")
        m["dir_pipe_new_lat_us"] = r.get("mean_latency_us")
        m["dir_pipe_new_cpu_us"] = cpu_us(r)
        m["dir_pipe_new_slices"] = r.get("director_slices_per_klookup")
        m["dir_pipe_new_auth_util"] = r.get("auth_cpu_util")
        m["dir_pipe_new_director_util"] = r.get("director_cpu_util")
        t.known = int(r.get("requests") or 0)
    r = runner.auth(t.name + "/auth-pipe", d.path("auth-login"), {"auth": t.apid},
                    args.auth_connections, args.inflight, args.auth_secs, 100_000_000,
                    offset, False)
    if r:
        m["auth_pipe_lps"] = r.get("lookups_per_sec")
        m["auth_pipe_lat_us"] = r.get("mean_latency_us")
        m["auth_pipe_auth_util"] = r.get("auth_cpu_util")
    if m.get("dir_pipe_new_lps") and m.get("auth_pipe_lps"):
        m["ratio_pipe"] = m["dir_pipe_new_lps"] / m["auth_pipe_lps"]


def step_known(runner, t, m, rnd, args):
    """Pipelined lookups of the users dir-pipe-new just created."""
    if t.known <= 0:
        return
    r = runner.auth(t.name + "/dir-pipe-known", t.inst.path("login/director"), t.probes(),
                    args.auth_connections, args.inflight, args.auth_secs, t.known,
                    10_000_000 * (rnd + 1), True)
    if r:
        m["dir_pipe_known_lps"] = r.get("lookups_per_sec")
        m["dir_pipe_known_cpu_us"] = cpu_us(r)


def step_serial(runner, t, m, rnd, args):
    """One lookup at a time through the director, then straight on auth-login."""
    d = t.inst
    offset = 10_000_000 * (rnd + 1) + 5_000_000
    r = runner.auth(t.name + "/dir-serial", d.path("login/director"), t.probes(), 1, 1,
                    args.serial_secs, 100_000_000, offset, True)
    if r:
        m["dir_serial_lps"] = r.get("lookups_per_sec")
        m["dir_serial_lat_us"] = r.get("mean_latency_us")
        m["dir_serial_cpu_us"] = cpu_us(r)
    r = runner.auth(t.name + "/auth-serial", d.path("auth-login"), {"auth": t.apid}, 1, 1,
                    args.serial_secs, 100_000_000, offset, False)
    if r:
        m["auth_serial_lps"] = r.get("lookups_per_sec")
        m["auth_serial_lat_us"] = r.get("mean_latency_us")
    if m.get("dir_serial_lps") and m.get("auth_serial_lps"):
        m["ratio_serial"] = m["dir_serial_lps"] / m["auth_serial_lps"]


def step_imap(runner, t, m, rnd, args):
    """IMAP LOGIN/LOGOUT sessions through the proxy."""
    r = runner.imap(t.name + "/imap", t.inst, t.dpid, args.imap_secs)
    if r:
        m["imap_sps"] = r.get("sessions_per_sec")
        m["imap_p50_ms"] = r.get("p50_latency_ms")
        m["imap_p99_ms"] = r.get("p99_latency_ms")
        m["imap_cpu_us"] = r.get("director_cpu_us_per_session")
        m["imap_errors"] = (r.get("errors") or 0) + (r.get("timeouts") or 0) + \
            (r.get("login_failed") or 0)


# The calls a director makes on its lookup path (and a few more, so that a new
# one shows up in the "other" remainder rather than nowhere).
PERF_SYSCALLS = ("read", "write", "writev", "readv", "epoll_wait", "epoll_ctl",
                 "recvfrom", "sendto", "recvmsg", "sendmsg", "setsockopt", "getsockopt",
                 "accept4", "close", "fcntl", "ioctl")


def perf_stat_summary(path):
    """{event: count} from a `perf stat -x,` output file."""
    res = {}
    with contextlib.suppress(OSError):
        with open(path) as f:
            for line in f:
                w = line.strip().split(",")
                if len(w) >= 3 and w[0].isdigit():
                    res[w[2].split(":")[-1].replace("sys_enter_", "")] = int(w[0])
    return res


def step_syscalls(runner, t, m, rnd, args):
    """--syscalls: one extra pipelined run (new users) with `perf stat` counting
    the director's system calls (tracepoints: every call, little overhead) and
    context switches per lookup."""
    d = t.inst
    out = os.path.join(d.dir, "perf-stat-%d.txt" % rnd)
    events = ["raw_syscalls:sys_enter", "context-switches"] + \
        ["syscalls:sys_enter_%s" % c for c in PERF_SYSCALLS]
    st = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e", ",".join(events),
                           "-p", str(t.dpid)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)     # perf stat has no "attached" signal
        offset = 10_000_000 * (rnd + 1) + 7_000_000
        r = runner.auth(t.name + "/dir-pipe-perf", d.path("login/director"), {},
                        args.auth_connections, args.inflight, args.auth_secs, 100_000_000,
                        offset, True)
    finally:
        st.send_signal(2)
        try:
            st.wait(timeout=20)
        except subprocess.TimeoutExpired:
            st.kill()
            st.wait()
    counts = perf_stat_summary(out)
    n = r.get("requests") if r else None
    if n and counts.get("sys_enter"):
        m["syscalls_per_lookup"] = counts["sys_enter"] / n
        if "context-switches" in counts:
            m["ctxsw_per_lookup"] = counts["context-switches"] / n
        top = sorted(((counts[c], c) for c in PERF_SYSCALLS if counts.get(c)), reverse=True)[:6]
        m["syscalls_top"] = " ".join("%s=%.2f" % (k, c / n) for c, k in top)
        runner.log.write("%s syscalls per lookup: %.2f (%s)\n" % (
            t.name, m["syscalls_per_lookup"], m["syscalls_top"]))
    else:
        runner.log.write("%s: perf stat counted nothing (is perf installed?)\n" % t.name)


def pin_auth_phase(runner, duts, on):
    """--pin: director + auth on CPU 0, the auth client on the other CPUs
    (pipelined throughput then reflects auth+director CPU per lookup; one at a
    time has no cross-CPU wakeups). Off: everything on all CPUs."""
    ncpu = os.cpu_count() or 1
    if ncpu < 2:
        return
    for t in duts:
        for pid in (t.dpid, t.apid):
            if pid:
                set_affinity(pid, {0} if on else set(range(ncpu)))
    runner.client_cpus = set(range(1, ncpu)) if on else None


def run_rounds(runner, duts, args):
    """Each step runs for every director back to back (order alternating per
    round), so background load drifts hit both alike."""
    steps = [step_pipe, step_known, step_serial, step_imap]
    if args.syscalls:
        steps.append(step_syscalls)
    for rnd in range(args.rounds):
        order = duts if rnd % 2 == 0 else list(reversed(duts))
        ms = {t.name: {} for t in duts}
        for t in order:
            ms[t.name]["background_busy"] = machine_busy()
        sys.stdout.write("bench: round %d/%d (%s)\n" % (rnd + 1, args.rounds,
                                                        ", ".join(t.name for t in order)))
        sys.stdout.flush()
        for step in steps:
            pin_auth_phase(runner, duts, args.pin and step is not step_imap)
            for t in order:
                step(runner, t, ms[t.name], rnd, args)
        pin_auth_phase(runner, duts, False)
        for t in duts:
            t.rounds.append(ms[t.name])


# --- report ---------------------------------------------------------------------

ROWS = [
    # key, title, higher_is_better
    ("dir_pipe_new_lps", "director auth pipelined, new users (lookups/s)", True),
    ("dir_pipe_known_lps", "director auth pipelined, known users (lookups/s)", True),
    ("dir_serial_lps", "director auth one-at-a-time (lookups/s)", True),
    ("auth_pipe_lps", "direct auth-login pipelined (lookups/s)", True),
    ("auth_serial_lps", "direct auth-login one-at-a-time (lookups/s)", True),
    ("ratio_pipe", "  director/direct-auth pipelined", True),
    ("ratio_serial", "  director/direct-auth one-at-a-time", True),
    ("dir_pipe_new_lat_us", "director pipelined mean latency (us)", False),
    ("dir_serial_lat_us", "director one-at-a-time mean latency (us)", False),
    ("auth_serial_lat_us", "direct auth one-at-a-time mean latency (us)", False),
    ("dir_pipe_new_cpu_us", "director CPU/lookup pipelined new (us)", False),
    ("dir_pipe_known_cpu_us", "director CPU/lookup pipelined known (us)", False),
    ("dir_serial_cpu_us", "director CPU/lookup one-at-a-time (us)", False),
    ("dir_pipe_new_slices", "director scheduled in /1000 lookups pipelined new", False),
    ("dir_pipe_new_director_util", "director CPU util during director pipe", None),
    ("dir_pipe_new_auth_util", "auth process CPU util during director pipe", None),
    ("auth_pipe_auth_util", "auth process CPU util during direct pipe", None),
    ("syscalls_per_lookup", "director system calls/lookup pipelined (perf)", False),
    ("ctxsw_per_lookup", "director context switches/lookup pipelined (perf)", False),
    ("imap_sps", "IMAP sessions/s through proxy", True),
    ("imap_p50_ms", "IMAP session p50 (ms)", False),
    ("imap_p99_ms", "IMAP session p99 (ms)", False),
    ("imap_cpu_us", "director CPU/IMAP session (us)", False),
    ("imap_errors", "IMAP errors+timeouts (sum)", False),
    ("rss_kb", "director VmRSS at end (kB)", False),
    ("hwm_kb", "director VmHWM at end (kB)", False),
    ("restarted", "director pid changed during run (1 = crashed?)", None),
    ("background_busy", "machine busy while rig idle, worst round (0..1)", None),
]


def spread(rounds, key):
    """(max - min) / median of a metric over rounds, or None."""
    vals = [m[key] for m in rounds if isinstance(m.get(key), (int, float))]
    if len(vals) < 2 or not statistics.median(vals):
        return None
    return (max(vals) - min(vals)) / abs(statistics.median(vals))


def combine(rounds):
    """Median of each metric over rounds (None values dropped)."""
    keys = set()
    for m in rounds:
        keys.update(m)
    res = {}
    for k in keys:
        vals = [m[k] for m in rounds if isinstance(m.get(k), (int, float))]
        if vals:
            if k == "imap_errors":
                res[k] = sum(vals)
            elif k == "background_busy":
                res[k] = max(vals)      # the worst round is what matters
            else:
                res[k] = statistics.median(vals)
    return res


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.3f" % v if abs(v) < 1 else "%.2f" % v


def round_ratios(stock_rounds, ours_rounds, key):
    """ours/stock of a metric per round (the two ran back to back in a round)."""
    res = []
    for sm, om in zip(stock_rounds, ours_rounds):
        sv, ov = sm.get(key), om.get(key)
        if isinstance(sv, (int, float)) and isinstance(ov, (int, float)) and sv:
            res.append(ov / sv)
    return res


def print_table(stock, ours, ours_note, stock_rounds, ours_rounds, out=sys.stdout):
    w = 50
    out.write("\n%-*s %10s %10s %10s %13s %13s\n" % (
        w, "metric (median over rounds)", "stock", "ours", "ours/stock", "ratio min-max",
        "spread s/o %"))
    out.write("-" * (w + 61) + "\n")
    for key, title, _ in ROWS:
        s, o = stock.get(key), ours.get(key)
        if s is None and o is None:
            continue
        ratio = o / s if isinstance(s, (int, float)) and isinstance(o, (int, float)) and s \
            else None
        rr = round_ratios(stock_rounds, ours_rounds, key) \
            if key not in ("background_busy", "rss_kb", "hwm_kb") else []
        rr_txt = "%.2f-%.2f" % (min(rr), max(rr)) if len(rr) >= 2 else "-"
        sp = [spread(r, key) if key != "background_busy" else None
              for r in (stock_rounds, ours_rounds)]
        sp_txt = "/".join("%.0f" % (100 * x) if x is not None else "-" for x in sp)
        out.write("%-*s %10s %10s %10s %13s %13s\n" % (
            w, title, fmt(s), fmt(o), "%.3f" % ratio if ratio is not None else "-", rr_txt,
            sp_txt))
    for name, rounds in (("stock", stock_rounds), ("ours", ours_rounds)):
        tops = [m["syscalls_top"] for m in rounds if m.get("syscalls_top")]
        if tops:
            out.write("%s system calls/lookup, last round: %s\n" % (name, tops[-1]))
    if ours_note:
        out.write("\nours: %s\n" % ours_note)
    out.write("(lookups/s, sessions/s: higher is better; latency, CPU, RSS: lower is better;\n"
              " ratio min-max: ours/stock of each round; spread = (max-min)/median over\n"
              " rounds: ratios inside it are noise)\n")


# --- ring benchmark hook --------------------------------------------------------

def run_ring_bench(args):
    """--ring: after the lookup table, run ring-bench.py (join, propagation)
    with the same two binaries and pass its table through unchanged. The ring
    benchmark is its own program; this only starts it."""
    cmd = [sys.executable, os.path.join(HERE, "ring-bench.py"), "--ours", args.ours,
           "--stock", args.stock]
    if args.quick:
        cmd.append("--quick")
    cmd += args.ring_args.split()
    sys.stdout.write("\nbench: %s\n" % " ".join(cmd))
    sys.stdout.flush()
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False).returncode


# --- main -------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", default=os.environ.get("DIRECTOR_BIN") or DEFAULT_OURS,
                    help="our director binary (env DIRECTOR_BIN; default %s)" % DEFAULT_OURS)
    ap.add_argument("--stock", default=os.environ.get("STOCK_DIRECTOR_BIN")
                    or rig.STOCK_DIRECTOR, help="stock director binary")
    ap.add_argument("--bench-dir", default=os.environ.get("BENCH_BUILD_DIR")
                    or DEFAULT_BENCH_DIR, help="where auth-bench and imap-bench are built")
    ap.add_argument("--backends", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--auth-secs", type=float, default=2.0)
    ap.add_argument("--serial-secs", type=float, default=1.5)
    ap.add_argument("--imap-secs", type=float, default=5.0)
    ap.add_argument("--auth-connections", type=int, default=4)
    ap.add_argument("--inflight", type=int, default=64)
    ap.add_argument("--imap-connections", type=int, default=16)
    ap.add_argument("--imap-users", type=int, default=1000)
    ap.add_argument("--pin", action="store_true",
                    help="during the auth steps pin director+auth to CPU 0 and the auth "
                    "client to the other CPUs (needs an otherwise idle machine)")
    ap.add_argument("--syscalls", action="store_true",
                    help="add a pipelined run per round with perf stat on the director: "
                    "system calls per lookup")
    ap.add_argument("--ring", action="store_true",
                    help="afterwards run ring-bench.py (join, propagation) on the same "
                    "binaries and print its table too")
    ap.add_argument("--ring-args", default="",
                    help="more options for ring-bench.py, e.g. \"--users 1000000\"")
    ap.add_argument("--quick", action="store_true", help="2 rounds, short runs (~40 s)")
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--log", help="raw client output (default: <rig dir>.log)")
    ap.add_argument("--keep", action="store_true", help="keep the rig temp dir")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.auth_secs, args.serial_secs, args.imap_secs = 2, 1.0, 1.0, 3.0
    for b in ("auth-bench", "imap-bench"):
        if not os.access(os.path.join(args.bench_dir, b), os.X_OK):
            sys.exit("bench: %s/%s not built (make -C bench bench)" % (args.bench_dir, b))
    if not os.access(args.stock, os.X_OK):
        sys.exit("bench: stock director %s not executable" % args.stock)
    if args.syscalls and shutil.which("perf") is None:
        sys.exit("bench: --syscalls needs perf (apt-get install linux-perf)")

    t0 = time.monotonic()
    c = rig.Cluster(nbackends=args.backends, nusers=args.imap_users, keep=args.keep)
    log_path = args.log or "%s.log" % c.dir
    log = open(log_path, "w")
    stock = c.add_director(bin=args.stock)
    stock.bench_name = "stock"
    ours = c.add_director(bin=args.ours)
    ours.bench_name = "ours"
    ours_note = None
    results = {"stock": [], "ours": []}
    try:
        c.start(only=c.backends + [stock])
        if not os.access(args.ours, os.X_OK):
            ours_note = "binary %s not executable; not measured" % args.ours
        else:
            try:
                c.start(only=[ours])
            except Exception as e:  # noqa: BLE001 - a placeholder binary is expected
                ours_note = "did not come up (%s); not measured" % str(e).splitlines()[0]
                with contextlib.suppress(Exception):
                    c.stop(only=[ours])
        dirs = [stock] + ([ours] if ours_note is None else [])
        sys.stdout.write("bench: rig %s, backends %s; stock=%s (%s) ours=%s (%s)\n" % (
            c.dir, " ".join(b.ip for b in c.backends), args.stock, stock.ip, args.ours,
            ours.ip if ours_note is None else "not running"))
        sys.stdout.flush()
        runner = Runner(args, log)
        duts = []
        for d in dirs:
            t = DirectorUnderTest(d)
            if not t.dpid:
                sys.stderr.write("bench: %s: director process not found\n" % d.name)
                continue
            duts.append(t)
        run_rounds(runner, duts, args)
        for t in duts:
            results[t.name] = t.rounds
            pid = t.inst.director_pid()
            if pid and t.rounds:
                t.rounds[-1]["rss_kb"] = proc_status(pid, "VmRSS")
                t.rounds[-1]["hwm_kb"] = proc_status(pid, "VmHWM")
                if pid != t.dpid:
                    t.rounds[-1]["restarted"] = 1
    except Exception:
        c.failed = True
        log.close()
        c.cleanup()
        raise
    log.close()
    c.cleanup()
    sys.stdout.write("bench: raw client output in %s\n" % log_path)

    s, o = combine(results["stock"]), combine(results["ours"])
    print_table(s, o, ours_note, results["stock"], results["ours"])
    sys.stdout.write("total runtime %.0fs\n" % (time.monotonic() - t0))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"stock_bin": args.stock, "ours_bin": args.ours, "ours_note": ours_note,
                       "rounds": results, "median": {"stock": s, "ours": o}}, f, indent=1)
    if args.ring:
        if run_ring_bench(args) != 0:
            sys.stderr.write("bench: ring-bench.py measured nothing\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
