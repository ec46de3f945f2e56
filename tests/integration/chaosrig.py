"""Chaos helpers for test_chaos.py (issue #6): mixed IMAP/LMTP load, a seeded
fault schedule and the invariant checkers, on top of rig.py and ringrig.py
(both used read-only).  Every loop has a count or time bound; only pids of
masters the rig started (or their director child) are signalled."""

import contextlib
import os
import random
import signal
import threading
import time

import rig
import ringrig


# --- load ----------------------------------------------------------------------

class ChaosLoad:
    """IMAP LOGIN/SELECT/LOGOUT threads and LMTP delivery threads, each
    attempt through a random director of the ring (faulty ones included:
    their failures are counted, never fatal).  Bounded by stop() and by
    max_secs."""

    def __init__(self, ring, users, imap_threads=3, lmtp_threads=1, seed=1, pause=0.02,
                 max_secs=3600):
        self.ring = ring
        self.users = list(users)
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.pause = pause
        self.deadline = time.monotonic() + max_secs
        self.records = []   # (kind, t0, t1, user, director, backend ip or None, error)
        self.threads = []
        for i in range(imap_threads):
            self.threads.append(threading.Thread(target=self._run, args=("imap", seed * 100 + i),
                                                 daemon=True))
        for i in range(lmtp_threads):
            self.threads.append(threading.Thread(target=self._run,
                                                 args=("lmtp", seed * 100 + 50 + i), daemon=True))

    def _run(self, kind, seed):
        rnd = random.Random(seed)
        while not self.stop_ev.is_set() and time.monotonic() < self.deadline:
            d = rnd.choice(self.ring.directors)
            u = rnd.choice(self.users)
            t0 = time.time()
            ip, err = None, None
            try:
                if kind == "imap":
                    ip, _ = rig.imap_roundtrip(d, u)
                else:
                    rig.lmtp_deliver(d, u, subject="chaos", timeout=15)
            except Exception as e:   # faults make some attempts fail: counted
                err = "%s: %s" % (type(e).__name__, str(e)[:100])
            with self.lock:
                self.records.append((kind, t0, time.time(), u, d.name, ip, err))
            self.stop_ev.wait(self.pause)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(40)

    def __exit__(self, *a):
        self.stop()

    def summary(self):
        with self.lock:
            recs = list(self.records)
        out = {}
        for kind in ("imap", "lmtp"):
            rs = [r for r in recs if r[0] == kind]
            errs = {}
            for r in rs:
                if r[6]:
                    key = "%s via %s" % (r[6][:70], r[4])
                    errs[key] = errs.get(key, 0) + 1
            out[kind] = {"attempts": len(rs), "ok": sum(1 for r in rs if not r[6]),
                         "errors": dict(sorted(errs.items(), key=lambda kv: -kv[1])[:8])}
        return out


# --- the schedule -----------------------------------------------------------------

ACTIONS = (
    # (name, weight)
    ("kill9", 3),
    ("sigstop", 3),
    ("instance_restart", 2),
    ("backend_bounce", 2),
    ("flush_safe", 2),
    ("flush_force", 1),
    ("move", 4),
    ("move_then_kill9", 1),
    ("vhost", 2),
)


def make_schedule(seed, n, ndirectors, nbackends, nusers):
    """A deterministic list of n actions: dicts with 'kind' and parameters."""
    rnd = random.Random(seed)
    names = [a for a, w in ACTIONS for _ in range(w)]
    out = []
    for _ in range(n):
        kind = rnd.choice(names)
        a = {"kind": kind, "d": rnd.randrange(ndirectors), "via": rnd.randrange(ndirectors),
             "b": rnd.randrange(nbackends), "user": rnd.randrange(nusers),
             "secs": round(rnd.uniform(2, 8), 1), "vhosts": rnd.choice((10, 30, 50, 100, 150)),
             "gap": round(rnd.uniform(0.5, 2.5), 1), "during_stop": rnd.random() < 0.5}
        if a["via"] == a["d"]:
            a["via"] = (a["d"] + 1) % ndirectors
        out.append(a)
    return out


def describe(a):
    k = a["kind"]
    if k in ("kill9", "instance_restart"):
        return "%s d%d" % (k, a["d"])
    if k == "sigstop":
        return "sigstop d%d %.1fs%s" % (a["d"], a["secs"], " +move via d%d" % a["via"]
                                        if a["during_stop"] else "")
    if k in ("backend_bounce", "flush_safe", "flush_force"):
        return "%s b%d via d%d" % (k, a["b"], a["via"])
    if k == "move":
        return "move user%d -> b%d via d%d" % (a["user"] + 1, a["b"], a["via"])
    if k == "move_then_kill9":
        return "move user%d -> b%d via d%d, kill9 d%d" % (a["user"] + 1, a["b"], a["via"],
                                                         a["via"])
    if k == "vhost":
        return "vhost b%d = %d via d%d" % (a["b"], a["vhosts"], a["via"])
    return k


# --- (b) user tables of directors that stayed up ----------------------------------

def table(d, timeout=20):
    """{user hash: host ip} from USER-LIST."""
    return {h: ip for h, (ip, _) in ringrig.user_list(d, timeout=timeout).items()}


def compare_tables(before, after, excused_hashes, excused_hosts):
    """Users of `before` missing from `after` (lost) or on another host
    (changed), except excused hashes and users on excused hosts."""
    lost, changed = [], []
    for h, ip in before.items():
        if h in excused_hashes or ip in excused_hosts:
            continue
        if h not in after:
            lost.append((h, ip))
        elif after[h] != ip:
            changed.append((h, ip, after[h]))
    return lost, changed


# --- (a) sessions on two backends -------------------------------------------------

def classify_double(bad, force_windows):
    """Split double_served() rows into (flush -F explained, others).  An
    overlap is explained by a flush -F [t0, t1] when the earlier session
    started before the flush ended and the later one after it started."""
    explained, other = [], []
    for row in bad:
        user, a, b, s, e = row
        if any(a.start <= t1 and b.start >= t0 - 0.5 for t0, t1 in force_windows):
            explained.append(row)
        else:
            other.append(row)
    return explained, other


@contextlib.contextmanager
def stopped_pid(pid):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def leftover_pids(cluster):
    """Pids of processes of this cluster's instances still running."""
    return [pid for inst in cluster.instances() for pid in rig.instance_pids(inst)]
