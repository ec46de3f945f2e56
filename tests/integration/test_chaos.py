"""Chaos (issue #6): a ring of three directors (default two of ours and one
stock), three backends, IMAP and LMTP load from many users through random
directors, and a seeded schedule of faults and admin changes, one at a time:
kill -9 of a director process, SIGSTOP/SIGCONT, stop+start of a director
instance, backend down/up, safe flush and flush -F, user moves, vhost changes.

Invariants, each counted as violations:
  (a) no user has sessions open on two backends at once (from the backends'
      own Login/Disconnected lines, ringrig.double_served); overlaps a
      deliberately unsafe `flush -F` explains are reported separately;
  (b) no director that stayed up (same process through an action) loses a
      user or has it on another host, unless the action explains it (move,
      flush of that host);
  (c) at the end every director has the same host list and user table
      (USER-LIST and `doveadm director map -f`);
  (d) no director process outlives its master (instance stop, final stop);
      a survivor is killed by pid so the run can go on;
  (e) every doveadm director command succeeds, except one sent to a director
      while it is SIGSTOPped, or a temporary failure (exit 75, e.g. "User is
      already being moved") while another director of the ring is stopped, or
      "User is already being moved" for a user whose move may still be under
      way (moved, or on a host flushed, less than MOVE_IN_FLIGHT_SECS before:
      a move ends one director_user_kick_delay after its kicks) (counted as
      excused);
  (f) after every action the ring converges within SETTLE_CONVERGED_SECS of
      forming again, and every director answers USER-LIST.

Environment:
  CHAOS_SECONDS   seconds of chaos (default 75; 0 skips; 600 = long mode)
  CHAOS_SEED      schedule seed (default 1)
  CHAOS_MIX       ring mix (default "ours,stock,ours": stock in the middle)
  CHAOS_USERS     users (default 200)
  CHAOS_REPORT    append the summary as a JSON line to this file
  CHAOS_TMPDIR    cluster root (default $TMPDIR/chaos-tests)
"""

import contextlib
import hashlib
import json
import os
import signal
import tempfile
import threading
import time

import pytest

import chaosrig
import rig
import ringrig

CHAOS_SECONDS = float(os.environ.get("CHAOS_SECONDS") or 75)
CHAOS_SEED = int(os.environ.get("CHAOS_SEED") or 1)
CHAOS_MIX = ringrig.parse_mix(os.environ.get("CHAOS_MIX") or "ours,stock,ours")
CHAOS_USERS = int(os.environ.get("CHAOS_USERS") or 200)
SETTLE_FORMED_SECS = 60
SETTLE_CONVERGED_SECS = 20
ADMIN_TIMEOUT_SECS = 45
POPULATE_MOVES_END_SECS = 3
MOVE_IN_FLIGHT_SECS = 5

pytestmark = pytest.mark.skipif(CHAOS_SECONDS <= 0, reason="CHAOS_SECONDS=0")


def tmp_root():
    path = os.environ.get("CHAOS_TMPDIR") or os.path.join(tempfile.gettempdir(), "chaos-tests")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def user_hash(user):
    """director_username_hash = %Lu (hashing-and-state.md §1)."""
    h = int.from_bytes(hashlib.md5(user.lower().encode()).digest()[:4], "big")
    return h or 1


class Chaos:
    """Runs the schedule and keeps the figures."""

    def __init__(self, ring):
        self.r = ring
        self.c = ring.c
        self.t_start = time.time()
        self.faults = {}            # kind -> count
        self.recovery = {}          # kind -> [seconds until the ring formed again]
        self.admin_errors = []      # (action, doveadm args, rc, text)
        self.admin_excused = []     # the same, sent to a stopped director
        self.force_windows = []     # (t0, t1) of flush -F
        self.violations = []        # text
        self.slow_settle = []       # (action, what)
        self.log = []               # (secs since start, action text)
        self.last_move = {}         # user -> time.monotonic() of its last move
        self.last_flush = None      # time.monotonic() of the last safe flush

    def rel(self):
        return time.time() - self.t_start

    def doveadm(self, label, d, *args, excused=False, tempfail_excused=False,
                moving_excused=False):
        """Runs doveadm on d; a failure is an (e) error, or excused when d
        was stopped on purpose while the command ran (excused), or when it is
        a temporary failure while a ring peer was stopped (tempfail_excused),
        or "already being moved" for a user that may be (moving_excused)."""
        try:
            rc, out, err = rig.doveadm(d, *args, timeout=ADMIN_TIMEOUT_SECS)
        except Exception as e:   # timeout: counted
            rc, out, err = -1, "", "%s: %s" % (type(e).__name__, e)
        if rc != 0:
            excuse = excused or (tempfail_excused and rc == 75) or \
                (moving_excused and rc == 75 and "already being moved" in out + err)
            (self.admin_excused if excuse else self.admin_errors).append(
                (label, " ".join(args), rc, (out + err).strip()[:200]))
        return rc

    def kill9(self, d):
        pid = d.director_pid()
        if not pid:
            self.violations.append("no director process under %s before kill -9" % d.name)
            return
        os.kill(pid, signal.SIGKILL)
        try:
            ringrig.wait_new_director_pid(d, pid, deadline_secs=30)
        except TimeoutError as e:
            self.violations.append("%s: director not restarted by its master: %s" % (d.name, e))

    def reap(self, d, pid, label):
        """(d) The director process must exit with its master.  A survivor
        is a violation; it is killed (it is ours) so the run goes on."""
        if not pid:
            return
        try:
            rig.wait_until(lambda: not rig.pid_alive(pid), 5, "director %d to exit" % pid)
        except TimeoutError:
            self.violations.append("(d) %s: director process %d still running 5s after its "
                                   "master stopped (%s)" % (d.name, pid, label))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def run_action(self, a):
        """Do one action; returns (names of restarted directors, excused user
        hashes, excused host ips)."""
        ds, bs = self.r.directors, self.c.backends
        d, via, b = ds[a["d"]], ds[a["via"]], bs[a["b"]]
        user = self.c.users[a["user"]]
        label = chaosrig.describe(a)
        kind = a["kind"]
        restarted, hashes, hosts = set(), set(), set()
        if kind == "kill9":
            self.kill9(d)
            restarted.add(d.name)
        elif kind == "sigstop":
            pid = d.director_pid()
            mover = None
            with chaosrig.stopped_pid(pid):
                if a["during_stop"]:
                    hashes.add(user_hash(user))
                    mover = threading.Thread(target=self.doveadm, args=(
                        label, via, "director", "move", user, b.ip),
                        kwargs={"excused": via is d, "tempfail_excused": True},
                        daemon=True)
                    mover.start()
                time.sleep(a["secs"])
            if mover:
                mover.join(ADMIN_TIMEOUT_SECS + 5)
        elif kind == "instance_restart":
            restarted.add(d.name)
            old = d.director_pid()
            self.c.stop(only=[d])
            self.reap(d, old, label)
            try:
                self.c.start(only=[d])
            except Exception as e:
                self.violations.append("%s did not come back after a restart: %s" % (d.name, e))
        elif kind == "backend_bounce":
            self.doveadm(label, via, "director", "down", b.ip)
            time.sleep(a["secs"] / 2)
            self.doveadm(label, ds[a["d"]], "director", "up", b.ip)
        elif kind == "flush_safe":
            hosts.add(b.ip)
            self.last_flush = time.monotonic()
            self.doveadm(label, via, "director", "flush", b.ip)
        elif kind == "flush_force":
            hosts.add(b.ip)
            t0 = time.time()
            self.doveadm(label, via, "director", "flush", "-F", b.ip)
            # sessions open at the flush stay open; new ones may go elsewhere
            self.force_windows.append((t0, time.time() + 1))
        elif kind == "move":
            hashes.add(user_hash(user))
            self.move(label, via, user, b)
        elif kind == "move_then_kill9":
            hashes.add(user_hash(user))
            self.move(label, via, user, b)
            self.kill9(via)
            restarted.add(via.name)
        elif kind == "vhost":
            self.doveadm(label, via, "director", "update", b.ip, str(a["vhosts"]))
        return restarted, hashes, hosts

    def move(self, label, via, user, b):
        now = time.monotonic()
        in_flight = any(t is not None and now - t < MOVE_IN_FLIGHT_SECS
                        for t in (self.last_move.get(user), self.last_flush))
        self.last_move[user] = now
        self.doveadm(label, via, "director", "move", user, b.ip, moving_excused=in_flight)

    def tables(self, among):
        out = {}
        for d in among:
            try:
                out[d.name] = (d.director_pid(), chaosrig.table(d))
            except Exception as e:   # a busy director: no comparison this time
                self.slow_settle.append(("USER-LIST", "%s: %s" % (d.name, e)))
        return out

    def settle(self, label):
        t0 = time.monotonic()
        try:
            self.r.wait_formed(deadline_secs=SETTLE_FORMED_SECS)
        except TimeoutError as e:
            self.violations.append("after %s: %s" % (label, e))
            return None
        formed = time.monotonic() - t0
        try:
            self.r.wait_converged(deadline_secs=SETTLE_CONVERGED_SECS)
        except TimeoutError as e:
            self.slow_settle.append((label, str(e)[:300]))
        return formed

    def run(self, schedule, seconds):
        end = time.monotonic() + seconds
        prev_excuse = (set(), set())
        for i, a in enumerate(schedule):
            if time.monotonic() >= end:
                break
            label = "#%d %s" % (i, chaosrig.describe(a))
            before = self.tables(self.r.directors)
            self.log.append((round(self.rel(), 1), label))
            restarted, hashes, hosts = self.run_action(a)
            self.faults[a["kind"]] = self.faults.get(a["kind"], 0) + 1
            formed = self.settle(label)
            if formed is not None:
                self.recovery.setdefault(a["kind"], []).append(round(formed, 2))
            stayed = [d for d in self.r.directors if d.name not in restarted]
            after = self.tables(stayed)
            ex_h, ex_hosts = hashes | prev_excuse[0], hosts | prev_excuse[1]
            for name, (pid, tab) in after.items():
                if name not in before or before[name][0] != pid:
                    continue
                lost, changed = chaosrig.compare_tables(before[name][1], tab, ex_h, ex_hosts)
                if lost:
                    self.violations.append("(b) %s lost %d users during %s, e.g. %r"
                                           % (name, len(lost), label, lost[:5]))
                if changed:
                    self.violations.append("(b) %s changed the host of %d users during %s, "
                                           "e.g. %r" % (name, len(changed), label, changed[:5]))
            prev_excuse = (hashes, hosts)
            time.sleep(a["gap"])


def test_chaos(make_cluster, record_property):
    c = make_cluster(nbackends=3, nusers=CHAOS_USERS, tmp_root=tmp_root())
    try:
        run_chaos(c, record_property)
    finally:
        # whatever happened, no process of this cluster may keep running
        c.stop()
        for pid in chaosrig.leftover_pids(c):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def run_chaos(c, record_property):
    # users must not expire during a long run (expiry would look like loss)
    r = ringrig.Ring(c, CHAOS_MIX, user_expire="1 hour")
    r.start(deadline_secs=60)
    oks, other, _ = ringrig.populate(r.directors[0], c.users, [b.ip for b in c.backends])
    assert set(other) <= {"TRYAGAIN"}, other
    r.wait_converged(deadline_secs=60)
    # The tables agree before populate's moves are over: each move ends one
    # director_user_kick_delay (2 s by default) after its kicks, and a move of
    # the same user before that is rightly answered "User is already being
    # moved" (seen with seed 11, whose first action moves a user).
    time.sleep(POPULATE_MOVES_END_SECS)
    chaos = Chaos(r)
    schedule = chaosrig.make_schedule(CHAOS_SEED, 10000, len(r.directors), len(c.backends),
                                      len(c.users))
    t0 = time.monotonic()
    with chaosrig.ChaosLoad(r, c.users, seed=CHAOS_SEED,
                            max_secs=CHAOS_SECONDS + 600) as load:
        chaos.run(schedule, CHAOS_SECONDS)
        chaos_secs = time.monotonic() - t0
        # (c) converged at the end, with the load still running for a bit
        t1 = time.monotonic()
        try:
            r.wait_formed(deadline_secs=90)
            r.wait_converged(deadline_secs=90)
        except TimeoutError as e:
            chaos.violations.append("(c) end: %s" % e)
    try:
        r.wait_converged(deadline_secs=60, users_file=c.users_file)
    except TimeoutError as e:
        chaos.violations.append("(c) end (after load): %s" % e)
    converge_secs = time.monotonic() - t1
    # (a) from the backends' logs
    try:
        sessions = rig.wait_until(lambda: (lambda ss: ss if all(s.end for s in ss) else None)(
            ringrig.backend_sessions(c)), 30, "backend sessions to end")
    except TimeoutError:
        sessions = ringrig.backend_sessions(c)
        chaos.violations.append("sessions still open at the end: %r"
                                % [s for s in sessions if not s.end][:5])
    bad = ringrig.double_served(sessions)
    force_bad, bad = chaosrig.classify_double(bad, chaos.force_windows)
    for u, a, b, s, e in bad:
        chaos.violations.append("(a) %s on %s and %s at once for %.3fs from %s: %r %r" % (
            u, a.backend, b.backend, e - s, time.strftime("%H:%M:%S", time.localtime(s))
            + ("%.6f" % (s % 1))[1:], a, b))
    # (d) no director process outlives its master at the end either
    pids = {d.name: d.director_pid() for d in r.directors}
    c.stop()
    for d in r.directors:
        chaos.reap(d, pids[d.name], "final stop")
    for pid in chaosrig.leftover_pids(c):
        chaos.violations.append("(d) process %d of this cluster outlived its master" % pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    ls = load.summary()
    deliveries = sum(b.maildir_count(u) for b in c.backends for u in c.users)
    summary = {
        "seed": CHAOS_SEED, "mix": ",".join(CHAOS_MIX), "users": len(c.users),
        "chaos_secs": round(chaos_secs, 1), "end_converge_secs": round(converge_secs, 2),
        "actions": len(chaos.log), "faults": chaos.faults,
        "recovery_secs": {k: {"n": len(v), "max": max(v), "avg": round(sum(v) / len(v), 2)}
                          for k, v in chaos.recovery.items()},
        "imap": ls["imap"], "lmtp": ls["lmtp"], "backend_sessions": len(sessions),
        "messages_in_maildirs": deliveries,
        "double_served_flush_force": len(force_bad),
        "admin_errors": len(chaos.admin_errors),
        "admin_error_examples": chaos.admin_errors[:6],
        "admin_errors_excused": len(chaos.admin_excused),
        "slow_settle": len(chaos.slow_settle),
        "slow_settle_examples": chaos.slow_settle[:4],
        "violations": len(chaos.violations),
        "schedule": chaos.log,
        "cluster_dir": c.dir,
    }
    text = json.dumps(summary, indent=1, default=str)
    print("CHAOS SUMMARY\n" + text)
    for v in chaos.violations:
        print("VIOLATION " + v)
    record_property("chaos_summary", json.dumps(summary, default=str))
    path = os.environ.get("CHAOS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(dict(summary, violation_list=chaos.violations), default=str)
                    + "\n")
    assert ls["imap"]["ok"] > 0 and ls["lmtp"]["ok"] > 0, summary
    assert not chaos.violations, "%d violations (seed %d), first: %s" % (
        len(chaos.violations), CHAOS_SEED, "\n".join(chaos.violations[:10]))
    # (e) and (f)
    assert not chaos.admin_errors, "%d doveadm errors (seed %d): %r" % (
        len(chaos.admin_errors), CHAOS_SEED, chaos.admin_errors[:6])
    assert not chaos.slow_settle, "%d slow settles (seed %d): %r" % (
        len(chaos.slow_settle), CHAOS_SEED, chaos.slow_settle[:6])
