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


# --- counters: events + the shipped metric {} file + Dovecot's stats process ---

METRICS_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "doc",
                            "example-config", "conf.d", "95-director-metrics.conf")
STATS_PORT = 9102


def stats_conf(ip):
    return """
!include %s
service stats {
  inet_listener http {
    address = %s
    port = %d
  }
}
""" % (os.path.abspath(METRICS_CONF), ip, STATS_PORT)


def stats_scrape(d):
    """{(name, frozenset(labels)): value} of the stats process's /metrics,
    through the OpenMetrics parser."""
    conn = http.client.HTTPConnection(d.ip, STATS_PORT, timeout=5.0)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200
        body = r.read().decode()
    finally:
        conn.close()
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def wait_counters(d, pred, what, deadline_secs=15.0):
    last = [None]

    def check():
        last[0] = stats_scrape(d)
        return pred(last[0])
    try:
        rig.wait_until(check, deadline_secs, what, interval=0.2)
    except TimeoutError:
        raise AssertionError("%s; last scrape: %r" % (
            what, {k: v for k, v in (last[0] or {}).items() if "director" in k[0]}))
    return last[0]


def counter(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0)


@pytest.fixture
def stats_cluster(make_cluster):
    c = make_cluster(nbackends=3, nusers=40)
    d = c.add_director(extra_conf=stats_conf("%s.100" % c.base) +
                       metrics_conf("%s.100" % c.base) + MOVE_METRIC)
    c.start()
    return c, d


MOVE_METRIC = """
metric test_user_moves {
  filter = event=director_user_moved
  group_by = reason host_from host_to
}
"""


def innermost(m, name, nlabels):
    """group_by nests: the samples of the innermost level, {labels: value}."""
    return {dict(k[1]).get("reason", "") + ":" + dict(k[1]).get("host_from", "") + ">" +
            dict(k[1]).get("host_to", ""): v
            for k, v in m.items() if k[0] == name and len(k[1]) == nlabels}


def test_counters_count_lookups_and_every_error(stats_cluster):
    """Logins and userdb lookups are counted by result; a metric on
    category=director counts the director's own error lines (on 2.3 the stats
    process drops unnamed events before looking at metric filters)."""
    c, d = stats_cluster
    for u in c.users[:7]:
        rig.imap_roundtrip(d, u)
    for u in c.users[7:9]:
        rig.lmtp_deliver(d, u)
    m = wait_counters(d, lambda m: counter(m, "dovecot_director_lookups_total",
                                           result="ok") == 9, "9 ok lookups")
    assert counter(m, "dovecot_director_lookups_total", result="timeout") == 0
    by_host = {dict(k[1])["host"]: v for k, v in m.items()
               if k[0] == "dovecot_director_lookups_by_host_total" and "host" in dict(k[1])}
    assert sum(by_host.values()) == 9 and set(by_host) <= {b.ip for b in c.backends}

    errors_before = counter(m, "dovecot_director_errors_total")
    for _ in range(3):
        with rig.admin_socket(d) as s:
            s.send_line("NO-SUCH-COMMAND\tx")
            s.read_until_closed(5)
    d.wait_log(r"director: Error: doveadm sent unknown command", 0)
    wait_counters(d, lambda m: counter(m, "dovecot_director_errors_total") ==
                  errors_before + 3, "3 more director errors counted")


def test_lookup_event_logged_with_log_debug_and_no_metrics(make_cluster):
    """With no metric configured the per-login event is not built at all
    (nothing would count it), but a log_debug filter naming it still gets
    its line: the shortcut looks at every global filter."""
    c = make_cluster(nbackends=2, nusers=4)
    d = c.add_director(extra_conf="log_debug = event=director_lookup_finished\n")
    quiet = c.add_director()
    c.start()
    for u in c.users[:2]:
        b, _ = rig.imap_roundtrip(d, u)
        d.wait_log(r"Lookup finished: result=ok host=%s source=login delay=\d+ ms" %
                   re.escape(b), 0)
        rig.imap_roundtrip(quiet, u)
    assert "Lookup finished" not in quiet.read_log()


def test_counters_follow_a_move_a_kick_and_host_changes(stats_cluster):
    c, d = stats_cluster
    user = c.users[0]
    rig.imap_roundtrip(d, user)
    m0 = stats_scrape(d)
    assert counter(m0, "dovecot_director_user_moves_total") == 0
    assert counter(m0, "dovecot_director_host_changes_total") == 0

    src = rig.current_host(d, user)
    dst = next(b.ip for b in c.backends if b.ip != src)
    rc, out, err = d.doveadm("director", "move", user, dst)
    assert rc == 0, err
    m = wait_counters(d, lambda m: counter(m, "dovecot_director_user_moves_total") == 1 and
                      counter(m, "dovecot_director_user_kicks_total", reason="move") == 1,
                      "one move, one kick of its sessions")
    assert innermost(m, "dovecot_test_user_moves_total", 3) == {"admin:%s>%s" % (src, dst): 1}

    rc, out, err = d.doveadm("director", "kick", user)
    assert rc == 0, err
    wait_counters(d, lambda m: counter(m, "dovecot_director_user_kicks_total",
                                       reason="admin") == 1, "one admin kick")

    b = c.backends[2].ip
    for args in (("update", b, "37"), ("down", b), ("up", b)):
        rc, out, err = d.doveadm("director", *args)
        assert rc == 0, err
    m = wait_counters(d, lambda m: all(
        counter(m, "dovecot_director_host_changes_total", action=a) == 1
        for a in ("update", "down", "up")), "update, down and up counted once each")
    assert counter(m, "dovecot_director_host_changes_total", action="add") == 0
    assert counter(m, "dovecot_director_host_changes_total", action="remove") == 0
    assert counter(m, "dovecot_director_user_moves_total") == 1
    assert counter(m, "dovecot_director_lookups_total", result="ok") == 1


FLUSH_METRIC = """
metric test_host_flushes {
  filter = event=director_host_changed AND action=flush
  group_by = host origin tag vhosts
}
"""


def test_flushes_count_as_host_changes(make_cluster):
    """A flush does not change the host list; the core reports it, and it is
    counted as director_host_changed action=flush with host, origin, tag and
    vhosts, once per flushed host, graceful (doveadm director flush) or
    forced (-F)."""
    c = make_cluster(nbackends=3, nusers=20)
    d = c.add_director(extra_conf=stats_conf("%s.100" % c.base) +
                       metrics_conf("%s.100" % c.base) + FLUSH_METRIC + MOVE_METRIC)
    c.start()
    for u in c.users[:6]:
        rig.imap_roundtrip(d, u)
    # b0: a backend that has users (which one depends on the backends' random
    # addresses), b1: another one
    where = {u: rig.current_host(d, u) for u in c.users[:6]}
    ips = [b.ip for b in c.backends]
    b0 = max(ips, key=lambda ip: sum(1 for h in where.values() if h == ip))
    b1 = next(ip for ip in ips if ip != b0)
    on_b0 = [u for u, h in where.items() if h == b0]
    assert on_b0, where
    m0 = stats_scrape(d)
    assert counter(m0, "dovecot_director_host_changes_total", action="flush") == 0
    # down first, so that a graceful flush has somewhere else to move b0's users
    rc, out, err = d.doveadm("director", "down", b0)
    assert rc == 0, err
    rc, out, err = d.doveadm("director", "flush", b0, timeout=60)
    assert rc == 0, err
    rc, out, err = d.doveadm("director", "flush", "-F", b1)
    assert rc == 0, err
    m = wait_counters(d, lambda m: counter(m, "dovecot_director_host_changes_total",
                                           action="flush") == 2 and
                      counter(m, "dovecot_director_user_moves_total") == len(on_b0),
                      "two flushes and the moves of b0's users counted")
    # group_by nests: keep the innermost level, the one with all four labels
    flushes = {k[1]: v for k, v in m.items()
               if k[0] == "dovecot_test_host_flushes_total" and len(k[1]) == 4}
    assert flushes == {
        frozenset({"host": b0, "origin": "local", "tag": "", "vhosts": "100"}.items()): 1,
        frozenset({"host": b1, "origin": "local", "tag": "", "vhosts": "100"}.items()): 1,
    }
    # the graceful flush moved b0's users away (reason=flush), the forced
    # one only forgot b1's
    moves = innermost(m, "dovecot_test_user_moves_total", 3)
    assert sum(moves.values()) == len(on_b0), moves
    assert all(k.startswith("flush:%s>" % b0) and not k.endswith(">" + b0) for k in moves), moves
    # no other host change came with them
    assert counter(m, "dovecot_director_host_changes_total", action="down") == 1
    for a in ("add", "remove", "update", "up"):
        assert counter(m, "dovecot_director_host_changes_total", action=a) == 0


# The director's own log lines about a ring peer (handshake finished,
# disconnected, ...), apart from the named ring events that also carry `peer`.
PEER_LINES_METRIC = """
metric test_peer_lines {
  filter = category=director AND peer=* AND NOT event=director_ring_*
  group_by = peer
}
"""


@pytest.mark.skipif(os.environ.get("RING_TESTS", "1") == "0", reason="RING_TESTS=0")
def test_counters_follow_a_killed_ring_peer(make_cluster):
    c = make_cluster(nbackends=2, nusers=10)
    ring = ringrig.Ring(c, ("ours", "ours"))
    for d in ring.directors:
        d.extra_conf += stats_conf(d.ip) + metrics_conf(d.ip) + FLUSH_METRIC + PEER_LINES_METRIC
    ring.start()
    d1, d2 = ring.directors
    m0 = stats_scrape(d1)
    gone0 = counter(m0, "dovecot_director_ring_disconnects_total")
    made0 = counter(m0, "dovecot_director_ring_connects_total")
    syncs0 = counter(m0, "dovecot_director_ring_syncs_total")
    # a host change made on d2 reaches d1 through the ring
    b = c.backends[1].ip
    rc, out, err = d2.doveadm("director", "update", b, "12")
    assert rc == 0, err
    m = wait_counters(d1, lambda m: counter(m, "dovecot_director_host_changes_total",
                                            action="update") == 1, "ring update on d1")
    # a forced flush made on d2 reaches d1 as origin=ring
    rc, out, err = d2.doveadm("director", "flush", "-F", b)
    assert rc == 0, err
    m = wait_counters(d1, lambda m: counter(m, "dovecot_test_host_flushes_total", host=b,
                                            origin="ring", tag="", vhosts="12") == 1,
                      "ring flush on d1")
    assert counter(m, "dovecot_director_host_changes_total", action="flush") == 1
    m2 = wait_counters(d2, lambda m: counter(m, "dovecot_test_host_flushes_total", host=b,
                                             origin="local", tag="", vhosts="12") == 1,
                       "local flush on d2")
    old = d2.director_pid()
    os.kill(old, 9)
    ringrig.wait_new_director_pid(d2, old)
    # d1 had two connections to d2 (in and out); both end, and the ring
    # forms again with new ones
    m = wait_counters(d1, lambda m: counter(m, "dovecot_director_ring_disconnects_total")
                      >= gone0 + 2 and
                      counter(m, "dovecot_director_ring_connects_total") >= made0 + 2 and
                      counter(m, "dovecot_director_ring_syncs_total") > syncs0,
                      "d1 counted the lost and the new connections", deadline_secs=60)

    def formed(m):
        return (gauge(m, "dovecot_director_ring_synced") == 1 and
                gauge(m, "dovecot_director_ring_connections", direction="left") == 1 and
                gauge(m, "dovecot_director_ring_connections", direction="right") == 1)
    wait_gauges(d1, formed, "ring formed again on d1", deadline_secs=60)

    def peer_lines(m):
        return sum(v for (name, labels), v in m.items()
                   if name == "dovecot_test_peer_lines_total" and
                   dict(labels).get("peer", "").startswith(d2.ip + ":"))
    # d1's own lines about d2 (its handshakes, the disconnects) carry d2 as `peer`
    wait_counters(d1, lambda m: peer_lines(m) >= 2, "d1's log lines about d2 counted by peer")



def test_digest_checks_counted_in_a_ring_of_ours(make_cluster):
    """Three of ours check their tables against their left's after the ring
    synced, counted by the shipped metric file; with every line delivered they
    match and nothing is repaired."""
    c = make_cluster(nbackends=2, nusers=40)
    ring = ringrig.Ring(c, ("ours", "ours", "ours"))
    for d in ring.directors:
        d.extra_conf += stats_conf(d.ip) + metrics_conf(d.ip)
    ring.start()
    d0 = ring.directors[0]
    oks, other, _ = ringrig.populate(d0, ["dig%d" % i for i in range(500)],
                                     [b.ip for b in c.backends], deadline_secs=60)
    assert not other, other
    ring.wait_converged(deadline_secs=30)
    name = "dovecot_director_ring_digest_checks_total"
    before = [counter(stats_scrape(d), name, result="match") for d in ring.directors]
    # a host change syncs the ring again, and a check follows
    rc, out, err = d0.doveadm("director", "update", c.backends[0].ip, "50")
    assert rc == 0, err
    for d, n in zip(ring.directors, before):
        m = wait_counters(d, lambda m: counter(m, name, result="match") > n,
                          "a matching digest check on " + d.name, deadline_secs=30)
        others = {dict(labels).get("result"): v for (n, labels), v in m.items()
                  if n == name and dict(labels).get("result") != "match"}
        assert not {k: v for k, v in others.items() if v and k != "in_flight"}, others
    ring.wait_converged(deadline_secs=30)


RING_FIELDS_METRICS = """
metric test_ring_connected {
  filter = event=director_ring_connected
  group_by = direction users_sent users_received
}
metric test_ring_connected_out_users {
  filter = event=director_ring_connected AND direction=out AND users_sent=%(n)d AND users_received=0 AND handshake_usecs>0 AND handshake_usecs<30000000
}
metric test_ring_connected_in_users {
  filter = event=director_ring_connected AND direction=in AND users_received=%(n)d AND users_sent=0 AND handshake_usecs>0 AND handshake_usecs<30000000
}
metric test_ring_disconnected {
  filter = event=director_ring_disconnected
  group_by = direction users_sent users_received
}
metric test_ring_disconnected_handshaked {
  filter = event=director_ring_disconnected AND handshake_usecs>0 AND handshake_usecs<30000000 AND users_sent=0 AND users_received=0
}
"""


@pytest.mark.skipif(os.environ.get("RING_TESTS", "1") == "0", reason="RING_TESTS=0")
def test_ring_events_carry_handshake_time_and_users(make_cluster):
    """director_ring_connected is sent when a connection's handshake
    finished, with handshake_usecs and the users it sent and received;
    director_ring_disconnected carries the same figures. d1 knows 7 users
    when d2 restarts without its state: d1's new connection to d2 sends
    exactly those 7, and d2's connection from d1 receives them."""
    n = 7
    c = make_cluster(nbackends=2, nusers=10)
    ring = ringrig.Ring(c, ("ours", "ours"))
    for d in ring.directors:
        d.extra_conf += stats_conf(d.ip) + RING_FIELDS_METRICS % {"n": n}
    ring.start()
    d1, d2 = ring.directors
    for u in c.users[:n]:
        rig.imap_roundtrip(d1, u)
    m0 = stats_scrape(d1)
    assert counter(m0, "dovecot_test_ring_connected_count") >= 2
    # the ring formed while both were empty: nothing carried users yet
    assert counter(m0, "dovecot_test_ring_connected_out_users_total") == 0
    out0 = counter(m0, "dovecot_test_ring_connected_count")
    gone0 = counter(m0, "dovecot_test_ring_disconnected_handshaked_total")
    # d2 restarts without its state file, so that it joins with a full
    # handshake (with it, a delta join sends only the buckets that differ)
    c.stop(only=[d2])
    state = os.path.join(d2.dir, "state", "director", "director.state")
    assert os.path.exists(state)
    os.unlink(state)
    c.start(only=[d2])
    ring.wait_formed()
    # d1 lost its two handshaked connections to the old d2 (no users went
    # over them: the users came later, as single USER updates) ...
    m = wait_counters(d1, lambda m: counter(
        m, "dovecot_test_ring_disconnected_handshaked_total") == gone0 + 2 and counter(
        m, "dovecot_test_ring_connected_out_users_total") == 1 and counter(
        m, "dovecot_test_ring_connected_count") >= out0 + 2,
        "d1: 2 handshaked connections gone, the new one to d2 sent %d users" % n,
        deadline_secs=60)
    # ... and its new outgoing connection is the only one that sent users
    sent = {k: v for k, v in m.items() if k[0] == "dovecot_test_ring_connected_total" and
            len(k[1]) == 3 and dict(k[1])["users_sent"] != "0"}
    assert sent == {("dovecot_test_ring_connected_total", frozenset(
        {"direction": "out", "users_sent": str(n), "users_received": "0"}.items())): 1}, sent
    # the restarted d2 (fresh stats) received them on its incoming one
    m2 = wait_counters(d2, lambda m: counter(
        m, "dovecot_test_ring_connected_in_users_total") == 1,
        "d2 received %d users from d1" % n, deadline_secs=30)
    got = {k: v for k, v in m2.items() if k[0] == "dovecot_test_ring_connected_total" and
           len(k[1]) == 3 and dict(k[1])["direction"] == "in"}
    assert got == {("dovecot_test_ring_connected_total", frozenset(
        {"direction": "in", "users_sent": "0", "users_received": str(n)}.items())): 1}, got


def test_health_gauges_and_counters_follow_a_stopped_backend(make_cluster):
    """With health checks on: the stateset, check result and down-by-health
    gauges of a stopped backend, and the health counters in stats."""
    import test_health as th
    if os.path.realpath(rig.director_bin()) == os.path.realpath(rig.STOCK_DIRECTOR):
        pytest.skip("health checks are a feature of our director, not of stock")
    src = os.environ.get("HEALTH_SETTINGS_MODULE") or th.built_file(
        "adapter", th.MODULE_NAME, th.SETTINGS_DIR)
    with th.installed(src, th.SETTINGS_DIR, th.MODULE_NAME):
        c = make_cluster(nbackends=3, nusers=10)
        ip = "%s.100" % c.base
        probe = c.users[-1]
        d = c.add_director(extra_conf=th.health_conf(c, probe, "", max_down="1") +
                           stats_conf(ip) + metrics_conf(ip))
        c.start()
        m = wait_gauges(d, lambda m: gauge(m, "dovecot_director_health_decider") == 1 and
                        all(gauge(m, "dovecot_director_host_health_check_ok", host=b.ip,
                                  tag="") == 1 for b in c.backends),
                        "every backend checked ok")
        for b in c.backends:
            assert gauge(m, "dovecot_director_host_health", host=b.ip, tag="",
                         dovecot_director_host_health="up") == 1
        victim = c.backends[1]
        c.stop(only=[victim])
        m = wait_gauges(d, lambda m: gauge(m, "dovecot_director_host_down_by_health",
                                           host=victim.ip, tag="") == 1,
                        "stopped backend taken down by health", deadline_secs=th.VERDICT_DEADLINE_SECS)
        assert gauge(m, "dovecot_director_host_health", host=victim.ip, tag="",
                     dovecot_director_host_health="down") == 1
        assert gauge(m, "dovecot_director_host_health_check_ok", host=victim.ip, tag="") == 0
        assert gauge(m, "dovecot_director_host_up", host=victim.ip, tag="") == 0
        for b in c.backends:
            if b is not victim:
                assert gauge(m, "dovecot_director_host_up", host=b.ip, tag="") == 1
        wait_counters(d, lambda m: counter(m, "dovecot_director_health_actions_total",
                                           action="down") == 1 and
                      counter(m, "dovecot_director_host_changes_total", action="down") == 1,
                      "one health down action and one host change")
