# Observability under Dovecot 2.4.1 (run inside the trixie chroot by
# tests/dovecot24/run.sh, after "make install"): the director-metrics gauges
# listener and the counters of doc/example-config-2.4's metric file in 2.4's
# stats process, after logins, a move, a kick, host changes and errors. Uses
# the smoke test's instances (test_smoke24.py); its own 127.24.N block and
# directories.
import http.client
import os
import shutil
import socket
import time

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import test_smoke24 as smoke

HERE = os.path.dirname(os.path.abspath(__file__))
METRICS_CONF = os.path.join(HERE, "..", "..", "doc", "example-config-2.4", "conf.d",
                            "95-director-metrics.conf")
GAUGES_PORT = 9101
STATS_PORT = 9102

EXTRA = """
!include {conf}
service stats {{
  inet_listener http {{
    port = {stats_port}
  }}
}}
service director {{
  inet_listener director-metrics {{
    port = {gauges_port}
  }}
}}
"""

# Metrics of the tests (2.4 syntax, one group_by each): the fields of the
# events beyond what the shipped file groups by.
TEST_METRICS = """
metric test_moves_from {
  filter = event=director_user_moved AND reason=admin
  group_by host_from {
    method discrete {
    }
  }
}
metric test_moves_to {
  filter = event=director_user_moved AND reason=admin
  group_by host_to {
    method discrete {
    }
  }
}
metric test_local_flushes {
  filter = event=director_host_changed AND action=flush AND origin=local
  group_by host {
    method discrete {
    }
  }
}
metric test_ring_out {
  filter = event=director_ring_connected AND direction=out AND users_received=0 AND handshake_usecs>0 AND handshake_usecs<30000000
  group_by users_sent {
    method discrete {
    }
  }
}
metric test_ring_in {
  filter = event=director_ring_connected AND direction=in AND users_sent=0 AND handshake_usecs>0 AND handshake_usecs<30000000
  group_by users_received {
    method discrete {
    }
  }
}
metric test_ring_gone_handshaked {
  filter = event=director_ring_disconnected AND handshake_usecs>0 AND handshake_usecs<30000000 AND users_sent=0 AND users_received=0
}
"""


def scrape(ip, port):
    conn = http.client.HTTPConnection(ip, port, timeout=5.0)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200
        ctype = r.getheader("Content-Type")
        body = r.read().decode()
    finally:
        conn.close()
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return ctype, out


def value(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0)


def wait_metrics(ip, port, pred, what, secs=15):
    last = [None]

    def check():
        last[0] = scrape(ip, port)[1]
        return pred(last[0])
    try:
        return smoke.wait_until(check, secs, what)
    except AssertionError:
        raise AssertionError("%s; last: %r" % (what, {k: v for k, v in (last[0] or {}).items()
                                                      if "director" in k[0]}))


@pytest.fixture(scope="module")
def cluster():
    root = smoke.ROOT
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    block = smoke.pick_block()
    backends = []
    for i, host in enumerate((10, 11)):
        b = smoke.Instance("mb%d" % i, "%s.%d" % (block, host), smoke.BACKEND)
        with open(os.path.join(b.dir, "users"), "w") as f:
            for u in ("alice", "bob", "carol"):
                f.write("%s:{PLAIN}%s::::%s/home/%s::\n" % (u, smoke.PASSWORD, b.dir, u))
        shutil.chown(os.path.join(b.dir, "home"), "vmail", "vmail")
        backends.append(b)
    mail_servers = " ".join(b.ip for b in backends)
    body = smoke.DIRECTOR.replace("{mail_servers}", mail_servers) + EXTRA.format(
        conf=os.path.abspath(METRICS_CONF), stats_port=STATS_PORT,
        gauges_port=GAUGES_PORT).replace("{", "{{").replace("}", "}}") + \
        TEST_METRICS.replace("{", "{{").replace("}", "}}")
    d = smoke.Instance("md0", block + ".100", body)
    with open(os.path.join(d.dir, "users"), "w") as f:
        for u in ("alice", "bob", "carol"):
            f.write("%s:{PLAIN}%s::::::proxy=y pass=%s\n" % (u, smoke.PASSWORD, smoke.PASSWORD))
    try:
        for b in backends:
            b.start()
        d.start()
        smoke.wait_until(lambda: smoke.port_open(d.ip, GAUGES_PORT), 10, "metrics listener")
        yield {"director": d, "backends": backends}
    finally:
        for inst in backends + [d]:
            inst.stop()
        for inst in backends + [d]:
            print("==== %s log\n%s" % (inst.name, inst.log()[-4000:]))


def login(d, user):
    s = smoke.Imap(d.ip)
    assert s.cmd("LOGIN %s %s" % (user, smoke.PASSWORD))[-1].split()[1] == "OK"
    s.cmd("LOGOUT")
    s.close()


def test_gauges_on_24(cluster):
    d = cluster["director"]
    ctype, m = scrape(d.ip, GAUGES_PORT)
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    for u in ("alice", "bob", "carol"):
        login(d, u)
    ctype, m = scrape(d.ip, GAUGES_PORT)
    users = {dict(k[1])["host"]: v for k, v in m.items() if k[0] == "dovecot_director_users"}
    assert set(users) == {b.ip for b in cluster["backends"]}
    assert sum(users.values()) == 3
    assert value(m, "dovecot_director_ring_synced") == 1
    # a stuck client on the listener does not hold up logins
    stuck = socket.create_connection((d.ip, GAUGES_PORT), timeout=5)
    stuck.send(b"GET /metr")
    try:
        t0 = time.monotonic()
        login(d, "alice")
        assert time.monotonic() - t0 < 5
        assert scrape(d.ip, GAUGES_PORT)[1]
    finally:
        stuck.close()


def test_counters_on_24(cluster):
    d = cluster["director"]
    _, m0 = scrape(d.ip, STATS_PORT)
    ok0 = value(m0, "dovecot_director_lookups_total", result="ok")
    for u in ("alice", "bob"):
        login(d, u)
    wait_metrics(d.ip, STATS_PORT, lambda m: value(m, "dovecot_director_lookups_total",
                                                   result="ok") == ok0 + 2, "2 more lookups")
    a = smoke.Admin(os.path.join(d.dir, "run", "director-admin"))
    b = cluster["backends"][1].ip
    assert a.cmd("HOST-SET\t%s\t37" % b) == "OK"
    assert a.cmd("HOST-DOWN\t" + b) == "OK"
    assert a.cmd("HOST-UP\t" + b) == "OK"
    wait_metrics(d.ip, STATS_PORT, lambda m: all(
        value(m, "dovecot_director_host_changes_total", action=x) == 1
        for x in ("update", "down", "up")), "host changes")
    other = cluster["backends"][0].ip
    assert a.cmd("USER-MOVE\tcarol\t" + other) in ("OK", "NOTFOUND")
    assert a.cmd("USER-KICK\tbob") == "OK"
    wait_metrics(d.ip, STATS_PORT, lambda m: value(m, "dovecot_director_user_kicks_total",
                                                   reason="admin") == 1, "admin kick")
    errors0 = value(scrape(d.ip, STATS_PORT)[1], "dovecot_director_errors_total")
    for _ in range(3):
        bad = smoke.Admin(os.path.join(d.dir, "run", "director-admin"))
        bad.sock.sendall(b"NO-SUCH-COMMAND\tx\n")
        with pytest.raises((EOFError, OSError)):
            bad.read_line()
    wait_metrics(d.ip, STATS_PORT, lambda m: value(m, "dovecot_director_errors_total") ==
                 errors0 + 3, "3 director errors")


def test_move_kick_and_flush_fields_on_24(cluster):
    """director_user_moved with reason, host_from and host_to; the kick of
    the moved user's sessions (reason=move); a forced flush counted as
    director_host_changed action=flush, origin=local, with its host."""
    d = cluster["director"]
    a = smoke.Admin(os.path.join(d.dir, "run", "director-admin"))
    login(d, "alice")
    src = a.cmd("USER-LOOKUP\talice").split("\t")[0]
    ips = [b.ip for b in cluster["backends"]]
    assert src in ips
    dst = next(ip for ip in ips if ip != src)
    _, m0 = scrape(d.ip, STATS_PORT)
    moves0 = value(m0, "dovecot_director_user_moves_total")
    from0 = value(m0, "dovecot_test_moves_from_total", host_from=src)
    to0 = value(m0, "dovecot_test_moves_to_total", host_to=dst)
    kicks0 = value(m0, "dovecot_director_user_kicks_total", reason="move")
    assert a.cmd("USER-MOVE\talice\t" + dst) == "OK"
    wait_metrics(d.ip, STATS_PORT, lambda m: value(
        m, "dovecot_director_user_moves_total") == moves0 + 1 and value(
        m, "dovecot_director_user_kicks_total", reason="move") == kicks0 + 1,
        "one move and the kick of its sessions")
    _, m = scrape(d.ip, STATS_PORT)
    assert value(m, "dovecot_test_moves_from_total", host_from=src) == from0 + 1
    assert value(m, "dovecot_test_moves_to_total", host_to=dst) == to0 + 1

    flush0 = value(m, "dovecot_director_host_changes_total", action="flush")
    local0 = value(m, "dovecot_test_local_flushes_total", host=src)
    assert a.cmd("HOST-FLUSH\t" + src) == "OK"
    wait_metrics(d.ip, STATS_PORT, lambda m: value(
        m, "dovecot_director_host_changes_total", action="flush") == flush0 + 1,
        "one flush")
    _, m = scrape(d.ip, STATS_PORT)
    assert value(m, "dovecot_test_local_flushes_total", host=src) == local0 + 1
    assert value(m, "dovecot_test_local_flushes_total", host=dst) == 0


def gauges_formed(m):
    return (value(m, "dovecot_director_ring_synced") == 1 and
            value(m, "dovecot_director_ring_connections", direction="left") == 1 and
            value(m, "dovecot_director_ring_connections", direction="right") == 1)


@pytest.fixture
def ring():
    """Two of our directors on 2.4 in one ring, with two backends."""
    block = smoke.pick_block()
    backends = []
    for i, host in enumerate((10, 11)):
        b = smoke.Instance("rb%d" % i, "%s.%d" % (block, host), smoke.BACKEND)
        with open(os.path.join(b.dir, "users"), "w") as f:
            for u in ("alice", "bob", "carol"):
                f.write("%s:{PLAIN}%s::::%s/home/%s::\n" % (u, smoke.PASSWORD, b.dir, u))
        shutil.chown(os.path.join(b.dir, "home"), "vmail", "vmail")
        backends.append(b)
    ips = [block + ".100", block + ".101"]
    directors = []
    for i, ip in enumerate(ips):
        body = smoke.DIRECTOR.replace("{mail_servers}", " ".join(b.ip for b in backends))
        body = body.replace("director_servers = {ip}:9090",
                            "director_servers = " + " ".join(x + ":9090" for x in ips))
        body += EXTRA.format(conf=os.path.abspath(METRICS_CONF), stats_port=STATS_PORT,
                             gauges_port=GAUGES_PORT).replace("{", "{{").replace(
                                 "}", "}}") + TEST_METRICS.replace("{", "{{").replace("}", "}}")
        d = smoke.Instance("rd%d" % i, ip, body)
        with open(os.path.join(d.dir, "users"), "w") as f:
            for u in ("alice", "bob", "carol"):
                f.write("%s:{PLAIN}%s::::::proxy=y pass=%s\n" % (u, smoke.PASSWORD,
                                                                 smoke.PASSWORD))
        directors.append(d)
    try:
        for inst in backends + directors:
            inst.start()
        for d in directors:
            smoke.wait_until(lambda: smoke.port_open(d.ip, GAUGES_PORT), 10, "metrics listener")
        for d in directors:
            wait_metrics(d.ip, GAUGES_PORT, gauges_formed, "ring formed on " + d.name, secs=60)
        yield {"directors": directors, "backends": backends}
    finally:
        for inst in backends + directors:
            inst.stop()
        for inst in backends + directors:
            print("==== %s log\n%s" % (inst.name, inst.log()[-4000:]))


def test_ring_event_fields_on_24(ring):
    """director_ring_connected carries handshake_usecs, users_sent and
    users_received, director_ring_disconnected too: d1 knows 3 users when d2
    restarts without its state, so d1's new connection to d2 sends exactly
    3 and d2's connection from d1 receives 3."""
    d1, d2 = ring["directors"]
    for u in ("alice", "bob", "carol"):
        login(d1, u)
    _, m0 = scrape(d1.ip, STATS_PORT)
    assert value(m0, "dovecot_test_ring_out_total", users_sent="3") == 0
    gone0 = value(m0, "dovecot_test_ring_gone_handshaked_total")
    d2.stop()
    states = [os.path.join(top, f) for top, _, files in os.walk(os.path.join(d2.dir, "state"))
              for f in files if f == "director.state"]
    assert len(states) <= 1, states
    for path in states:     # director_state_file: its restored users would make a delta join
        os.unlink(path)
    d2.start()
    for d in (d1, d2):
        wait_metrics(d.ip, GAUGES_PORT, gauges_formed, "ring formed again on " + d.name,
                     secs=90)
    # d1: both handshaked connections to the old d2 ended (no user went over
    # them: the ring formed empty, and logins travel as single updates), and
    # the new outgoing one sent the 3 users
    wait_metrics(d1.ip, STATS_PORT, lambda m: value(
        m, "dovecot_test_ring_gone_handshaked_total") == gone0 + 2 and value(
        m, "dovecot_test_ring_out_total", users_sent="3") == 1,
        "d1: 2 handshaked connections gone, 3 users sent", secs=30)
    # d2 (a new stats process) received them on its incoming connection
    wait_metrics(d2.ip, STATS_PORT, lambda m: value(
        m, "dovecot_test_ring_in_total", users_received="3") == 1,
        "d2: 3 users received", secs=30)
