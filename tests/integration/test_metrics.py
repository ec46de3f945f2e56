"""Observability: the director-metrics listener's gauges (OpenMetrics over
HTTP, parsed with prometheus_client's OpenMetrics parser), their values after
logins, moves, host changes and ring changes, and clients of that listener
that are slow, idle, flooding or speaking garbage while logins go on."""

import contextlib
import http.client
import os
import re
import socket
import threading
import time

import pytest

import rig
import ringrig

METRICS_PORT = 9101
PROBE_DEADLINE_SECS = 10.0

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError:   # a missing parser is a failure in the tests that need it
    text_string_to_metric_families = None


def metrics_conf(ip, unix=False):
    """service director lines adding the director-metrics listener."""
    if unix:
        return """
service director {
  unix_listener director-metrics {
    mode = 0600
  }
}
"""
    return """
service director {
  inet_listener director-metrics {
    address = %s
    port = %d
  }
}
""" % (ip, METRICS_PORT)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_get(d, path="/metrics", unix=False, method="GET"):
    """(status, content type, body) of one request to d's metrics listener."""
    if unix:
        conn = UnixHTTPConnection(d.path("director-metrics"))
    else:
        conn = http.client.HTTPConnection(d.ip, METRICS_PORT, timeout=5.0)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        conn.close()


def scrape(d, unix=False):
    """{(name, frozenset(labels.items())): value} of d's gauges, parsed by the
    OpenMetrics parser (which rejects anything malformed)."""
    assert text_string_to_metric_families is not None, \
        "python3-prometheus-client is not installed"
    status, ctype, body = http_get(d, unix=unix)
    assert status == 200, body
    assert ctype.startswith("application/openmetrics-text; version=1.0.0"), ctype
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def gauge(m, name, **labels):
    return m.get((name, frozenset(labels.items())))


def per_host(m, name):
    """{host ip: value} of a {host,tag} gauge."""
    return {dict(k[1])["host"]: v for k, v in m.items() if k[0] == name}


def wait_gauges(d, pred, what, deadline_secs=15.0):
    last = [None]

    def check():
        last[0] = scrape(d)
        return pred(last[0])
    try:
        rig.wait_until(check, deadline_secs, what, interval=0.1)
    except TimeoutError:
        raise AssertionError("%s; last scrape: %r" % (what, last[0]))
    return last[0]


@pytest.fixture
def metrics_cluster(make_cluster):
    c = make_cluster(nbackends=3, nusers=40)
    d = c.add_director(extra_conf=metrics_conf(None, unix=True) + metrics_conf(
        "%s.100" % c.base))
    c.start()
    return c, d


def test_gauges_follow_logins_moves_and_host_changes(metrics_cluster):
    c, d = metrics_cluster
    m = scrape(d)
    assert sum(per_host(m, "dovecot_director_users").values()) == 0
    assert set(per_host(m, "dovecot_director_host_up")) == {b.ip for b in c.backends}
    assert gauge(m, "dovecot_director_ring_synced") == 1
    for direction in ("left", "right", "in", "out"):
        assert gauge(m, "dovecot_director_ring_connections", direction=direction) == 0
    assert gauge(m, "dovecot_director_requests_delayed") == 0
    assert gauge(m, "dovecot_director_moves_in_progress") == 0
    assert gauge(m, "dovecot_director_kicks_in_progress") == 0

    users = c.users[:12]
    for u in users:
        rig.imap_roundtrip(d, u)
    m = scrape(d)
    users_by_host = per_host(m, "dovecot_director_users")
    assert sum(users_by_host.values()) == 12
    table = rig.host_table(d)
    assert users_by_host == {ip: row["users"] for ip, row in table.items()}
    # the same over the unix listener
    assert per_host(scrape(d, unix=True), "dovecot_director_users") == users_by_host

    # a move: the user leaves one host for another
    user = users[0]
    src = rig.current_host(d, user)
    dst = next(b.ip for b in c.backends if b.ip != src)
    rc, out, err = d.doveadm("director", "move", user, dst)
    assert rc == 0, err
    m = wait_gauges(d, lambda m: gauge(m, "dovecot_director_moves_in_progress") == 0 and
                    per_host(m, "dovecot_director_users")[dst] == users_by_host[dst] + 1,
                    "user counted on the move's target")
    assert per_host(m, "dovecot_director_users")[src] == users_by_host[src] - 1

    # host changes: vhosts, down, up
    b = c.backends[2].ip
    rc, out, err = d.doveadm("director", "update", b, "37")
    assert rc == 0, err
    m = wait_gauges(d, lambda m: per_host(m, "dovecot_director_host_vhosts")[b] == 37,
                    "vhosts 37")
    rc, out, err = d.doveadm("director", "down", b)
    assert rc == 0, err
    m = wait_gauges(d, lambda m: per_host(m, "dovecot_director_host_up")[b] == 0, "host down")
    assert per_host(m, "dovecot_director_host_up") == {
        x.ip: (0 if x.ip == b else 1) for x in c.backends}
    rc, out, err = d.doveadm("director", "up", b)
    assert rc == 0, err
    wait_gauges(d, lambda m: per_host(m, "dovecot_director_host_up")[b] == 1, "host up")

    # removing a host removes its samples
    rc, out, err = d.doveadm("director", "remove", b)
    assert rc == 0, err
    wait_gauges(d, lambda m: b not in per_host(m, "dovecot_director_users"), "host removed")


def test_metrics_listener_http_errors(metrics_cluster):
    c, d = metrics_cluster
    assert http_get(d, "/")[0] == 404
    assert http_get(d, "/metrics/x")[0] == 404
    assert http_get(d, method="POST")[0] == 405
    status, ctype, body = http_get(d, method="HEAD")
    assert status == 200 and body == ""
    # query strings are allowed (some scrapers add them)
    assert http_get(d, "/metrics?x=1")[0] == 200
    rig.imap_roundtrip(d, c.users[0])   # the director still serves logins


def _timed_login(d, user):
    t0 = time.monotonic()
    rig.imap_roundtrip(d, user)
    return time.monotonic() - t0


def test_bad_metrics_clients_do_not_stall_logins(metrics_cluster):
    """While a slow sender, a non-reader, idle connections and garbage are on
    the metrics listener, logins and scrapes still answer promptly."""
    c, d = metrics_cluster
    pid = d.director_pid()
    socks = []
    try:
        # idle connections that never send a byte
        for _ in range(50):
            socks.append(socket.create_connection((d.ip, METRICS_PORT), timeout=5))
        # a request sent one byte a second (never finished within the test)
        slow = socket.create_connection((d.ip, METRICS_PORT), timeout=5)
        socks.append(slow)
        slow.send(b"GET /metr")
        # a client that pipelines many requests and never reads the answers
        greedy = socket.create_connection((d.ip, METRICS_PORT), timeout=5)
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        socks.append(greedy)
        greedy.setblocking(False)
        req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 200
        with contextlib.suppress(BlockingIOError, OSError):
            greedy.send(req)
        # garbage and an oversized header
        for junk in (b"\x00\x01\x02 garbage\r\n\r\n", b"GET /metrics HTTP/1.1\r\nX: " +
                     b"a" * 100000 + b"\r\n\r\n", b"GET " + b"/" * 5000 + b" HTTP/1.1\r\n\r\n"):
            s = socket.create_connection((d.ip, METRICS_PORT), timeout=5)
            socks.append(s)
            with contextlib.suppress(OSError):
                s.sendall(junk)
        for i, u in enumerate(c.users[20:30]):
            took = _timed_login(d, u)
            assert took < PROBE_DEADLINE_SECS / 2, "login %d took %.1fs" % (i, took)
            if i % 3 == 0:
                with contextlib.suppress(OSError):
                    slow.send(b"i")
        # the garbage clients got an error answer or were closed
        for s in socks[-3:]:
            s.settimeout(5)
            with contextlib.suppress(ConnectionResetError):
                data = s.recv(100)
                assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
        t0 = time.monotonic()
        m = scrape(d)
        assert time.monotonic() - t0 < PROBE_DEADLINE_SECS / 2
        assert sum(per_host(m, "dovecot_director_users").values()) == 10
    finally:
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
    assert d.director_pid() == pid
    assert "Panic" not in d.read_log() and "Fatal" not in d.read_log()


@pytest.mark.skipif(os.environ.get("RING_TESTS", "1") == "0", reason="RING_TESTS=0")
def test_ring_gauges_follow_a_killed_peer(make_cluster):
    c = make_cluster(nbackends=2, nusers=10)
    ring = ringrig.Ring(c, ("ours", "ours"))
    for d in ring.directors:
        d.extra_conf += metrics_conf(d.ip) + "verbose_proctitle = yes\n"
    ring.start()
    d1, d2 = ring.directors

    def formed(m):
        return (gauge(m, "dovecot_director_ring_synced") == 1 and
                gauge(m, "dovecot_director_ring_connections", direction="left") == 1 and
                gauge(m, "dovecot_director_ring_connections", direction="right") == 1)
    wait_gauges(d1, formed, "ring of two formed on d1")
    wait_gauges(d2, formed, "ring of two formed on d2")
    # d2 goes away entirely: d1 is left alone, then d2 comes back
    c.stop(only=[d2])
    m = wait_gauges(d1, lambda m: sum(
        gauge(m, "dovecot_director_ring_connections", direction=x)
        for x in ("left", "right", "in", "out")) == 0, "d1 alone", deadline_secs=30)
    c.start(only=[d2])
    wait_gauges(d1, formed, "ring formed again on d1", deadline_secs=60)
    wait_gauges(d2, formed, "ring formed again on d2", deadline_secs=60)

    # the process title counts ring lines: PINGs arrive every few seconds
    rx = re.compile(r"\[(\d+) users.*, (\d+)\+(\d+) req/s, (\d+)\+(\d+) kB/s\]")

    def ring_lines_counted():
        with open("/proc/%d/cmdline" % d1.director_pid(), "rb") as f:
            m = rx.search(f.read().decode(errors="replace"))
        return m and int(m.group(3)) > 0
    rig.wait_until(ring_lines_counted, 20, "ring lines in d1's process title", interval=0.2)


def test_proctitle_counts_ring_traffic_of_a_handshake(make_cluster):
    """The handshake of a ring with many users moves kilobytes: the title's
    kB/s figures are not 0 then."""
    c = make_cluster(nbackends=1, nusers=10)
    ring = ringrig.Ring(c, ("ours", "ours"), extra_conf="verbose_proctitle = yes\n")
    ring.start()
    d1, d2 = ring.directors
    names = ["pt%d@example.com" % i for i in range(20000)]
    oks, other, _ = ringrig.populate(d1, names, [c.backends[0].ip])
    assert oks == len(names) - sum(other.values())
    rx = re.compile(r"\[(\d+) users.*, (\d+)\+(\d+) req/s, (\d+)\+(\d+) kB/s\]")
    seen = []

    def title(d):
        with open("/proc/%d/cmdline" % d.director_pid(), "rb") as f:
            return f.read().decode(errors="replace")
    # restart d2: d1 sends it every user in the handshake
    c.stop(only=[d2])
    c.start(only=[d2])

    def traffic():
        m = rx.search(title(d1))
        if m:
            seen.append(m.group(0))
            return int(m.group(5)) > 0
        return False
    rig.wait_until(traffic, 30, "ring kB/s sent in d1's title", interval=0.1)
