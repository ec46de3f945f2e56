"""Bad clients (issue #6): slow readers, half-open connections, connection
floods and oversized lines on every director socket (director-admin,
director-userdb, login/director, the ring port from a listed and an unlisted
IP).  While each abuse is under way the director must still serve a normal
IMAP login and a doveadm command within a deadline, keep its pid, and keep
its VmRSS growth under a bound.

The director under test (DIRECTOR_BIN) is asserted; the same abuse is run on
a stock director next to it and its figures are printed for comparison
(STOCK_DIRECTOR_BIN; its outcome is asserted only where noted).  Both are
standalone (director_servers = self, so the ring port has a listed IP: the
director's own).  Every abuse is bounded in connections, bytes and seconds and
closes its sockets at the end."""

import contextlib
import os
import signal
import socket
import tempfile
import threading
import time

import pytest

import chaosrig
import rig
import ringrig

FLOOD_CONNS = 500
HALF_OPEN_CONNS = 100
SLOW_READER_SECS = 3.0
OVERSIZED_BYTES = 4 << 20
OVERSIZED_CONNS = 10
PROBE_DEADLINE_SECS = 15.0
RSS_GROWTH_LIMIT_KB = 64 * 1024
USERS = 5000          # USER-LIST replies ~150 kB each: slow readers make them pile up


def tmp_root():
    path = os.environ.get("CHAOS_TMPDIR") or os.path.join(tempfile.gettempdir(), "chaos-tests")
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def pair():
    """One backend, a standalone stock director and a standalone one under
    test, each holding USERS users."""
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    c = rig.Cluster(nbackends=1, nusers=20, tmp_root=tmp_root())
    ds = {"stock": c.add_director(bin=rig.stock_director_bin(), servers="self"),
          "ours": c.add_director(bin=rig.director_bin(), servers="self")}
    try:
        c.start()
        names = ["bad%d@example.com" % i for i in range(USERS)]
        for d in ds.values():
            oks, other, _ = ringrig.populate(d, names, [c.backends[0].ip])
            assert oks == USERS - sum(other.values())
        yield c, ds
    except BaseException:
        c.failed = True
        raise
    finally:
        c.failed = c.failed or rig.ANY_TEST_FAILED
        c.stop()
        for pid in chaosrig.leftover_pids(c):   # no process may outlive its master
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        c.cleanup()


# --- socket helpers ------------------------------------------------------------

SOCKETS = {"admin": "director-admin", "userdb": "director-userdb", "login": "login/director"}


def connect(d, where, timeout=5.0):
    """A connected socket to one of d's listeners: 'admin', 'userdb', 'login',
    'ring-listed' (from d's own IP, which director_servers lists) or
    'ring-unlisted' (from an address of the block no director uses)."""
    if where in SOCKETS:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(d.path(SOCKETS[where]))
        return s
    src = d.ip if where == "ring-listed" else d.cluster.base + ".77"
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((d.ip, rig.RING_PORT))
    return s


def push(s, data, secs):
    """Send data without blocking for more than secs in total; returns bytes
    sent (a director that stops reading fills the socket buffers)."""
    s.setblocking(False)
    sent = 0
    end = time.monotonic() + secs
    view = memoryview(data)
    while sent < len(data) and time.monotonic() < end:
        try:
            sent += s.send(view[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:   # the director closed it: fine
            break
    return sent


def close_all(socks):
    for s in socks:
        with contextlib.suppress(OSError):
            s.close()


# --- abuses: each returns (sockets to close at the end, figures) ---------------

def slow_reader(d, where):
    """Many requests on one connection, replies never read."""
    s = connect(d, where)
    if where == "admin":
        head = b"VERSION\tdirector-doveadm\t1\t0\n"
        body = b"USER-LIST\n" * 20000
    elif where == "userdb":
        head = b"VERSION\t1\t0\n"
        body = b"".join(b"PASS\t%d\tbad%d@example.com\tservice=lmtp\n" % (i, i % USERS)
                        for i in range(1, 50001))
    else:
        head = b"VERSION\t1\t2\nCPID\t%d\n" % (90000 + os.getpid() % 1000)
        body = b"".join(("AUTH\t%d\tPLAIN\tservice=imap\tresp=%s\n"
                         % (i, rig.auth_plain("bad%d@example.com" % (i % USERS)))).encode()
                        for i in range(1, 30001))
    sent = push(s, head + body, SLOW_READER_SECS)
    return [s], {"bytes_sent": sent}


def half_open(d, where, partial):
    socks, failed = [], 0
    for i in range(HALF_OPEN_CONNS):
        try:
            s = connect(d, where, timeout=2)
        except OSError:
            failed += 1
            continue
        socks.append(s)
        if partial:
            with contextlib.suppress(OSError):
                s.send(b"VERSION\tdirector-doveadm" if where == "admin" else b"VERSION\t1")
    return socks, {"open": len(socks), "connect_failed": failed}


def flood(d, where):
    socks, failed = [], 0
    end = time.monotonic() + 10
    for i in range(FLOOD_CONNS):
        if time.monotonic() > end:
            break
        try:
            socks.append(connect(d, where, timeout=2))
        except OSError:
            failed += 1
    return socks, {"open": len(socks), "connect_failed": failed}


def oversized(d, where):
    """OVERSIZED_CONNS connections each streaming a line of OVERSIZED_BYTES
    without LF (after a valid handshake line where there is one)."""
    head = {"admin": b"VERSION\tdirector-doveadm\t1\t0\nHOST-LIST\t",
            "userdb": b"VERSION\t1\t0\nPASS\t1\t",
            "login": b"VERSION\t1\t2\nCPID\t4242\nAUTH\t1\tPLAIN\tservice=imap\tresp=",
            }.get(where, b"VERSION\tdirector\t1\t")
    socks, sent = [], []
    data = head + b"x" * OVERSIZED_BYTES
    for i in range(OVERSIZED_CONNS):
        try:
            s = connect(d, where, timeout=2)
        except OSError:
            continue
        socks.append(s)
        sent.append(push(s, data, 0.3))
    closed = 0
    for s in socks:
        try:
            s.setblocking(False)
            closed += s.recv(65536, socket.MSG_PEEK) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    return socks, {"max_bytes_accepted": max(sent or [0]), "closed_by_director": closed}


# --- the probe ---------------------------------------------------------------------

def probe(d, user):
    """A normal IMAP login and a doveadm command; returns (secs, error)."""
    t0 = time.monotonic()
    res = {}

    def run():
        try:
            rig.imap_roundtrip(d, user)
            rc, out, err = rig.doveadm(d, "director", "status", timeout=PROBE_DEADLINE_SECS)
            if rc != 0:
                raise RuntimeError("doveadm rc=%d %s" % (rc, err.strip()[:200]))
        except Exception as e:
            res["error"] = "%s: %s" % (type(e).__name__, e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(PROBE_DEADLINE_SECS)
    if t.is_alive():
        return time.monotonic() - t0, "no answer within %.0fs" % PROBE_DEADLINE_SECS
    return time.monotonic() - t0, res.get("error")


CASES = (
    [("slow-reader", w) for w in ("userdb", "login")]
    + [("half-open-silent", w) for w in ("admin", "userdb", "login", "ring-listed")]
    + [("half-open-partial", w) for w in ("admin", "userdb", "login", "ring-listed")]
    + [("flood", w) for w in ("admin", "userdb", "login", "ring-listed", "ring-unlisted")]
    + [("oversized", w) for w in ("admin", "userdb", "login", "ring-listed")]
)
# 20000 USER-LISTs of 5000 users never read: stock 2.3.19.1 buffers the
# replies until vsz_limit (256 MB) kills the process; ours stops reading
# commands once 1 MiB of replies is queued, so its memory stays flat.
ADMIN_SLOW_READER = [("slow-reader", "admin")]


def run_case(d, kind, where):
    if kind == "slow-reader":
        return slow_reader(d, where)
    if kind == "half-open-silent":
        return half_open(d, where, False)
    if kind == "half-open-partial":
        return half_open(d, where, True)
    if kind == "flood":
        return flood(d, where)
    return oversized(d, where)


def abuse_all(c, d, cases=CASES):
    """Every case in turn on d; returns [(case, figures, probe secs, probe
    error, VmRSS growth kB during the case, director pid changed)].  Each
    case starts from the then current process, so one crash does not hide
    the outcome of the others."""
    out = []
    for kind, where in list(cases) + [("after-all", None)]:
        pid = rig.wait_until(d.director_pid, 15, "%s director process" % d.name)
        rss0 = ringrig.rss_kb(pid)[0]
        socks, fig = [], {}
        try:
            if where is not None:
                socks, fig = run_case(d, kind, where)
            secs, err = probe(d, c.users[len(out) % len(c.users)])
            now_pid = d.director_pid()
            rss1 = None
            if now_pid:
                with contextlib.suppress(OSError):
                    rss1 = ringrig.rss_kb(now_pid)[0]
            fig["rss_kb"] = rss1
            # None (a failure, see check()) unless both readings worked: an
            # unreadable VmRSS must not pass the memory bound.
            growth = rss1 - rss0 if now_pid == pid and None not in (rss0, rss1) else None
        finally:
            close_all(socks)
        out.append(("%s/%s" % (kind, where) if where else kind, fig, round(secs, 3), err,
                    growth, now_pid != pid))
    return out


def report(name, rows):
    print("\nBAD CLIENTS %s (case, figures, probe secs, probe error, VmRSS growth kB, "
          "pid changed)" % name)
    for r in rows:
        print("  %-32s %-48s %6.3fs %-10s %7s kB %s" % (
            r[0], r[1], r[2], (r[3] or "ok")[:80], "?" if r[4] is None else r[4],
            "PID CHANGED" if r[5] else ""))


def check(rows):
    """Failed rows: a probe error, a new pid, VmRSS growth over the bound or
    VmRSS that could not be read."""
    return [r for r in rows if r[3] or r[5] or r[4] is None or r[4] > RSS_GROWTH_LIMIT_KB]


def test_bad_clients_ours(pair, record_property):
    c, ds = pair
    rows = abuse_all(c, ds["ours"])
    report("ours", rows)
    record_property("bad_clients_ours", repr(rows))
    assert not check(rows), "director under test failed: %r" % check(rows)
    assert "ring synced" in rig.doveadm(ds["ours"], "director", "ring", "status")[1]


def test_bad_clients_stock_for_comparison(pair, record_property):
    """Figures for comparison; stock must hold the same line on these cases."""
    c, ds = pair
    rows = abuse_all(c, ds["stock"])
    report("stock", rows)
    record_property("bad_clients_stock", repr(rows))
    assert not check(rows), "stock director failed: %r" % check(rows)


def test_admin_slow_reader_ours(pair, record_property):
    c, ds = pair
    rows = abuse_all(c, ds["ours"], ADMIN_SLOW_READER)
    report("ours admin slow reader", rows)
    record_property("bad_clients_ours_admin_slow_reader", repr(rows))
    assert not check(rows), "director under test failed: %r" % check(rows)


def test_admin_slow_reader_stock_for_comparison(pair, record_property):
    """Stock dies of it (Out of memory at vsz_limit) and its master restarts
    it: recorded, and only 'serving again afterwards' is asserted."""
    c, ds = pair
    rows = abuse_all(c, ds["stock"], ADMIN_SLOW_READER)
    report("stock admin slow reader", rows)
    record_property("bad_clients_stock_admin_slow_reader", repr(rows))
    assert rows[-1][3] is None, rows[-1]
