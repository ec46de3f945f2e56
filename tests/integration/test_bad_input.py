"""(d) Bad input on the director's four sockets (director-admin, login/director,
director-userdb, login/proxy-notify): malformed, oversized and unknown lines.

Every case is sent to a stock director (the target behaviour) and to the
director under test, side by side in one cluster.  Stock's reaction is asserted
(log line, dropped connection) and the director under test must react the same
way: same connection outcome, same director/auth log lines after normalizing
timestamps and counters.  After each case both directors must still be the
same process and still serve logins."""

import os
import re
import socket
import time

import pytest

import rig

ADMIN_HELLO = b"VERSION\tdirector-doveadm\t1\t0\n"

# (socket, id, payload, regex stock logs (None: nothing), stock closes the connection)
CASES = [
    ("admin", "unknown-command", ADMIN_HELLO + b"FOO\tbar\n",
     r"director: Error: doveadm sent unknown command: FOO\tbar$", True),
    # one CR before the LF is not part of the line (the line splitter strips it)
    ("admin", "crlf-unknown-command", ADMIN_HELLO + b"FOO\tcr\r\n",
     r"director: Error: doveadm sent unknown command: FOO\tcr$", True),
    ("admin", "empty-line", ADMIN_HELLO + b"\n",
     r"director: Error: doveadm sent empty command line$", True),
    ("admin", "host-set-bad-ip", ADMIN_HELLO + b"HOST-SET\tnot-an-ip\n",
     r"director: Error: doveadm sent invalid HOST-SET parameters$", True),
    ("admin", "host-update-no-count", ADMIN_HELLO + b"HOST-UPDATE\t127.0.0.1\n",
     r"director: Error: doveadm sent invalid HOST-UPDATE parameters$", True),
    ("admin", "user-move-no-host", ADMIN_HELLO + b"USER-MOVE\tuser1@example.com\n",
     r"director: Error: doveadm sent invalid USER-MOVE parameters$", True),
    ("admin", "director-add-bad-ip", ADMIN_HELLO + b"DIRECTOR-ADD\tx.y\n",
     r"director: Error: doveadm sent invalid DIRECTOR-ADD parameters$", True),
    ("admin", "bad-handshake", b"VERSION\tsomething-else\t1\t0\nHOST-LIST\n",
     r"director: Error: doveadm not compatible with this server", True),
    # stock drops an over-long (> 1024 bytes) admin line silently
    ("admin", "oversized-line", ADMIN_HELLO + b"HOST-LIST\t" + b"x" * 3000 + b"\n", None, True),
    ("login", "bad-version", b"HELLO\tworld\n",
     r"auth: Error: Authentication client sent invalid VERSION line: HELLO\tworld", True),
    ("login", "broken-auth", b"VERSION\t1\t2\nCPID\t4242\nAUTH\tx\n",
     r"auth: Error: BUG: Authentication client \d+ sent broken AUTH request", True),
    ("login", "oversized-line", b"VERSION\t1\t2\nCPID\t4243\n" + b"A" * 70000 + b"\n",
     r"auth: Error: BUG: Auth client \d+ sent us more than 16384 bytes", True),
    ("userdb", "bad-version", b"HELLO\tworld\n",
     r"auth: Error: auth-master client: Master not compatible with this server", True),
    ("userdb", "pass-without-args", b"VERSION\t1\t0\nPASS\n",
     r"auth: Error: auth-master client: BUG: Unknown command in userdb socket: PASS", True),
    ("userdb", "unknown-command", b"VERSION\t1\t0\nFROB\t1\tx\n",
     r"auth: Error: auth-master client: BUG: Unknown command in userdb socket: FROB", True),
    ("userdb", "oversized-line", b"VERSION\t1\t0\nPASS\t1\t" + b"A" * 5000 + b"\n",
     r"auth: Error: auth-master client: BUG: Master sent us more than 1024 bytes", True),
    ("notify", "unknown-user", b"no-such-user@example.com\n", None, None),
    ("notify", "binary-junk", b"\x01\x02\xff\xfe\t\x01\n", None, None),
    # stock stops reading the FIFO after this (see the report); keep it last
    ("notify", "oversized-line", b"Y" * 3000 + b"\n",
     r"director: Error: notify: read\(\) unexpectedly returned EOF$", None),
]

# Where the director under test deliberately differs from stock:
# (socket, id) -> (connection outcome, regexes of its director/auth log lines).
OURS_DIFFERS = {
    # stock closes silently; we say why
    ("admin", "oversized-line"): (
        True, [r"^director: Error: doveadm sent more than 1024 bytes in a line, disconnecting$"]),
    # stock logs a bogus EOF and never reads the FIFO again; we drop only the line
    ("notify", "oversized-line"): (
        None, [r"^director: Error: notify: Received a line longer than 1024 bytes, ignoring it$"]),
}

LOG_LINE_RE = re.compile(r" (director|auth): ")


def normalize_log(text):
    out = []
    for line in text.splitlines():
        if not LOG_LINE_RE.search(line):
            continue
        line = re.sub(r"^\w{3} +\d+ \d\d:\d\d:\d\d ", "", line)
        line = re.sub(r"\d+ msecs", "N msecs", line)
        line = re.sub(r"client \d+", "client N", line)
        out.append(line)
    return out


@pytest.fixture(scope="module")
def bad_pair():
    if rig.os.geteuid() != 0:
        pytest.skip("integration tests need root")
    c = rig.Cluster(nbackends=1, nusers=10)
    oracle = c.add_director(bin=rig.stock_director_bin())
    dut = c.add_director(bin=rig.director_bin())
    try:
        c.start()
        pids = {d.name: d.director_pid() for d in (oracle, dut)}
        assert all(pids.values()), pids
        # a session that must survive every case
        sessions = {d.name: rig.imap_login(d, c.users[1]) for d in (oracle, dut)}
        yield c, oracle, dut, pids, sessions
    except BaseException:
        c.failed = True
        raise
    finally:
        c.failed = c.failed or rig.ANY_TEST_FAILED
        c.cleanup()


def send_case(d, sock, payload):
    """Send payload to d's socket; returns (closed or None, log lines)."""
    off = d.log_size()
    closed = None
    if sock == "notify":
        rig.notify_fifo_write(d, payload)
    else:
        path = {"admin": "director-admin", "login": "login/director",
                "userdb": "director-userdb"}[sock]
        with rig.LineSocket.unix(d.path(path), timeout=0.5) as s:
            s.send(payload)
            _, closed = s.read_until_closed(4)
    return off, closed


_barrier_counter = [0]


def log_until_barrier(d, off):
    """d's log from `off` up to a barrier: both processes that log for these
    cases (the director, and auth behind login/director) are made to log a
    line with a fresh token, and once both lines are there every line the
    case caused in either process is too (each process's lines reach the log
    in order).  Auth is asked directly on its auth-login socket, so the
    director sees nothing of it.  Returns the log without the barrier lines."""
    _barrier_counter[0] += 1
    token = "barrier%d" % _barrier_counter[0]
    with rig.LineSocket.unix(d.path("director-admin"), timeout=2) as s:
        s.send(ADMIN_HELLO + token.encode() + b"\n")
        s.read_until_closed(4)
    with rig.LineSocket.unix(d.path("auth-login"), timeout=2) as s:
        s.send(b"HELLO\t" + token.encode() + b"\n")
        s.read_until_closed(4)
    d.wait_log(r"doveadm sent unknown command: %s$" % token, offset=off, deadline_secs=5)
    d.wait_log(r"invalid VERSION line: HELLO\t%s$" % token, offset=off, deadline_secs=5)
    return "".join(line for line in d.log_since(off).splitlines(True) if token not in line)


@pytest.mark.parametrize("sock,name,payload,expect,closes", CASES,
                         ids=["%s-%s" % (c[0], c[1]) for c in CASES])
def test_bad_input(bad_pair, sock, name, payload, expect, closes):
    c, oracle, dut, pids, sessions = bad_pair
    results = {}
    for d in (oracle, dut):
        off, closed = send_case(d, sock, payload)
        wait_for = expect
        if d is dut and (sock, name) in OURS_DIFFERS:
            wait_for = OURS_DIFFERS[(sock, name)][1][0].strip("^$")
        if wait_for:
            d.wait_log(wait_for, offset=off, deadline_secs=5)
        results[d.name] = (closed, normalize_log(log_until_barrier(d, off)))
    s_closed, s_log = results[oracle.name]
    # what stock does (the target)
    assert s_closed == closes, "stock connection outcome: %r" % s_closed
    if expect is None:
        assert s_log == [], s_log
    if (sock, name) in OURS_DIFFERS:
        want_closed, want_log = OURS_DIFFERS[(sock, name)]
        got_closed, got_log = results[dut.name]
        assert got_closed == want_closed, "ours: connection outcome %r" % got_closed
        assert len(got_log) == len(want_log) and all(
            re.search(w, g) for w, g in zip(want_log, got_log)), "ours: %r" % got_log
    else:
        # the director under test does the same
        assert results[dut.name] == results[oracle.name], "\n stock: %r\n  ours: %r" % (
            results[oracle.name], results[dut.name])
    # both are alive: same director process, open session, new logins
    for d in (oracle, dut):
        assert d.director_pid() == pids[d.name], "%s: director process changed" % d.name
        assert sessions[d.name].noop()[0] == "OK"
        ip, _ = rig.imap_roundtrip(d, c.users[0])
        assert ip == c.backends[0].ip


def test_userdb_socket_serves_after_bad_input(bad_pair):
    """A well-formed PASS lookup on director-userdb still gets host= appended."""
    c, oracle, dut, pids, sessions = bad_pair
    for d in (oracle, dut):
        with rig.userdb_socket(d) as s:
            s.send(b"VERSION\t1\t0\nPASS\t7\t%s\tservice=lmtp\n" % c.users[2].encode())
            lines = [s.read_line() for _ in range(3)]
        assert lines[0].startswith("VERSION\t1\t"), lines
        assert lines[2] == ("PASS\t7\tuser=%s\tproxy=y\tproxy_refresh=450\thost=%s"
                            % (c.users[2], c.backends[0].ip)), lines


def test_notify_fifo_still_refreshes_after_oversized_line(bad_pair):
    """Unlike stock, the director under test keeps reading proxy-notify after a
    too-long line: a later refresh moves the user's expiry forward."""
    c, oracle, dut, pids, sessions = bad_pair
    user = c.users[3]
    rig.imap_roundtrip(dut, user)
    before = rig.status_fields(dut, user)
    time.sleep(1.1)
    rig.notify_fifo_write(dut, b"Z" * 3000 + b"\n" + user.encode() + b"\n")

    def refreshed():
        return rig.status_fields(dut, user) != before
    rig.wait_until(refreshed, 5, "expiry of %s to move after a proxy-notify refresh" % user)


def admin_roundtrip_secs(d):
    """Seconds for a HOST-LIST on d's admin socket (handshake included)."""
    t0 = time.monotonic()
    with rig.LineSocket.unix(d.path("director-admin"), timeout=10) as s:
        s.send(ADMIN_HELLO + b"HOST-LIST\n")
        assert s.read_line().startswith("VERSION\t")
        while s.read_line() != "":
            pass
    return time.monotonic() - t0


def test_auth_refusing_does_not_block_the_director(bad_pair):
    """While auth refuses connections (its auth-login socket exists but
    nobody accepts), each new login connection makes the director retry for
    up to a second.  Ours retries from a timer, so the director keeps
    answering; stock retries inside connect() and blocks for each of them
    (its figure is printed, not asserted)."""
    c, oracle, dut, pids, sessions = bad_pair
    conns = 4
    figures = {}
    for d in (oracle, dut):
        real = d.path("auth-login")
        moved = real + ".real"
        os.rename(real, moved)
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        socks = []
        try:
            dead.bind(real)   # bound, never listening: connect() is refused
            os.chmod(real, 0o666)
            off = rig.os.path.getsize(d.log)
            for _ in range(conns):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(d.path("login/director"))
                s.sendall(b"VERSION\t1\t2\nCPID\t1\n")
                socks.append(s)
            secs = admin_roundtrip_secs(d)
            figures[d.name] = round(secs, 3)
            d.wait_log(r"connect\(auth-login\) failed: Connection refused", offset=off,
                       deadline_secs=conns * 2 + 5)
        finally:
            for s in socks:
                s.close()
            dead.close()
            os.unlink(real)
            os.rename(moved, real)
    print("\nADMIN ROUND TRIP while auth refuses %d login connections: %r" % (conns, figures))
    assert figures[dut.name] < 0.5, figures
    # both serve logins again
    for d in (oracle, dut):
        assert d.director_pid() == pids[d.name]
        ip, _ = rig.imap_roundtrip(d, c.users[0])
        assert ip == c.backends[0].ip
