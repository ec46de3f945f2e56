#!/usr/bin/python3
"""Rejoin benchmark: a director of ours restarted with its state file against a
full join, in one run (the delta rejoin between our directors, see
doc/operator-guide.md "Rejoining a ring").

A ring of three of our directors (d0 < d1 < d2 by IP; d1's left is d0, its right
d2) on loopback, with fake mail hosts (the director never connects to them).
d0 is filled with N users by pipelined USER-MOVE and the ring converges. Then
d1 is measured twice:
  1. full join: d1 stopped, its state file deleted, started again;
  2. rejoin: d1 stopped (its file is written at shutdown), K users moved to
     another host on d0 while it is down, d1 started again within seconds.
d0 is filled while it runs alone (its director_servers lists only itself); it
is then told of d1 and d2 (DIRECTOR-ADD), which join it (full joins). For each
measurement of d1 the clock runs from just before its Dovecot master is
started (`dovecot -c`, so process start, settings and the state file load are
included) to the first admin poll (every 20 ms) that sees both `ring synced`
and a user count (HOST-LIST sum) equal to d0's; the parts after d1's director
process started (/proc, 10 ms resolution: what comes before is the Dovecot
master's own startup) and after d1 first answered its admin socket are shown
too. Also the bytes d1's ring connections
carried in each direction (the kernel's per-socket counters, `ss -ti`), which
includes both handshakes and the ring traffic meanwhile. Afterwards d0, d1 and
d2 must map every user hash to the same backend (USER-LIST, compared entry by
entry). Prints a table; exit status 1 when a measurement failed or the tables
differ.

It starts and stops only the Dovecot masters it brought up (rig.py). Every wait
has a deadline. Needs root (the rig binds 127.X.Y.Z and runs Dovecot).

Both measurements are repeated --rounds times (default 3; each rejoin moves
another K users) and the table gives the median of each figure and, for each
ratio, the median and the range of the per-round ratios: the full join's time
moves by 20-40 % between rounds on a shared 2-core machine.

usage: rejoin-bench.py [--ours BIN] [--users N] [--changes K] [--rounds R] [--keep]
"""

import argparse
import datetime
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import rig  # noqa: E402

_spec = importlib.util.spec_from_file_location("ring_bench", os.path.join(HERE, "ring-bench.py"))
rb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rb)

SETTINGS_DIR = "/usr/lib/dovecot/modules/settings"
STATE_MODULE = "libdirector_state_settings.so"
# The poll's wait counts in the measured time, and a rejoin's exchange takes
# about 40 ms: a 20 ms poll added up to half of it.
POLL_SECS = 0.005
# Microseconds in the directors' log timestamps, for the ring exchange's times.
LOG_TIMESTAMP = 'log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} "'
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def say(msg):
    sys.stderr.write("rejoin-bench: %s\n" % msg)
    sys.stderr.flush()


def ring_bytes(ip, port):
    """(bytes in, bytes out) over the TCP connections of ip that touch the ring
    port, from the kernel's tcp_info counters."""
    out = subprocess.run(["ss", "-tinH", "state", "established"], capture_output=True,
                         text=True, timeout=10, check=True).stdout.splitlines()
    rx = tx = 0
    i = 0
    while i < len(out):
        f = out[i].split()
        info = out[i + 1] if i + 1 < len(out) else ""
        i += 2
        if len(f) < 4:
            continue
        local, peer = f[-2], f[-1]
        lip, lport = local.rsplit(":", 1)
        _, pport = peer.rsplit(":", 1)
        if lip != ip or (lport != str(port) and pport != str(port)):
            continue
        m_rx = re.search(r"bytes_received:(\d+)", info)
        m_tx = re.search(r"bytes_sent:(\d+)", info)
        rx += int(m_rx.group(1)) if m_rx else 0
        tx += int(m_tx.group(1)) if m_tx else 0
    return rx, tx


def state_path(d):
    return os.path.join(d.state_dir, "director", "director.state")


def move(inst, users, host_of):
    adm = rb.Admin(inst, timeout=60)
    bad = 0
    for u in users:
        if adm.cmd("USER-MOVE\t%s\t%s" % (u, host_of(u))) != "OK":
            bad += 1
    adm.close()
    return bad


def log_times(d, after_wall):
    """Wall-clock times of d's log lines "Connecting to" (its first ring
    connection) and "Director ring handshaked" after after_wall: the ring
    exchange, without process start and state file load."""
    res = {}
    for line in d.read_log().splitlines():
        for key, text in (("connect", "director: Info: Connecting to "),
                          ("handshaked", "director: Info: Director ring handshaked")):
            if key in res or text not in line:
                continue
            try:
                when = datetime.datetime.strptime(line[:26], LOG_TIME_FORMAT).timestamp()
            except ValueError:
                continue
            if when >= after_wall:
                res[key] = when
    return res


def measure_join(c, d, left, want_users, deadline_secs):
    wall0 = time.time()
    t0 = rb.launch(c, d)
    adm = rb.Admin.connect(d, 10)
    admin = time.monotonic() - t0
    end = t0 + deadline_secs
    synced = counted = None
    while synced is None or counted is None:
        if time.monotonic() > end:
            raise TimeoutError("%s not synced with %d users after %.0fs"
                               % (d.name, want_users, deadline_secs))
        ring, _ = adm.ring_status()
        n = adm.user_count()
        now = time.monotonic() - t0
        if ring == "ring synced" and synced is None:
            synced = now
        if n >= want_users and counted is None:
            counted = now
        time.sleep(POLL_SECS)
    adm.close()
    secs = max(synced, counted)
    rx, tx = ring_bytes(d.ip, rig.RING_PORT)
    # The director process's start on the same clock as t0 (10 ms resolution):
    # what comes before it is the Dovecot master's own startup.
    boot0 = time.clock_gettime(time.CLOCK_BOOTTIME) - (time.monotonic() - t0)
    st = rb.proc_start_boottime(d.director_pid())
    from_proc = secs - (st - boot0) if st is not None else None
    lt = log_times(d, wall0 - 1)
    exchange = handshaked = None
    if "connect" in lt:
        exchange = wall0 + secs - lt["connect"]
        if "handshaked" in lt:
            handshaked = lt["handshaked"] - lt["connect"]
    return {"secs": secs, "synced": synced, "counted": counted, "admin": admin,
            "after_admin": secs - admin, "from_proc": from_proc, "exchange": exchange,
            "handshaked": handshaked, "bytes_in": rx, "bytes_out": tx}


def new_host(hosts, user):
    """Where a changed user is moved: the host after its usual one."""
    return hosts[(int(user[4:user.index("@")]) + 1) % len(hosts)]


def figure(m, key):
    if key == "bytes":
        return m["bytes_in"] + m["bytes_out"]
    return m[key]


def tables(ds):
    return [{h: ip for h, (ip, _) in rb_user_list(d).items()} for d in ds]


def rb_user_list(d):
    import ringrig
    return ringrig.user_list(d, timeout=300)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ours", default=os.environ.get("DIRECTOR_BIN") or rb.DEFAULT_OURS)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--changes", type=int, default=1000,
                    help="users moved while the director is down (default 1000)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="full joins and rejoins measured, alternating (default 3)")
    ap.add_argument("--deadline", type=float, default=180.0)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    os.environ["DIRECTOR_BIN"] = args.ours
    from test_health import built_file, installed
    module = built_file("adapter", STATE_MODULE, SETTINGS_DIR)

    c = rig.Cluster(nbackends=0, nusers=1, keep=args.keep)
    hosts = ["%s.%d" % (c.base, s) for s in rb.MAIL_HOST_SUFFIXES]
    ips = ["%s.%d" % (c.base, 100 + j) for j in range(3)]
    servers = " ".join("%s:%d" % (ip, rig.RING_PORT) for ip in ips)
    # d0 lists only itself (it is filled alone) and learns d1 and d2 by
    # DIRECTOR-ADD; d1 and d2 list all three.
    ds = [c.add_director(bin=args.ours, servers="self" if j == 0 else servers,
                         mail_servers=" ".join(hosts), extra_conf=LOG_TIMESTAMP)
          for j in range(3)]
    d0, d1, d2 = ds
    res = {}
    failed = False
    try:
        with installed(module, SETTINGS_DIR, STATE_MODULE):
            # Fill d0 while it is alone: a million USER-MOVEs going around a ring of
            # three overflow output buffers and get connections refused as "sent
            # invalid protocol data", which then still hold during the measurements.
            c.start(only=[d0])
            t = time.monotonic()
            replies = rb.populate(d0, hosts, args.users, args.deadline)
            say("populated d0 alone: %d USER-MOVE in %.1fs, replies %r"
                % (args.users, time.monotonic() - t, replies))
            adm0 = rb.Admin(d0, timeout=60)
            for d in (d1, d2):
                r = adm0.cmd("DIRECTOR-ADD\t%s\t%d" % (d.ip, rig.RING_PORT))
                if r != "OK":
                    raise RuntimeError("d0: DIRECTOR-ADD replied %r" % r)
            adm0.close()
            for d in (d1, d2):
                rb.launch(c, d)
            adms = [rb.Admin.connect(d, args.deadline) if d is not d0 else rb.Admin(d, timeout=60)
                    for d in ds]
            want = rig.wait_until(
                lambda: (lambda n: n if all(a.user_count() == n for a in adms[1:]) and n
                         else None)(adms[0].user_count()),
                args.deadline, "ring converged", interval=0.5)
            for a in adms:
                a.close()
            say("ring converged at %d users" % want)

            res["full"], res["rejoin"], res["load_ms"], res["delta_log"] = [], [], [], []
            changed = []
            for r in range(args.rounds):
                # 1. full join
                c.stop(only=[d1])
                os.unlink(state_path(d1))
                m = measure_join(c, d1, d0, want, args.deadline)
                res["full"].append(m)
                say("round %d: full join: %r" % (r + 1, m))

                # 2. rejoin with the state file, K other users moved meanwhile
                t_stop = time.monotonic()
                c.stop(only=[d1])
                assert os.path.exists(state_path(d1)), "no state file after a clean stop"
                moved = ["user%d@example.com" % i
                         for i in range(r * args.changes + 1, (r + 1) * args.changes + 1)]
                bad = move(d0, moved, lambda u: new_host(hosts, u))
                changed += moved
                down = time.monotonic() - t_stop
                say("round %d: d1 down for %.1fs; moved %d users on d0 (%d not OK)"
                    % (r + 1, down, len(moved), bad))
                m = measure_join(c, d1, d0, want, args.deadline)
                m["down_secs"] = down
                res["rejoin"].append(m)
                say("round %d: rejoin: %r" % (r + 1, m))
                log = d1.read_log()
                found = re.findall(r"Delta join: kept (\d+) users .*, (\d+) buckets replaced by "
                                   r"(\d+) users received", log)
                res["delta_log"].append(found[-1] if found else None)
                found = re.findall(r"restored \d+ users .*, loaded in (\d+) ms", log)
                res["load_ms"].append(int(found[-1]) if found else None)

            # 3. the same hash -> backend on every director
            t = time.monotonic()
            maps = tables(ds)
            diffs = []
            for d, mp in zip(ds[1:], maps[1:]):
                differ = sum(1 for k in maps[0] if mp.get(k) != maps[0][k])
                extra = len(set(mp) - set(maps[0]))
                diffs.append((d.name, differ, extra))
                if differ or extra:
                    failed = True
            res["compare"] = {"users": len(maps[0]), "diffs": diffs,
                              "secs": time.monotonic() - t}
            moved_ok = sum(1 for u in changed
                           if maps[1].get(rb.user_hash(u)) == new_host(hosts, u))
            res["compare"]["moved_seen_on_d1"] = moved_ok
            c.stop(only=ds)
    except BaseException as e:
        failed = True
        say("FAILED: %s: %s" % (type(e).__name__, e))
        c.failed = True
        c.cleanup()
        raise
    if failed:
        c.failed = True
    c.cleanup()
    full, rej = res["full"], res["rejoin"]
    out = sys.stdout
    out.write("%d rounds; medians, and the range of the per-round ratios\n" % len(full))
    out.write("%-34s %12s %12s %7s  %s\n" % ("metric (d1, ours)", "full join", "rejoin", "ratio",
                                             "rounds"))
    for key, label in (("secs", "time to synced + all users (s)"),
                       ("from_proc", "  of it after director start (s)"),
                       ("after_admin", "  of it after admin answered (s)"),
                       ("exchange", "  of it after first ring connect (s)"),
                       ("handshaked", "ring connect -> handshaked (s)"),
                       ("bytes_in", "ring bytes received"),
                       ("bytes_out", "ring bytes sent"),
                       ("bytes", "ring bytes, both ways")):
        pairs = [(figure(f, key), figure(j, key)) for f, j in zip(full, rej)]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            out.write("%-34s %12s %12s %7s\n" % (label, "-", "-", "-"))
            continue
        a = statistics.median(p[0] for p in pairs)
        b = statistics.median(p[1] for p in pairs)
        ratios = [q / p for p, q in pairs if p]
        secs = key in ("secs", "from_proc", "after_admin", "exchange", "handshaked")
        out.write("%-34s %12s %12s %7s  %s\n" % (
            label, "%.3f" % a if secs else "%d" % a, "%.3f" % b if secs else "%d" % b,
            "%.3f" % statistics.median(ratios) if ratios else "-",
            "%.3f-%.3f" % (min(ratios), max(ratios)) if ratios else "-"))
    out.write("state file load on the restarted director (its log), ms: %s\n"
              % ", ".join("-" if x is None else str(x) for x in res["load_ms"]))
    out.write("users %d, moved while down %d per round (down %s s); delta log (kept, "
              "buckets, received): %s\n"
              % (res["compare"]["users"], args.changes,
                 ", ".join("%.1f" % j["down_secs"] for j in rej), res["delta_log"]))
    out.write("hash -> backend compared for every user: %s; moved users seen on d1 at "
              "their new host: %d/%d\n"
              % (", ".join("%s vs d0: %d differ, %d extra" % x for x in res["compare"]["diffs"]),
                 res["compare"]["moved_seen_on_d1"], len(full) * args.changes))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
