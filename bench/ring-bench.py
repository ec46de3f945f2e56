#!/usr/bin/python3
"""Ring benchmark: stock 2.3.19.1 director next to ours, in one run.

Measures, for director binaries "stock" and "ours" (see bench/RING.md):
  1. join (--join-rounds times, fresh directors each time; median shown):
     director A (alone; its director_servers lists only itself) is filled
     with N users by pipelined USER-MOVE on its director-admin socket; then
     `DIRECTOR-ADD B` (= doveadm director ring add) is sent to A and director B
     (director_servers = A B) is started. Measured: master launch of B until B
     reports `ring synced` and B's user count (HOST-LIST sum) equals A's.
     Pairs: stock->stock, ours->ours, and mixed stock->ours, ours->stock.
  2. VmRSS/VmHWM of A (after populate, after the join) and of B (after the join).
  3. propagation: in a 3-director ring, HOST-UPDATE <host> <n> on d0; the two
     other directors (in a 3-ring both are A's neighbours) are polled with
     HOST-LIST over their admin sockets until both show the new vhost count. Median and p90 over --updates changes, and
     the time until d0 replied OK (which stock sends after its SYNC came back).
  4. USER-LIST (--only userlist; not part of the default run): a standalone
     director of each binary is filled with N users, then one admin client
     reads USER-LIST (doveadm director map) as fast as it can while a second
     one sends HOST-LIST round trips back to back. Measured: USER-LIST total
     time, the slowest HOST-LIST round trip meanwhile (how long the director
     did not answer anyone; ring peers drop a director silent for 6 s), and
     VmHWM growth.
Prints a table (metric, stock, ours, ours/stock). Reports numbers; exit status
is 1 only if nothing could be measured.

It starts and stops only the Dovecot masters it brought up (by recorded pid,
through rig.py). Every wait has a deadline.

usage: ring-bench.py [--ours BIN] [--stock BIN] [--users N] [--quick]
                     [--join-rounds R] [--updates K] [--no-mixed] [--stall] [--only join|prop]
                     [--max-secs S] [--json FILE] [--keep]
"""

import argparse
import contextlib
import hashlib
import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import rig  # noqa: E402

DEFAULT_OURS = "/tmp/build-main/src/director/director"
# Fake mail hosts: the director never connects to them, so no backends run.
MAIL_HOST_SUFFIXES = (10, 11, 12)
POLL_SECS = 0.02
PROBE_INTERVAL_SECS = 0.002  # pacing of the lookup probe (about 400 lookups/s)
PROBE_TIMEOUT_SECS = 10.0
PROBE_IDLE_SECS = 1.0  # lookups measured on A before the join, for comparison
LOG_RE = re.compile(r" director: (Error|Warning|Fatal|Panic): |service\(director\): |"
                    r" director: .*Handshake finished.*[1-9]\d* *(USERs|users)")
BAD_RE = re.compile(r" director: (Error|Warning|Fatal|Panic): |service\(director\): .*"
                    r"(exited|killed)")


# --- small helpers -----------------------------------------------------------

def proc_status(pid, key):
    """A kB value (VmRSS, VmHWM) from /proc/<pid>/status, or None."""
    with contextlib.suppress(OSError, ValueError, TypeError):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    return None


def proc_start_boottime(pid):
    """Start time of pid in seconds on CLOCK_BOOTTIME (10 ms resolution)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return None


def cpu_secs(pid):
    with contextlib.suppress(OSError, ValueError, TypeError):
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0]) / 1e9
    return None


def machine_busy(secs=0.5):
    """Fraction of all CPUs busy over secs (load from outside the bench)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)
    t1, i1 = sample()
    time.sleep(secs)
    t2, i2 = sample()
    return 1.0 - (i2 - i1) / (t2 - t1) if t2 > t1 else None


def user_hash(name):
    """director_username_hash = %Lu (hashing-and-state.md §1)."""
    d = hashlib.md5(name.lower().encode()).digest()
    return int.from_bytes(d[:4], "big") or 1


def pct(vals, p):
    """p-th percentile (nearest rank) of vals."""
    s = sorted(vals)
    if not s:
        return None
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


class Admin:
    """A persistent director-admin connection (admin-protocol.md §1)."""

    def __init__(self, inst, timeout=10.0):
        self.inst = inst
        self.s = rig.admin_socket(inst, timeout)

    @classmethod
    def connect(cls, inst, deadline_secs):
        """Retry until the socket exists and the director answers VERSION."""
        return rig.wait_until(lambda: _try_admin(inst), deadline_secs,
                              "%s director-admin" % inst.name, interval=0.01)

    def cmd(self, line):
        self.s.send_line(line)
        r = self.s.read_line()
        if r is None:
            raise RuntimeError("%s: admin socket closed after %r" % (self.inst.name, line))
        return r

    def listing(self, line):
        self.s.send_line(line)
        out = []
        while True:
            r = self.s.read_line()
            if r is None:
                raise RuntimeError("%s: admin socket closed after %r" % (self.inst.name, line))
            if r == "":
                return out
            out.append(r)

    def hosts(self):
        """{ip: (vhost_count, user_count)}"""
        res = {}
        for line in self.listing("HOST-LIST"):
            f = line.split("\t")
            res[f[0]] = (int(f[1]), int(f[2]))
        return res

    def user_count(self):
        return sum(u for _, u in self.hosts().values())

    def ring_status(self):
        """(self line's ring status, [(ip, type, status)] of the connections)."""
        ring, conns = None, []
        for line in self.listing("DIRECTOR-LIST"):
            f = line.split("\t")
            if len(f) >= 5 and f[2] == "self":
                ring = f[4]
            elif len(f) >= 5:
                conns.append((f[0], f[2], f[4]))
        return ring, conns

    def close(self):
        self.s.close()


def _try_admin(inst):
    try:
        return Admin(inst, timeout=30.0)
    except (OSError, RuntimeError):
        return None


def launch(c, inst):
    """Start a master without waiting for it (rig.Cluster.start does the same
    steps, then waits up to 20 s for `ring synced`, which a big join may not
    meet). Returns the monotonic time just before `dovecot -c`."""
    for sub in ("log", "state"):
        os.makedirs(os.path.join(inst.dir, sub), exist_ok=True)
    os.chmod(inst.dir, 0o755)
    inst.write_config()
    errlog = os.path.join(inst.dir, "log", "master-stderr.log")
    t0 = time.monotonic()
    with open(errlog, "ab") as err, open(os.devnull, "rb") as devnull:
        rc = subprocess.call([rig.DOVECOT, "-c", inst.conf], stdin=devnull,
                             stdout=subprocess.DEVNULL, stderr=err,
                             timeout=rig.START_DEADLINE_SECS)
    inst.started = True     # so that c.stop() reads master.pid even if we fail below
    if rc != 0:
        raise RuntimeError("dovecot -c %s exited %d" % (inst.conf, rc))
    pidfile = os.path.join(inst.base_dir, "master.pid")

    def pid():
        with contextlib.suppress(OSError, ValueError):
            with open(pidfile) as f:
                return int(f.read().strip())
        return None
    inst.master_pid = rig.wait_until(pid, rig.START_DEADLINE_SECS, "%s master.pid" % inst.name,
                                     interval=0.005)
    return t0


def log_findings(inst, limit=12):
    """(interesting director log lines, number of Error/Warning/Fatal/Panic lines)."""
    with contextlib.suppress(OSError):
        text = inst.read_log().splitlines()
        lines = [x for x in text if LOG_RE.search(x)]
        bad = sum(1 for x in text if BAD_RE.search(x))
        if len(lines) > limit:
            lines = lines[:limit // 2] + ["... (%d more)" % (len(lines) - limit)] + \
                lines[-(limit // 2):]
        return lines, bad
    return [], 0


# --- populate ----------------------------------------------------------------

def populate(inst, hosts, nusers, deadline_secs, window=10000):
    """USER-MOVE user<i>@example.com -> hosts[i % len] for i in 1..nusers, pipelined
    on one admin connection (loopback-stock-dovecot.md §13) with at most `window`
    commands unanswered: the stock director gets several times slower when the
    whole list is queued at once (5-9k/s instead of 35k/s here). Returns the
    reply counts."""
    adm = Admin(inst, timeout=deadline_secs)
    sock = adm.s.sock
    counts = {}
    end = time.monotonic() + deadline_secs
    buf = b""
    sent = got = 0
    batch = 1000
    while got < nusers:
        if time.monotonic() > end:
            raise TimeoutError("%s: populate: %d/%d replies after %.0fs"
                               % (inst.name, got, nusers, deadline_secs))
        while sent < nusers and sent - got + batch <= window:
            hi = min(nusers, sent + batch)
            sock.sendall("".join("USER-MOVE\tuser%d@example.com\t%s\n" % (i, hosts[i % len(hosts)])
                                 for i in range(sent + 1, hi + 1)).encode())
            sent = hi
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("%s: admin socket closed during populate after %d replies"
                               % (inst.name, got))
        buf += chunk
        lines = buf.split(b"\n")
        buf = lines.pop()
        for line in lines:
            counts[line] = counts.get(line, 0) + 1
        got += len(lines)
    adm.close()
    return {k.decode(errors="replace"): v for k, v in counts.items()}


# --- 4: USER-LIST ---------------------------------------------------------------

def userlist_run(c, args, bin, label):
    """USER-LIST of args.users users on a standalone director, with HOST-LIST
    probes on a second connection meanwhile. Returns a dict of metrics."""
    import threading
    hosts = ["%s.%d" % (c.base, s) for s in MAIL_HOST_SUFFIXES]
    # stock needs over 100 bytes per user: the default 256 MB would not hold
    # a big table
    d = c.add_director(bin=bin, servers="self", mail_servers=" ".join(hosts),
                       extra_conf="default_vsz_limit = 4G")
    m = {"notes": []}
    say("userlist %s: %s (%s)" % (label, d.ip, bin))
    try:
        c.start(only=[d])
        t = time.monotonic()
        populate(d, hosts, args.users, args.populate_deadline)
        say("  populated %d users in %.1fs" % (args.users, time.monotonic() - t))
        pid = d.director_pid()
        m["hwm_before_kb"] = proc_status(pid, "VmHWM")
        lister, prober = Admin(d, timeout=120), Admin(d, timeout=120)
        done = {}

        def read_list():
            sock = lister.s.sock
            t0 = time.monotonic()
            sock.sendall(b"USER-LIST\n")
            tail, nbytes = b"", 0
            while True:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    done["error"] = "closed"
                    break
                nbytes += len(chunk)
                tail = (tail + chunk)[-2:]
                # lines end with LF; the reply ends with an empty line
                if tail == b"\n\n":
                    break
            done["secs"] = time.monotonic() - t0
            done["bytes"] = nbytes
        th = threading.Thread(target=read_list, daemon=True)
        th.start()
        worst, probes = 0.0, 0
        while th.is_alive() and probes < 100000:
            t0 = time.monotonic()
            prober.listing("HOST-LIST")
            worst = max(worst, time.monotonic() - t0)
            probes += 1
        th.join(120)
        m["list_secs"] = done.get("secs")
        m["list_mb"] = done.get("bytes", 0) / 1e6
        m["probe_worst_ms"] = worst * 1000
        m["probes"] = probes
        m["hwm_after_kb"] = proc_status(pid, "VmHWM")
        m["hwm_growth_kb"] = (m["hwm_after_kb"] or 0) - (m["hwm_before_kb"] or 0)
        if d.director_pid() != pid:
            m["notes"].append("director restarted")
        say("  USER-LIST %.2fs (%.1f MB), %d HOST-LIST probes meanwhile, slowest %.0f ms, "
            "VmHWM +%d kB" % (m["list_secs"] or -1, m["list_mb"], probes, worst * 1000,
                              m["hwm_growth_kb"]))
        lister.close()
        prober.close()
    except Exception as e:
        m["error"] = "%s: %s" % (type(e).__name__, e)
        say("  ERROR %s" % m["error"])
    finally:
        c.stop(only=[d])
    return m


# --- 1+2: join -----------------------------------------------------------------

# --- lookups on the synced director during a join ----------------------------------

class LookupProbe(threading.Thread):
    """Auth lookups one at a time on A's login/director socket (what imap-login
    does for every login), paced every PROBE_INTERVAL_SECS, for users A already
    holds. Records (start time, latency in s); a lookup still unanswered after
    PROBE_TIMEOUT_SECS ends the probe and is recorded as that long."""

    def __init__(self, inst, nusers):
        super().__init__(daemon=True)
        self.inst = inst
        self.nusers = max(1, nusers)
        self.samples = []
        self.error = None
        self.stop_ev = threading.Event()
        self.sock = None

    def open(self):
        s = rig.LineSocket.unix(self.inst.path("login/director"), PROBE_TIMEOUT_SECS)
        rig.auth_client_handshake(s, os.getpid() * 16 + len(self.inst.name) % 16)
        self.sock = s

    def run(self):
        i = 0
        try:
            while not self.stop_ev.is_set():
                i += 1
                user = "user%d@example.com" % (1 + (i * 7919) % self.nusers)
                resp = rig.auth_plain(user)
                t = time.monotonic()
                self.sock.send_line("AUTH\t%d\tPLAIN\tservice=imap\tsecured\tlip=127.0.0.1"
                                    "\trip=127.0.0.1\tresp=%s" % (i, resp))
                while True:
                    try:
                        line = self.sock.read_line()
                    except socket.timeout:
                        self.samples.append((t, PROBE_TIMEOUT_SECS))
                        raise RuntimeError("lookup unanswered for %.0fs" % PROBE_TIMEOUT_SECS)
                    if line is None:
                        raise RuntimeError("login/director closed")
                    f = line.split("\t")
                    if len(f) >= 2 and f[0] in ("OK", "FAIL") and f[1] == str(i):
                        break
                self.samples.append((t, time.monotonic() - t))
                self.stop_ev.wait(PROBE_INTERVAL_SECS)
        except Exception as e:  # noqa: BLE001 - reported with the numbers
            self.error = "%s: %s" % (type(e).__name__, e)

    def finish(self):
        self.stop_ev.set()
        self.join(PROBE_TIMEOUT_SECS + 1)
        if self.sock:
            self.sock.close()

    def stats(self, t_from, t_to):
        """(p50 ms, p99 ms, max ms, count) of the lookups started in [t_from, t_to)."""
        lat = sorted(d for t, d in self.samples if t_from <= t < t_to)
        if not lat:
            return None, None, None, 0
        return (1000 * pct(lat, 50), 1000 * pct(lat, 99), 1000 * lat[-1], len(lat))


def join_run(c, args, a_bin, b_bin, label, distinct):
    """One join measurement. Returns a dict of metrics (and 'notes')."""
    hosts = ["%s.%d" % (c.base, s) for s in MAIL_HOST_SUFFIXES]
    idx = len(c.directors)
    a_ip = "%s.%d" % (c.base, 100 + idx)
    b_ip = "%s.%d" % (c.base, 100 + idx + 1)
    servers_b = "%s:%d %s:%d" % (a_ip, rig.RING_PORT, b_ip, rig.RING_PORT)
    vsz = "default_vsz_limit = %s" % args.vsz_limit if args.vsz_limit else ""
    a = c.add_director(bin=a_bin, servers="self", mail_servers=" ".join(hosts), extra_conf=vsz)
    b = c.add_director(bin=b_bin, servers=servers_b, mail_servers=" ".join(hosts),
                       extra_conf=vsz)
    assert a.ip == a_ip and b.ip == b_ip
    m = {"notes": []}
    probe = None
    say("join %s: A=%s (%s) B=%s (%s)" % (label, a.ip, a_bin, b.ip, b_bin))
    try:
        c.start(only=[a])
        adm_a = Admin(a, timeout=60)
        t = time.monotonic()
        replies = populate(a, hosts, args.users, args.populate_deadline)
        pop_secs = time.monotonic() - t
        bad = {k: v for k, v in replies.items() if k != "OK"}
        count_a = rig.wait_until(
            lambda: (lambda n: n if n >= distinct else None)(adm_a.user_count()),
            60, "%s user count %d" % (a.name, distinct), interval=0.2)
        m["populate_secs"] = pop_secs
        m["populate_ups"] = args.users / pop_secs
        m["a_users"] = count_a
        a_pid = a.director_pid()
        m["a_rss_before_kb"] = proc_status(a_pid, "VmRSS")
        m["a_hwm_before_kb"] = proc_status(a_pid, "VmHWM")
        say("  A populated: %d USER-MOVE in %.1fs (%.0f/s), replies %s, A users %d"
            % (args.users, pop_secs, args.users / pop_secs,
               ", ".join("%s=%d" % kv for kv in sorted(replies.items())), count_a))
        if bad and set(bad) - {"TRYAGAIN"}:
            m["notes"].append("populate replies: %r" % bad)
        if args.stall:
            probe = LookupProbe(a, args.users)
            probe.open()
            probe.start()
            t_idle = time.monotonic()
            time.sleep(PROBE_IDLE_SECS)
        r = adm_a.cmd("DIRECTOR-ADD\t%s\t%d" % (b.ip, rig.RING_PORT))
        if r != "OK":
            raise RuntimeError("A: DIRECTOR-ADD replied %r" % r)
        cpu_a0 = cpu_secs(a_pid)
        t0 = launch(c, b)
        boot0 = time.clock_gettime(time.CLOCK_BOOTTIME) - (time.monotonic() - t0)
        adm_b = Admin.connect(b, 10)      # this connect also makes the master start the director
        m["b_admin_secs"] = time.monotonic() - t0
        tl = {}
        end = t0 + args.join_deadline
        last = None
        while True:
            now = time.monotonic()
            if now > end:
                raise TimeoutError("B not synced with %d users after %.0fs (last: %s)"
                                   % (count_a, args.join_deadline, last))
            ring, conns = adm_b.ring_status()
            nb = adm_b.user_count()
            now = time.monotonic() - t0
            last = (ring, conns, nb)
            if conns and "conn" not in tl:
                tl["conn"] = now
            if nb and "first_count" not in tl:
                tl["first_count"] = now
            if ring == "ring synced" and "synced" not in tl:
                tl["synced"] = now
            if nb >= count_a and "count" not in tl:
                tl["count"] = now
            if "synced" in tl and "count" in tl:
                break
            time.sleep(POLL_SECS)
        m["join_secs"] = max(tl["synced"], tl["count"])
        if probe is not None:
            t_end = time.monotonic()
            probe.finish()
            idle = probe.stats(t_idle, t0)
            busy = probe.stats(t0, t_end)
            m["stall_idle_p50_ms"], m["stall_idle_p99_ms"] = idle[0], idle[1]
            (m["stall_p50_ms"], m["stall_p99_ms"], m["stall_max_ms"],
             m["stall_lookups"]) = busy
            if probe.error:
                m["notes"].append("lookup probe: %s" % probe.error)
            say("  lookups on A: before the join p50 %s / p99 %s ms; during it p50 %s / "
                "p99 %s / max %s ms (%d lookups)"
                % (fmt(idle[0]), fmt(idle[1]), fmt(busy[0]), fmt(busy[1]), fmt(busy[2]),
                   busy[3]))
        b_pid = b.director_pid()
        st = proc_start_boottime(b_pid)
        if st is not None:
            m["b_proc_start_secs"] = st - boot0
            m["join_from_proc_secs"] = m["join_secs"] - m["b_proc_start_secs"]
        m["timeline"] = tl
        m["b_users"] = nb
        m["b_rss_kb"] = proc_status(b_pid, "VmRSS")
        m["b_hwm_kb"] = proc_status(b_pid, "VmHWM")
        m["b_cpu_secs"] = cpu_secs(b_pid)
        m["a_cpu_join_secs"] = (cpu_secs(a_pid) or 0) - (cpu_a0 or 0)
        m["a_rss_after_kb"] = proc_status(a_pid, "VmRSS")
        m["a_hwm_after_kb"] = proc_status(a_pid, "VmHWM")
        ring_a, _ = adm_a.ring_status()
        m["a_ring"] = ring_a
        say("  B joined: %.2fs after master launch (director process +%.2fs; first ring "
            "conn %.2fs, first users %.2fs, synced %.2fs, count %.2fs); B users %d; "
            "B RSS %s kB HWM %s kB; A RSS %s kB"
            % (m["join_secs"], m.get("b_proc_start_secs", -1), tl.get("conn", -1),
               tl.get("first_count", -1), tl["synced"], tl["count"], nb, m["b_rss_kb"],
               m["b_hwm_kb"], m["a_rss_after_kb"]))
        # a few seconds of quiet ring afterwards: does it stay synced?
        time.sleep(args.settle)
        ring_b, _ = adm_b.ring_status()
        m["b_ring_after"] = ring_b
        m["b_users_after"] = adm_b.user_count()
        m["a_users_after"] = adm_a.user_count()
        if ring_b != "ring synced" or m["b_users_after"] != m["a_users_after"]:
            m["notes"].append("after %.0fs: B %r with %d users, A %d users" % (
                args.settle, ring_b, m["b_users_after"], m["a_users_after"]))
        adm_a.close()
        adm_b.close()
    except Exception as e:  # noqa: BLE001 - report and go on with the next pair
        m["error"] = "%s: %s" % (type(e).__name__, e)
        say("  FAILED: %s" % m["error"])
    if probe is not None:
        probe.finish()
    m["log_a"], m["log_bad_a"] = log_findings(a)
    m["log_b"], m["log_bad_b"] = log_findings(b)
    for name, lines in (("A", m["log_a"]), ("B", m["log_b"])):
        for line in lines:
            say("  log %s: %s" % (name, line))
    t = time.monotonic()
    c.stop(only=[a, b])
    m["stop_secs"] = time.monotonic() - t
    return m


# --- 3: propagation --------------------------------------------------------------

def propagation_run(c, args, bin, label):
    hosts = ["%s.%d" % (c.base, s) for s in MAIL_HOST_SUFFIXES]
    first = len(c.directors)
    ips = ["%s.%d" % (c.base, 100 + first + i) for i in range(3)]
    servers = " ".join("%s:%d" % (ip, rig.RING_PORT) for ip in ips)
    ds = [c.add_director(bin=bin, servers=servers, mail_servers=" ".join(hosts))
          for _ in range(3)]
    m = {"notes": []}
    say("propagation %s: 3-ring %s (%s)" % (label, " ".join(ips), bin))
    try:
        t0 = time.monotonic()
        for d in ds:
            launch(c, d)
        adms = [Admin.connect(d, 10) for d in ds]

        def formed():
            for a in adms:
                ring, conns = a.ring_status()
                kinds = {k for _, k, s in conns if s == "synced"}
                if ring != "ring synced" or not {"left", "right"} <= kinds:
                    return False
            return True
        rig.wait_until(formed, args.ring_deadline, "3-ring %s formed" % label, interval=0.05)
        m["form_secs"] = time.monotonic() - t0
        say("  ring formed and synced %.2fs after launch" % m["form_secs"])
        target = hosts[0]
        origin, watch = adms[0], adms[1:]
        prop, ok_lat, per = [], [], [[] for _ in watch]
        for i in range(args.updates):
            v = 50 + (i % 2) * 25          # 50, 75, 50, ... (config default is 100)
            time.sleep(0.05)
            t = time.perf_counter()
            origin.s.send_line("HOST-UPDATE\t%s\t%d" % (target, v))
            seen = [None] * len(watch)
            ok_t = None
            end = time.monotonic() + 30
            while None in seen or ok_t is None:
                if time.monotonic() > end:
                    raise TimeoutError("update %d: seen %r ok %r" % (i, seen, ok_t))
                for j, a in enumerate(watch):
                    if seen[j] is None and a.hosts()[target][0] == v:
                        seen[j] = time.perf_counter() - t
                # all seen: block on the origin's reply; else just peek at it
                wait = 5 if None not in seen else 0
                if ok_t is None and select.select([origin.s.sock], [], [], wait)[0]:
                    ok_t = time.perf_counter() - t
                    r = origin.s.read_line()
                    if r != "OK":
                        m["notes"].append("HOST-UPDATE %d replied %r" % (i, r))
            prop.append(max(seen))
            ok_lat.append(ok_t)
            for j, s in enumerate(seen):
                per[j].append(s)
        m["prop_ms"] = [x * 1e3 for x in prop]
        m["ok_ms"] = [x * 1e3 for x in ok_lat]
        m["prop_med_ms"] = statistics.median(m["prop_ms"])
        m["prop_p90_ms"] = pct(m["prop_ms"], 90)
        m["ok_med_ms"] = statistics.median(m["ok_ms"])
        m["ok_p90_ms"] = pct(m["ok_ms"], 90)
        for j, a in enumerate(watch):
            m["prop_med_ms_%s" % a.inst.name] = statistics.median(per[j]) * 1e3
        say("  %d updates: last director saw it median %.2f ms p90 %.2f ms; origin OK "
            "median %.2f ms p90 %.2f ms" % (args.updates, m["prop_med_ms"], m["prop_p90_ms"],
                                            m["ok_med_ms"], m["ok_p90_ms"]))
        for a in adms:
            ring, conns = a.ring_status()
            if ring != "ring synced":
                m["notes"].append("%s after updates: %r %r" % (a.inst.name, ring, conns))
            a.close()
    except Exception as e:  # noqa: BLE001
        m["error"] = "%s: %s" % (type(e).__name__, e)
        say("  FAILED: %s" % m["error"])
    m["logs"] = {}
    m["log_bad"] = 0
    for d in ds:
        m["logs"][d.name], bad = log_findings(d)
        m["log_bad"] += bad
        for line in m["logs"][d.name]:
            say("  log %s: %s" % (d.name, line))
    c.stop(only=ds)
    return m


# --- report --------------------------------------------------------------------------

def say(msg):
    sys.stdout.write("ring-bench: %s\n" % msg)
    sys.stdout.flush()


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


ROWS = [
    # section, key, title
    ("join", "join_secs", "join: B launch -> synced with all users (s)"),
    ("join", "join_from_proc_secs", "join: B director process start -> done (s)"),
    ("join", "t_first_count", "join: B launch -> first user counted (s)"),
    ("join", "t_synced", "join: B launch -> B ring synced (s)"),
    ("join", "b_cpu_secs", "join: B director CPU during join (s)"),
    ("join", "a_cpu_join_secs", "join: A director CPU during join (s)"),
    ("join", "b_rss_kb", "join: B VmRSS after join (kB)"),
    ("join", "b_hwm_kb", "join: B VmHWM after join (kB)"),
    ("join", "a_rss_before_kb", "A VmRSS after populate (kB)"),
    ("join", "a_hwm_before_kb", "A VmHWM after populate (kB)"),
    ("join", "a_rss_after_kb", "A VmRSS after join (kB)"),
    ("join", "a_hwm_after_kb", "A VmHWM after join (kB)"),
    ("join", "populate_ups", "A populate: USER-MOVE/s (pipelined admin)"),
    ("join", "b_users", "users on B when done"),
    ("join", "stall_idle_p50_ms", "A lookup before the join, p50 (ms)"),
    ("join", "stall_idle_p99_ms", "A lookup before the join, p99 (ms)"),
    ("join", "stall_p50_ms", "A lookup during the join, p50 (ms)"),
    ("join", "stall_p99_ms", "A lookup during the join, p99 (ms)"),
    ("join", "stall_max_ms", "A lookup during the join, max (ms)"),
    ("prop", "prop_med_ms", "3-ring HOST-UPDATE seen by last director, median (ms)"),
    ("prop", "prop_p90_ms", "3-ring HOST-UPDATE seen by last director, p90 (ms)"),
    ("prop", "ok_med_ms", "3-ring HOST-UPDATE OK at origin, median (ms)"),
    ("prop", "ok_p90_ms", "3-ring HOST-UPDATE OK at origin, p90 (ms)"),
    ("prop", "form_secs", "3-ring launch -> all synced (s)"),
    ("join", "log_bad_b", "B log Error/Warning lines in a join"),
    ("join", "log_bad_a", "A log Error/Warning lines in a join"),
    ("prop", "log_bad", "3-ring log Error/Warning lines (all 3)"),
]


def flat(m):
    r = dict(m)
    for k, v in (m.get("timeline") or {}).items():
        r["t_" + k] = v
    return r


def combine(rounds, key):
    """(median, min, max) of a metric over the join rounds that have it."""
    vals = [flat(m).get(key) for m in rounds]
    vals = [v for v in vals if isinstance(v, (int, float))]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def print_table(res, out=sys.stdout):
    w = 56
    out.write("\n%-*s %10s %10s %10s %15s\n" % (w, "metric (joins: median over rounds)", "stock",
                                                 "ours", "ours/stock", "spread s/o %"))
    out.write("-" * (w + 49) + "\n")
    joins, props = res.get("join", {}), res.get("prop", {})
    for sec, key, title in ROWS:
        if sec == "join":
            (s, s_lo, s_hi), (o, o_lo, o_hi) = (combine(joins.get(x) or [], key)
                                                for x in ("stock->stock", "ours->ours"))
            sp = "/".join("%.0f" % (100.0 * (hi - lo) / med) if med else "-"
                          for med, lo, hi in ((s, s_lo, s_hi), (o, o_lo, o_hi)))
        else:
            s, o = ((props.get(x) or {}).get(key) for x in ("stock", "ours"))
            sp = ""
        ratio = o / s if isinstance(s, (int, float)) and isinstance(o, (int, float)) and s \
            else None
        out.write("%-*s %10s %10s %10s %15s\n" % (w, title, fmt(s), fmt(o),
                                                   "%.3f" % ratio if ratio is not None else "-",
                                                   sp))
    if joins:
        out.write("\nall joins, A -> B (median over rounds [min..max]):\n")
        out.write("  %-14s %-22s %-22s %-10s %-10s %-10s %s\n" % (
            "A -> B", "join s", "B synced s", "B RSS kB", "B HWM kB", "A CPU s", "B CPU s"))
        for label, rounds in joins.items():
            cells = []
            for key in ("join_secs", "t_synced", "b_rss_kb", "b_hwm_kb", "a_cpu_join_secs",
                        "b_cpu_secs"):
                med, lo, hi = combine(rounds, key)
                cells.append("%s [%s..%s]" % (fmt(med), fmt(lo), fmt(hi))
                             if key in ("join_secs", "t_synced") else fmt(med))
            failed = sum(1 for m in rounds if m.get("error"))
            out.write("  %-14s %-22s %-22s %-10s %-10s %-10s %s%s\n" % (
                label, *cells, "  (%d of %d rounds FAILED)" % (failed, len(rounds))
                if failed else ""))
    for label, rounds in joins.items():
        for i, m in enumerate(rounds):
            if m.get("error") or m.get("notes"):
                out.write("join %s round %d: %s\n" % (label, i + 1, "; ".join(
                    ([m["error"]] if m.get("error") else []) + m.get("notes", []))))
    for label, m in props.items():
        if m.get("error") or m.get("notes"):
            out.write("prop %s: %s\n" % (label, "; ".join(
                ([m["error"]] if m.get("error") else []) + m.get("notes", []))))


# --- main -------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", default=os.environ.get("DIRECTOR_BIN") or DEFAULT_OURS)
    ap.add_argument("--stock", default=os.environ.get("STOCK_DIRECTOR_BIN")
                    or rig.STOCK_DIRECTOR)
    ap.add_argument("--users", type=int, help="default 1000000 (100000 with --quick)")
    ap.add_argument("--updates", type=int, help="default 20 (10 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smaller defaults: 100k users, 10 updates, 2 join rounds")
    ap.add_argument("--join-rounds", type=int,
                    help="join measurements per pair, a fresh A and B each time "
                    "(default 3, 2 with --quick)")
    ap.add_argument("--no-mixed", action="store_true", help="skip the mixed joins")
    ap.add_argument("--stall", action="store_true",
                    help="during each join, time auth lookups on A (the synced director)")
    ap.add_argument("--only", choices=("join", "prop", "userlist"),
                    help="run only one part (userlist runs only when asked for)")
    ap.add_argument("--max-secs", type=float, default=330.0,
                    help="start no further join round once less than 120 s of this is left")
    ap.add_argument("--join-deadline", type=float, default=120.0)
    ap.add_argument("--populate-deadline", type=float, default=120.0)
    ap.add_argument("--ring-deadline", type=float, default=40.0)
    ap.add_argument("--vsz-limit", metavar="SIZE",
                    help="default_vsz_limit of the joining pair (e.g. 4G; beyond about "
                    "2 M users stock needs more than the default 256M, ours beyond 9 M)")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds of quiet after a join before re-checking both sides")
    ap.add_argument("--json", help="write all results as JSON to this file")
    ap.add_argument("--keep", action="store_true", help="keep the rig temp dir and logs")
    args = ap.parse_args()
    for key, full, quick in (("users", 1_000_000, 100_000), ("updates", 20, 10),
                             ("join_rounds", 3, 2)):
        if getattr(args, key) is None:     # explicit options win over --quick
            setattr(args, key, quick if args.quick else full)
    for b in (args.stock, args.ours):
        if not os.access(b, os.X_OK):
            sys.exit("ring-bench: %s not executable" % b)

    t_start = time.monotonic()
    t = time.monotonic()
    distinct = 0 if args.only in ("prop", "userlist") else \
        len({user_hash("user%d@example.com" % i) for i in range(1, args.users + 1)})
    say("%d users -> %d distinct user hashes (%.1fs)" % (args.users, distinct,
                                                         time.monotonic() - t))
    c = rig.Cluster(nbackends=0, nusers=1, keep=args.keep)
    say("rig %s, block %s; stock=%s ours=%s; machine busy before start %.2f"
        % (c.dir, c.base, args.stock, args.ours, machine_busy()))
    res = {"join": {}, "prop": {}, "userlist": {}}
    busy = []
    try:
        if args.only in (None, "join"):
            pairs = [("stock->stock", args.stock, args.stock),
                     ("ours->ours", args.ours, args.ours)]
            if not args.no_mixed:
                pairs += [("stock->ours", args.stock, args.ours),
                          ("ours->stock", args.ours, args.stock)]
            for rnd in range(args.join_rounds):
                left = args.max_secs - (time.monotonic() - t_start)
                if rnd > 0 and left < 120:
                    say("skipping join rounds %d..%d: %.0fs of --max-secs left"
                        % (rnd + 1, args.join_rounds, left))
                    break
                # alternate the order so that drifting background load hits all alike
                for label, a_bin, b_bin in (pairs if rnd % 2 == 0 else pairs[::-1]):
                    busy.append(machine_busy())
                    say("round %d/%d, machine busy %.2f" % (rnd + 1, args.join_rounds, busy[-1]))
                    res["join"].setdefault(label, []).append(
                        join_run(c, args, a_bin, b_bin, label, distinct))
        if args.only == "userlist":
            for label, b in (("stock", args.stock), ("ours", args.ours)):
                busy.append(machine_busy())
                res["userlist"][label] = userlist_run(c, args, b, label)
        if args.only in (None, "prop"):
            for label, b in (("stock", args.stock), ("ours", args.ours)):
                busy.append(machine_busy())
                res["prop"][label] = propagation_run(c, args, b, label)
    except BaseException:
        c.failed = True
        c.cleanup()
        raise
    if any(m.get("error") for rounds in res["join"].values() for m in rounds) or \
            any(m.get("error") for m in res["prop"].values()):
        c.failed = True     # keep the logs
    c.cleanup()
    print_table(res)
    busy = [v for v in busy if v is not None]
    if busy:
        sys.stdout.write("machine busy while rig idle (worst, 0..1): %.2f\n" % max(busy))
    sys.stdout.write("users %d (distinct hashes %d); total runtime %.0fs\n"
                     % (args.users, distinct, time.monotonic() - t_start))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"stock_bin": args.stock, "ours_bin": args.ours, "users": args.users,
                       "distinct": distinct, "busy": busy, "results": res}, f, indent=1)
    ok = any("join_secs" in m for rounds in res["join"].values() for m in rounds) or \
        any("prop_med_ms" in m for m in res["prop"].values()) or \
        any(m.get("list_secs") for m in res["userlist"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
