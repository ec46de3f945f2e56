"""Director-ring helpers for test_ring.py, on top of rig.py (which stays as is).

A Ring is a rig.Cluster with N directors that list each other in
director_servers; each director's binary comes from a "mix" such as
"ours,stock,stock" (ours = DIRECTOR_BIN, stock = STOCK_DIRECTOR_BIN).
Everything here polls with a deadline and only signals pids of masters the rig
started (or their director child, found through rig.Instance.director_pid).
Facts checked against the stock 2.3 director binary (ring and admin protocol,
running stock Dovecot on loopback).
"""

import contextlib
import datetime
import ipaddress
import os
import random
import re
import signal
import threading
import time

import rig

# Microsecond log timestamps on every instance of a ring cluster: the
# "no user on two backends at once" check orders backend sessions by them.
LOG_TIMESTAMP_CONF = 'log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "\n'
LOG_TS_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}) ")
# ours24: our director under Dovecot 2.4 (rig.Director24, from the chroot)
KINDS = ("ours", "stock", "ours24")
DEFAULT_MIX = "stock,stock,stock"
DEFAULT_MIX5 = "stock,stock,stock,stock,stock"


# --- mixes -----------------------------------------------------------------

def parse_mix(text):
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or len(kinds) < 2:
        raise ValueError("bad ring mix %r: want comma-separated ours/stock/ours24, "
                         ">= 2 entries"
                         % text)
    return kinds


def mixes():
    """RING_MIXES: semicolon-separated 3-director mixes (default all stock)."""
    text = os.environ.get("RING_MIXES") or DEFAULT_MIX
    return [parse_mix(m) for m in text.split(";") if m.strip()]


def mix5():
    """RING_MIX5: the 5-director mix, e.g. ours,ours,ours,ours,ours
    (default all stock; "none" or "-" disables the 5-director variants)."""
    text = os.environ.get("RING_MIX5")
    if text is None:
        text = DEFAULT_MIX5
    if text.strip() in ("", "none", "-"):
        return None
    m = parse_mix(text)
    if len(m) != 5:
        raise ValueError("RING_MIX5 must name 5 directors: %r" % text)
    return m


def mix_id(mix):
    return "-".join(mix)


def bin_for(kind):
    return rig.director_bin() if kind == "ours" else rig.stock_director_bin()


# --- time ------------------------------------------------------------------

def log_time(line):
    """Wall-clock unix time of a log line written with LOG_TIMESTAMP_CONF."""
    m = LOG_TS_RE.match(line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()


def _ip_key(ip):
    a = ipaddress.ip_address(ip)
    return (a.version, a.packed)


# --- the ring --------------------------------------------------------------

class Ring:
    """A rig.Cluster with len(mix) directors in one ring."""

    def __init__(self, cluster, mix, user_expire="15 min", extra_conf=""):
        self.c = cluster
        self.mix = tuple(mix)
        _timestamp_backend_logs(cluster)
        ips = ["%s.%d" % (cluster.base, 100 + j) for j in range(len(mix))]
        servers = " ".join("%s:%d" % (ip, rig.RING_PORT) for ip in ips)
        self.directors = [cluster.add_director(bin=bin_for(k), servers=servers,
                                               cls=rig.Director24 if k == "ours24" else None,
                                               user_expire=user_expire,
                                               extra_conf=LOG_TIMESTAMP_CONF + extra_conf)
                          for k in mix]
        for d, kind in zip(self.directors, mix):
            d.kind = kind
        self.times = {}      # name -> seconds, measurements worth reporting
        self.events = []     # (wall time, text): what the test did, for reports

    # -- bookkeeping
    def note(self, text):
        self.events.append((time.time(), text))

    def by_ip(self, ip):
        return next(d for d in self.directors if d.ip == ip)

    def sorted_directors(self, among=None):
        return sorted(among or self.directors, key=lambda d: _ip_key(d.ip))

    def neighbours(self, d, among=None):
        """(left, right) of d in the sorted ring of `among` (default all)."""
        order = self.sorted_directors(among)
        i = order.index(d)
        return order[i - 1], order[(i + 1) % len(order)]

    def users_file(self, users):
        path = os.path.join(self.c.dir, "users.%d" % len(users))
        with open(path, "w") as f:
            f.write("\n".join(users) + "\n")
        os.chmod(path, 0o644)
        return path

    # -- start/stop
    def start(self, only=None, deadline_secs=60):
        """Start the backends and the directors (all, or `only`); returns
        seconds from the first director's master start until those directors
        report a formed, synced ring among themselves."""
        todo = [b for b in self.c.backends if not b.started]
        if todo:    # rig: an empty `only` means everything
            self.c.start(only=todo)
        ds = only or self.directors
        t0 = time.monotonic()
        self.c.start(only=ds)
        took = self.wait_formed(among=ds, deadline_secs=deadline_secs, t0=t0)
        self.note("ring of %s formed" % " ".join(d.name for d in ds))
        return took

    def restart(self, ds, deadline_secs=60):
        """Stop the given director instances (master SIGTERM) together, then
        start them together; returns (down secs, seconds until formed again)."""
        t0 = time.monotonic()
        self.note("stop %s" % " ".join(d.name for d in ds))
        self.c.stop(only=ds)
        t_down = time.monotonic() - t0
        t1 = time.monotonic()
        self.note("start %s" % " ".join(d.name for d in ds))
        self.c.start(only=ds)
        return t_down, self.wait_formed(deadline_secs=deadline_secs, t0=t1)

    # -- ring status
    def ring_rows(self, d):
        return ring_status(d)

    def formed_problems(self, among=None):
        """Why the ring of `among` (default all) is not formed and synced;
        empty when it is."""
        among = among or self.directors
        problems = []
        want_ips = sorted((x.ip for x in self.directors), key=_ip_key)
        for d in among:
            try:
                rows = ring_status(d)
            except Exception as e:   # doveadm timeout while the director is busy
                problems.append("%s: %s" % (d.name, e))
                continue
            selfrow = [r for r in rows if r["type"] == "self"]
            if not selfrow or selfrow[0]["ip"] != d.ip:
                problems.append("%s: no self row %r" % (d.name, rows))
                continue
            if selfrow[0]["status"] != "ring synced":
                problems.append("%s: %s" % (d.name, selfrow[0]["status"]))
            listed = sorted({r["ip"] for r in rows if r["type"] != "removed" and r["ip"]},
                            key=_ip_key)
            if listed != want_ips:
                problems.append("%s lists directors %s" % (d.name, listed))
            conns = [r for r in rows if r["type"] in ("left", "right", "in", "out")]
            if len(among) == 1:
                if conns:
                    problems.append("%s alone but has connections %r" % (d.name, conns))
                continue
            left, right = self.neighbours(d, among)
            got = sorted((r["type"], r["ip"], r["status"]) for r in conns)
            want = sorted([("left", left.ip, "synced"), ("right", right.ip, "synced")])
            if got != want:
                problems.append("%s connections %s, want %s" % (d.name, got, want))
        return problems

    def wait_formed(self, among=None, deadline_secs=60, t0=None):
        t0 = t0 if t0 is not None else time.monotonic()
        last = []

        def formed():
            last[:] = self.formed_problems(among)
            return not last
        try:
            rig.wait_until(formed, deadline_secs - (time.monotonic() - t0), "ring formed",
                           interval=0.1)
        except TimeoutError:
            raise TimeoutError("ring not formed after %.1fs: %s" % (deadline_secs, last))
        return time.monotonic() - t0

    # -- state comparison
    def snapshot(self, d, users_file=None):
        """Normalized state of one director: host list and {user hash: host}
        (without expiry). The host list leaves out when a host last went up
        or down: a director records that only for changes it saw happen (a
        stock director that joins later shows "-"), so it differs by design."""
        hosts = {ip: (tag, vhosts, state, users)
                 for ip, (tag, vhosts, state, _changed, users) in host_rows(d).items()}
        users = {h: ip for h, (ip, _) in user_list(d).items()}
        snap = {"hosts": hosts, "users": users}
        if users_file:
            snap["map"] = map_rows(d, users_file)
        return snap

    def divergence(self, among=None, users_file=None):
        """Empty if every director in `among` has the same snapshot; else text."""
        among = among or self.directors
        snaps = [(d, self.snapshot(d, users_file)) for d in among]
        ref_d, ref = snaps[0]
        out = []
        for d, s in snaps[1:]:
            for k in ref:
                if s[k] != ref[k]:
                    out.append("%s vs %s differ in %s: %s" % (ref_d.name, d.name, k,
                                                              _diff(ref[k], s[k])))
        return "; ".join(out)

    def wait_converged(self, among=None, deadline_secs=60, users_file=None, t0=None):
        """Wait until every director has the same host list and user table."""
        t0 = t0 if t0 is not None else time.monotonic()
        last = [""]

        def same():
            try:
                last[0] = self.divergence(among, users_file)
            except Exception as e:
                last[0] = "error: %s" % e
            return not last[0]
        try:
            rig.wait_until(same, deadline_secs - (time.monotonic() - t0), "convergence",
                           interval=0.25)
        except TimeoutError:
            raise TimeoutError("directors did not converge after %.1fs: %s"
                               % (deadline_secs, last[0][:3000]))
        return time.monotonic() - t0


def _diff(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b), key=str)
        d = [(k, a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)]
        return "%d keys differ, e.g. %r" % (len(d), d[:5])
    if isinstance(a, list) and isinstance(b, list):
        sa, sb = set(map(tuple, a)), set(map(tuple, b))
        return "only first: %r; only second: %r" % (sorted(sa - sb)[:5], sorted(sb - sa)[:5])
    return "%r != %r" % (a, b)


def _timestamp_backend_logs(cluster):
    """Backends get microsecond log timestamps: wrap each backend's
    write_config (rig.py has no extra_conf for backends)."""
    for b in cluster.backends:
        if getattr(b, "_ring_ts", False):
            continue
        orig = b.write_config

        def write(orig=orig, b=b):
            orig()
            with open(b.conf, "a") as f:
                f.write(LOG_TIMESTAMP_CONF)
        b.write_config = write
        b._ring_ts = True


# --- doveadm / admin socket readers -----------------------------------------

RING_COLS = ("ip", "port", "type", "last_failed", "status", "ping_ms", "input", "output",
             "buffered", "buffered_peak", "last_read", "last_write")


def ring_status(d, timeout=10):
    """`doveadm director ring status` rows as dicts (RING_COLS keys)."""
    rc, out, err = rig.doveadm(d, "-f", "tab", "director", "ring", "status", timeout=timeout)
    if rc != 0:
        raise RuntimeError("%s: ring status rc=%d %s" % (d.name, rc, err.strip()))
    rows = []
    for line in out.splitlines()[1:]:
        f = line.split("\t")
        if not _is_ip(f[0]):
            # an incoming connection that has not said who it is yet: stock
            # and ours print only its connection columns, shifted left
            f = ["", "", "in", "-"] + f
        rows.append(dict(zip(RING_COLS, f + ["-"] * (len(RING_COLS) - len(f)))))
    return rows


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def host_rows(d, timeout=10):
    """`doveadm director status` -> {ip: (tag, vhosts, state, state changed, users)}."""
    rc, out, err = rig.doveadm(d, "-f", "tab", "director", "status", timeout=timeout)
    if rc != 0:
        raise RuntimeError("%s: director status rc=%d %s" % (d.name, rc, err.strip()))
    res = {}
    for line in out.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 6:
            res[f[0]] = (f[1], int(f[2]), f[3], f[4], int(f[5]))
    return res


def map_rows(d, users_file, timeout=60):
    """`doveadm director map -f users_file` -> sorted [(user, hash, ip)]
    (expire time dropped: each director computes it from its own clock)."""
    rc, out, err = rig.doveadm(d, "-f", "tab", "director", "map", "-f", users_file,
                               timeout=timeout)
    if rc != 0:
        raise RuntimeError("%s: director map rc=%d %s" % (d.name, rc, err.strip()))
    rows = []
    for line in out.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 3:
            rows.append((f[0], f[1], f[2]))
    return sorted(rows)


def admin_lines(d, cmd, timeout=60):
    """Send one listing command on director-admin; lines up to the empty one."""
    with rig.admin_socket(d, timeout=timeout) as s:
        s.send_line(cmd)
        buf = bytearray(s.buf)
        s.buf = b""
        end = time.monotonic() + timeout
        while not (buf.endswith(b"\n\n") or buf == b"\n"):
            if time.monotonic() > end:
                raise TimeoutError("%s: %s reply not finished" % (d.name, cmd))
            chunk = s.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("%s: admin socket closed during %s" % (d.name, cmd))
            buf += chunk
    text = bytes(buf).decode(errors="replace")
    return text.split("\n")[:-2] if text != "\n" else []


def user_list(d, timeout=60):
    """USER-LIST -> {user hash: (host ip, expire)}."""
    res = {}
    for line in admin_lines(d, "USER-LIST", timeout):
        f = line.split("\t")
        res[int(f[0])] = (f[2], int(f[1]))
    return res


def user_count(d, timeout=120):
    return len(admin_lines(d, "USER-LIST", timeout))


def populate(d, users, host_ips, deadline_secs=600, window=2000):
    """USER-MOVE each user to a host (round robin) over one director-admin
    connection, pipelined (loopback-stock-dovecot.md §13).  Returns
    (OK count, {other reply: count}, seconds)."""
    t0 = time.monotonic()
    replies = {}
    oks = 0
    with rig.admin_socket(d, timeout=30) as s:
        sent = 0
        got = 0
        n = len(users)
        while got < n:
            if time.monotonic() - t0 > deadline_secs:
                raise TimeoutError("populate: %d/%d replies after %ds" % (got, n, deadline_secs))
            if sent < n and sent - got < window:
                hi = min(n, got + window * 2)
                batch = "".join("USER-MOVE\t%s\t%s\n" % (users[i], host_ips[i % len(host_ips)])
                                for i in range(sent, hi))
                s.send(batch)
                sent = hi
            line = s.read_line()
            if line is None:
                raise RuntimeError("populate: admin socket closed after %d replies" % got)
            got += 1
            if line == "OK":
                oks += 1
            else:
                replies[line] = replies.get(line, 0) + 1
    return oks, replies, time.monotonic() - t0


def rss_kb(pid):
    """(VmRSS, VmHWM) in kB of a process."""
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS"), vals.get("VmHWM")


def wait_new_director_pid(d, old_pid, deadline_secs=20):
    return rig.wait_until(lambda: (lambda p: p if p and p != old_pid else None)(
        d.director_pid()), deadline_secs, "%s director process restarted" % d.name)


# --- backend session records --------------------------------------------------

LOGIN_RE = re.compile(r"^(\S+ \S+) (imap|pop3)-login: Info: Login: user=<([^>]*)>, .*?"
                      r"lip=([0-9.]+), .*session=<([^>]+)>")
END_RE = re.compile(r"^(\S+ \S+) (imap|pop3)\(([^)]*)\)<\d+><([^>]+)>: Info: "
                    r"(?:Disconnected|Logged out|Connection closed)")


class Session:
    __slots__ = ("user", "backend", "director_ip", "session", "start", "end", "proto")

    def __init__(self, user, backend, director_ip, session, start, proto):
        self.user, self.backend, self.director_ip = user, backend, director_ip
        self.session, self.start, self.end, self.proto = session, start, None, proto

    def __repr__(self):
        return "<%s %s on %s via %s %.6f..%s>" % (
            self.proto, self.user, self.backend, self.director_ip, self.start,
            "open" if self.end is None else "%.6f" % self.end)


def backend_sessions(cluster):
    """Every IMAP/POP3 session each backend logged: [Session], from the
    backends' own Login / Disconnected lines (lip = the director that proxied),
    paired by session id.  The login process logs "Login:" only after handing
    the connection over, so a short session's end line can come first (even
    with an earlier timestamp): the start is then taken as the end."""
    out = []
    for b in cluster.backends:
        by_sid = {}
        ends = {}
        for line in b.read_log().splitlines():
            m = LOGIN_RE.match(line)
            if m:
                s = Session(m.group(3), b.ip, m.group(4), m.group(5), log_time(line),
                            m.group(2))
                by_sid[s.session] = s
                out.append(s)
                continue
            m = END_RE.match(line)
            if m:
                ends[m.group(4)] = log_time(line)
        for sid, s in by_sid.items():
            if sid in ends:
                s.end = ends[sid]
                s.start = min(s.start, s.end)
    return out


def double_served(sessions, now=None):
    """Intervals where one user had sessions open on two backends at once:
    [(user, session a, session b, overlap start, overlap end)]."""
    now = now or time.time()
    by_user = {}
    for s in sessions:
        by_user.setdefault(s.user, []).append(s)
    bad = []
    for user, ss in by_user.items():
        ss.sort(key=lambda s: s.start)
        for i, a in enumerate(ss):
            a_end = a.end if a.end is not None else now
            for b in ss[i + 1:]:
                if b.start >= a_end:
                    break
                if b.backend != a.backend:
                    b_end = b.end if b.end is not None else now
                    bad.append((user, a, b, b.start, min(a_end, b_end)))
    return bad


# --- background login load ---------------------------------------------------

class LoginLoad:
    """Threads doing IMAP LOGIN/SELECT/LOGOUT round trips for `users` through
    random directors from the `live` set (tests remove a director from it
    before killing/stopping it).  Records every attempt."""

    def __init__(self, ring, users, threads=3, pause=0.02, seed=1):
        self.ring = ring
        self.users = list(users)
        self.live = set(ring.directors)
        self.lock = threading.Lock()
        self.records = []   # (t0, t1, user, director name, backend ip or None, error)
        self.stop_ev = threading.Event()
        self.inflight = {}  # thread index -> director of the attempt under way
        self.pause = pause
        self.threads = [threading.Thread(target=self._run, args=(seed + i,), daemon=True)
                        for i in range(threads)]

    def _run(self, seed):
        rnd = random.Random(seed)
        while not self.stop_ev.is_set():
            with self.lock:
                live = sorted(self.live, key=lambda d: d.name)
            if not live:
                time.sleep(0.1)
                continue
            d = rnd.choice(live)
            u = rnd.choice(self.users)
            with self.lock:
                if d not in self.live:
                    continue
                self.inflight[seed] = d
            t0 = time.time()
            try:
                ip, _ = rig.imap_roundtrip(d, u)
                err = None
            except Exception as e:   # recorded; faults make some attempts fail
                ip, err = None, "%s: %s" % (type(e).__name__, e)
            with self.lock:
                self.inflight.pop(seed, None)
                self.records.append((t0, time.time(), u, d.name, ip, err))
            time.sleep(self.pause)

    def set_live(self, ds, deadline_secs=15):
        """Use only `ds` from now on; returns once no attempt through another
        director is still under way (so a fault can hit it without failing a
        login that was already running)."""
        with self.lock:
            self.live = set(ds)

        def quiet():
            with self.lock:
                return all(d in self.live for d in self.inflight.values())
        rig.wait_until(quiet, deadline_secs, "logins through removed directors to finish")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def __exit__(self, *a):
        self.stop()

    def summary(self):
        with self.lock:
            recs = list(self.records)
        ok = [r for r in recs if r[5] is None]
        errs = {}
        for r in recs:
            if r[5]:
                key = r[5][:80]
                errs[key] = errs.get(key, 0) + 1
        first = [(time.strftime("%H:%M:%S", time.localtime(r[0])) + ("%.3f" % (r[0] % 1))[1:],
                  r[3], r[2], r[5][:60]) for r in recs if r[5]][:5]
        return {"attempts": len(recs), "ok": len(ok), "errors": errs, "first_errors": first}


@contextlib.contextmanager
def stopped(pid):
    """SIGSTOP pid for the duration; SIGCONT always."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
