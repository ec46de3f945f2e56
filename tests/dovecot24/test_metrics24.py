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
        gauges_port=GAUGES_PORT).replace("{", "{{").replace("}", "}}")
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
