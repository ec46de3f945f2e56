"""Built-in backend health checks (issue #7) on loopback rings with real backends.

A ring of three of our directors (all listed in director_health_deciders) and
three backends, with test-tuned timings: a round every 500 ms, 3 failed rounds,
then 7 of 10 rapid polls 100 ms apart.  The probes log in over IMAP and POP3
with a test account and check LMTP up to RCPT TO.  Backends fail by having
their master killed (by recorded pid) or by refusing the test account's login
(its password changed in that backend's passwd-file).  A second ring mixes in
a stock director, which must simply follow the verdicts.

The director_health_* keys need the settings module in Dovecot's module dir
(settings/); the module fixture installs the built one for the run and removes
it again if it was not there before.
"""

import contextlib
import filecmp
import os
import re
import shutil
import subprocess
import time

import pytest

import rig
import ringrig

HEALTH_INTERVAL_MSECS = 500
DECIDER_TIMEOUT_SECS = 3
# Stop/refuse -> down everywhere: 3 rounds (1.5 s) + 7 rapid polls (~1 s) +
# ring propagation; generous for a loaded 2-core box.
VERDICT_DEADLINE_SECS = 25
# A refused login is answered late (auth failure delay and penalty, even with
# auth_failure_delay = 0): measured ~16 s to a verdict on an idle box.
REFUSED_DEADLINE_SECS = 60
SETTINGS_DIR = "/usr/lib/dovecot/modules/settings"
MODULE_NAME = "libdirector_health_settings.so"
DOVEADM_DIR = "/usr/lib/dovecot/modules/doveadm"
DOVEADM_PLUGIN = "lib10_doveadm_director_plugin.so"

ACTION_DOWN_RE = r"health: host %s is failing .*: setting it down and flushing"
ACTION_UP_RE = r"health: host %s is healthy again: setting it up"


def built_file(subdir, name, installed_dir):
    """A module built next to the director under test (make check), else the
    installed one."""
    d = os.path.dirname(os.path.abspath(rig.director_bin()))
    built = os.path.join(os.path.dirname(d), subdir, ".libs", name)
    if os.path.exists(built):
        return built
    return os.path.join(installed_dir, name)   # an installed director


@contextlib.contextmanager
def installed(src, dst_dir, name):
    """src installed as dst_dir/name while the block runs (left alone if an
    identical file is there; removed afterwards only if it was absent)."""
    dst = os.path.join(dst_dir, name)
    if not os.path.exists(src):
        pytest.fail("%s is missing (build the project)" % src)
    made_dir = not os.path.isdir(dst_dir)   # settings/ comes with pigeonhole only
    os.makedirs(dst_dir, exist_ok=True)
    added = False
    if not (os.path.exists(dst) and filecmp.cmp(src, dst, shallow=False)):
        added = not os.path.exists(dst)
        tmp = dst + ".tmp.%d" % os.getpid()
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.rename(tmp, dst)
    try:
        yield dst
    finally:
        if added:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dst)
        if made_dir:
            with contextlib.suppress(OSError):
                os.rmdir(dst_dir)


@pytest.fixture(scope="module", autouse=True)
def settings_module():
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    if os.path.realpath(rig.director_bin()) == os.path.realpath(rig.STOCK_DIRECTOR):
        pytest.skip("health checks are a feature of our director, not of stock")
    src = os.environ.get("HEALTH_SETTINGS_MODULE") or built_file("adapter", MODULE_NAME,
                                                                 SETTINGS_DIR)
    with installed(src, SETTINGS_DIR, MODULE_NAME) as dst:
        yield dst


def health_conf(cluster, probe_user, deciders, max_down="1"):
    login = os.path.join(cluster.dir, "health-login")
    with open(login, "w") as f:
        f.write("# probe account\nuser=%s\npassword=%s\n" % (probe_user, rig.PASSWORD))
    os.chmod(login, 0o600)
    return """director_health_checks = imap:143,pop3:110,lmtp:24
director_health_interval = %(interval)d ms
director_health_timeout = 2 s
director_health_fail_rounds = 3
director_health_rapid_interval = 100 ms
director_health_rapid_polls = 10
director_health_rapid_threshold = 7
director_health_max_down = %(max_down)s
director_health_deciders = %(deciders)s
director_health_decider_timeout = %(dt)d s
director_health_login_file = %(login)s
director_health_lmtp_rcpt = %(user)s
metric health_transitions {
  filter = event=director_health_transition
}
metric health_actions {
  filter = event=director_health_action AND action=down
}
""" % dict(interval=HEALTH_INTERVAL_MSECS, max_down=max_down, deciders=deciders,
           dt=DECIDER_TIMEOUT_SECS, login=login, user=probe_user)


def health_list(d):
    """HEALTH-LIST -> (decider name, this one decides, {ip: row dict})."""
    lines = ringrig.admin_lines(d, "HEALTH-LIST", timeout=10)
    head = lines[0].split("\t")
    assert head[0] == "decider", lines
    rows = {}
    for line in lines[1:]:
        f = line.split("\t")
        rows[f[0]] = dict(state=f[1], ring=f[2], by=f[3], guard=f[4], last_check=int(f[5]),
                          result=f[6])
    return head[1], head[2] == "1", rows


def ring_state(d, ip):
    """'up' or 'down' for host ip in `doveadm director status`."""
    return ringrig.host_rows(d)[ip][2]


def wait_state_everywhere(ring, ip, state, deadline_secs=VERDICT_DEADLINE_SECS):
    t0 = time.monotonic()
    rig.wait_until(lambda: all(ring_state(d, ip) == state for d in ring.directors),
                   deadline_secs, "host %s %s on every director" % (ip, state), interval=0.1)
    return time.monotonic() - t0


def action_count(ring, regex):
    rx = re.compile(regex)
    return {d.name: len(rx.findall(d.read_log())) for d in ring.directors}


def set_probe_password(backend, user, password):
    """Rewrite the backend's passwd-file entry of `user` (passwd-file rereads
    a changed file on the next lookup)."""
    path = os.path.join(backend.dir, "passwd")
    with open(path) as f:
        lines = f.readlines()
    out = []
    for line in lines:
        if line.startswith(user + ":"):
            parts = line.split(":")
            parts[1] = "{PLAIN}" + password
            line = ":".join(parts)
        out.append(line)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(out)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


def wait_decider(ring, d, deadline_secs=30):
    rig.wait_until(lambda: health_list(d)[1], deadline_secs, "%s to be the decider" % d.name,
                   interval=0.2)


def append_backend_conf(cluster, text):
    """Extra lines for every backend's dovecot.conf (rig.py has no hook)."""
    for b in cluster.backends:
        orig = b.write_config

        def write(orig=orig, b=b):
            orig()
            with open(b.conf, "a") as f:
                f.write(text)
        b.write_config = write


def start_ring(make_cluster, mix, max_down="1"):
    c = make_cluster(nbackends=3, nusers=40)
    # A refused login is answered after auth_failure_delay (2 s by default):
    # without it a refusing backend is judged as fast as a dead one.
    append_backend_conf(c, "auth_failure_delay = 0\n")
    probe_user = c.users[-1]
    n = len(mix)
    ips = ["%s.%d" % (c.base, 100 + j) for j in range(n)]
    deciders = " ".join("%s:%d" % (ip, rig.RING_PORT) for ip, k in zip(ips, mix)
                        if k == "ours")
    ring = ringrig.Ring(c, mix, extra_conf=health_conf(c, probe_user, deciders, max_down))
    ring.start()
    ring.probe_user = probe_user
    ours = [d for d in ring.directors if d.kind == "ours"]
    ring.decider = ring.sorted_directors(ours)[0]
    wait_decider(ring, ring.decider)
    # every director of ours has finished a round of every backend
    rig.wait_until(lambda: all(r["last_check"] > 0 and r["state"] == "up"
                               for d in ours for r in health_list(d)[2].values()),
                   20, "first health rounds", interval=0.2)
    return ring


def stats_counts(d):
    """`doveadm stats dump` -> {metric name: count}."""
    rc, out, err = d.doveadm("-f", "tab", "stats", "dump")
    assert rc == 0, err
    counts = {}
    for line in out.splitlines()[1:]:
        f = line.split("\t")
        if len(f) >= 3 and f[1] == "duration":
            counts[f[0]] = int(f[2])
    return counts


def users_on(ring, d, ip):
    return sum(1 for h, (host, _) in ringrig.user_list(d).items() if host == ip)


@pytest.fixture(scope="module")
def ring3(request, settings_module):
    """Three of our directors, three backends (module scope: tests restore
    every backend to up)."""
    made = []

    def factory(**kw):
        c = rig.Cluster(**kw)
        made.append(c)
        return c
    ring = start_ring(factory, ("ours", "ours", "ours"))
    yield ring
    for c in made:
        c.failed = c.failed or rig.ANY_TEST_FAILED
        c.cleanup()


def test_stopped_backend_is_downed_and_flushed_everywhere_then_up(ring3):
    ring = ring3
    b = ring.c.backends[1]
    d0 = ring.directors[0]
    # users on every backend, known to every director
    ok, other, _ = ringrig.populate(d0, ring.c.users[:30], [x.ip for x in ring.c.backends])
    assert ok == 30, other
    rig.wait_until(lambda: all(users_on(ring, d, b.ip) == 10 for d in ring.directors), 15,
                   "10 users on %s everywhere" % b.ip)
    downs0 = action_count(ring, ACTION_DOWN_RE % re.escape(b.ip))
    ups0 = action_count(ring, ACTION_UP_RE % re.escape(b.ip))

    t0 = time.monotonic()
    ring.c.stop(only=[b])
    took = wait_state_everywhere(ring, b.ip, "down")
    rig.wait_until(lambda: all(users_on(ring, d, b.ip) == 0 for d in ring.directors), 10,
                   "users of %s flushed everywhere" % b.ip)
    down_secs = time.monotonic() - t0
    print("backend stop -> down+flushed on 3 directors: %.2fs (status: %.2fs)"
          % (down_secs, took))
    _, _, rows = health_list(ring.decider)
    assert rows[b.ip]["by"] == "health" and rows[b.ip]["state"] == "down", rows
    assert "connect() failed" in rows[b.ip]["result"], rows
    # other users stay where they were
    assert all(users_on(ring, d, ring.c.backends[0].ip) == 10 for d in ring.directors)

    t1 = time.monotonic()
    ring.c.start(only=[b])
    wait_state_everywhere(ring, b.ip, "up")
    print("backend restart -> up on 3 directors: %.2fs" % (time.monotonic() - t1))
    downs = action_count(ring, ACTION_DOWN_RE % re.escape(b.ip))
    ups = action_count(ring, ACTION_UP_RE % re.escape(b.ip))
    # exactly one director (the decider) acted, once each way
    assert {k: downs[k] - downs0[k] for k in downs} == \
        {d.name: int(d is ring.decider) for d in ring.directors}, downs
    assert {k: ups[k] - ups0[k] for k in ups} == \
        {d.name: int(d is ring.decider) for d in ring.directors}, ups
    # every director logged its own verdict as a named event's message ...
    for d in ring.directors:
        assert re.search(r"health: host %s checking-down -> down" % re.escape(b.ip),
                         d.read_log()), d.name
    # ... which metric { } counts: transitions everywhere, the down action
    # on the decider only
    for d in ring.directors:
        counts = stats_counts(d)
        assert counts.get("health_transitions", 0) >= 4, (d.name, counts)
        assert counts.get("health_actions", 0) == int(d is ring.decider), (d.name, counts)


def test_doveadm_director_health_shows_each_backend(ring3):
    ring = ring3
    d = ring.directors[1]
    # this director's own rounds may still be catching up with the last test
    rig.wait_until(lambda: all(r["state"] == "up" and r["result"] == "ok"
                               for r in health_list(d)[2].values()), 20, "all up on d1")
    src = built_file("doveadm-director", DOVEADM_PLUGIN, DOVEADM_DIR)
    # doveadm loads every plugin of its module dir: installed only for
    # these two commands
    with installed(src, DOVEADM_DIR, DOVEADM_PLUGIN):
        rc, table, err = d.doveadm("director", "health")
        rc2, tab, err2 = d.doveadm("-f", "tab", "director", "health")
    assert rc == 0 and rc2 == 0, (err, err2)
    lines = tab.splitlines()
    assert lines[0].split("\t") == ["mail server ip", "health", "state", "down by", "guard",
                                    "last check", "last result", "decider"], lines
    rows = {f[0]: f for f in (line.split("\t") for line in lines[1:])}
    assert sorted(rows) == sorted(b.ip for b in ring.c.backends), rows
    for f in rows.values():
        assert f[1:5] == ["up", "up", "-", "-"] and f[6] == "ok", f
        assert f[7] == "%s:%d" % (ring.decider.ip, rig.RING_PORT), f
    assert "mail server ip" in table and ring.c.backends[0].ip in table
    print(table)


def test_refused_login_downs_backend(ring3):
    ring = ring3
    b = ring.c.backends[2]
    set_probe_password(b, ring.probe_user, "wrong")
    try:
        took = wait_state_everywhere(ring, b.ip, "down", REFUSED_DEADLINE_SECS)
        print("login refused -> down on 3 directors: %.2fs" % took)
        _, _, rows = health_list(ring.decider)
        assert "login failed" in rows[b.ip]["result"], rows
    finally:
        set_probe_password(b, ring.probe_user, rig.PASSWORD)
    wait_state_everywhere(ring, b.ip, "up")


def test_flapping_backend_does_not_flap_the_ring(ring3):
    ring = ring3
    b = ring.c.backends[0]
    offsets = {d.name: d.log_size() for d in ring.directors}
    # refuse 0.6 s, accept 0.6 s: at most two rounds in a row fail
    end = time.monotonic() + 9
    seen_down = []
    try:
        while time.monotonic() < end:
            set_probe_password(b, ring.probe_user, "wrong")
            time.sleep(0.6)
            set_probe_password(b, ring.probe_user, rig.PASSWORD)
            time.sleep(0.3)
            seen_down += [d.name for d in ring.directors if ring_state(d, b.ip) != "up"]
            time.sleep(0.3)
    finally:
        set_probe_password(b, ring.probe_user, rig.PASSWORD)
    assert not seen_down, "host went down during flapping on %s" % seen_down
    logs = {d.name: d.log_since(offsets[d.name]) for d in ring.directors}
    # the failures were seen (else this test proves nothing) ...
    assert any(re.search(r"health: host %s up -> suspect" % re.escape(b.ip), t)
               for t in logs.values()), logs
    # ... and never became a verdict or a ring change
    for name, text in logs.items():
        assert not re.search(r"host %s \S+ -> down|setting it down" % re.escape(b.ip), text), name


def test_guard_holds_when_most_backends_fail(ring3):
    ring = ring3
    b0, b1, b2 = ring.c.backends
    off = ring.decider.log_size()
    ring.c.stop(only=[b0, b2])
    try:
        rig.wait_until(lambda: sum(ring_state(ring.decider, b.ip) == "down"
                                   for b in (b0, b2)) == 1,
                       VERDICT_DEADLINE_SECS, "one of two failed backends down")
        ring.decider.wait_log(r"is left up: 1 hosts are already down and "
                              r"director_health_max_down=1 allows 1", off, 15)
        # and it stays that way: the guard holds
        time.sleep(3)
        for d in ring.directors:
            states = [ring_state(d, b.ip) for b in (b0, b1, b2)]
            assert states.count("down") == 1 and states[1] == "up", (d.name, states)
        _, _, rows = health_list(ring.decider)
        blocked = [ip for ip, r in rows.items() if r["guard"] == "blocked"]
        assert len(blocked) == 1 and rows[blocked[0]]["ring"] == "up", rows
    finally:
        ring.c.start(only=[b0, b2])
    for b in (b0, b2):
        wait_state_everywhere(ring, b.ip, "up")


def test_operator_down_is_not_undone(ring3):
    ring = ring3
    b = ring.c.backends[1]
    d1 = ring.directors[1]
    rc, out, err = d1.doveadm("director", "down", b.ip)
    assert rc == 0, err
    wait_state_everywhere(ring, b.ip, "down", 10)
    try:
        ring.c.stop(only=[b])
        rig.wait_until(lambda: health_list(ring.decider)[2][b.ip]["state"] == "down",
                       VERDICT_DEADLINE_SECS, "verdict down")
        ring.c.start(only=[b])
        rig.wait_until(lambda: health_list(ring.decider)[2][b.ip]["state"] == "up",
                       VERDICT_DEADLINE_SECS, "verdict up")
        time.sleep(2)
        assert all(ring_state(d, b.ip) == "down" for d in ring.directors)
        assert health_list(ring.decider)[2][b.ip]["by"] == "other"
    finally:
        rc, out, err = d1.doveadm("director", "up", b.ip)
        assert rc == 0, err
    wait_state_everywhere(ring, b.ip, "up", 10)


def test_decider_take_over_never_overlaps(ring3):
    ring = ring3
    old = ring.decider
    nxt = ring.sorted_directors()[1]
    b = ring.c.backends[2]
    ring.c.stop(only=[old])
    try:
        wait_decider(ring, nxt, DECIDER_TIMEOUT_SECS + 20)
        ring.c.stop(only=[b])
        rig.wait_until(lambda: all(ring_state(d, b.ip) == "down" for d in ring.directors
                                   if d is not old), VERDICT_DEADLINE_SECS, "down via new decider")
        assert re.search(ACTION_DOWN_RE % re.escape(b.ip), nxt.read_log())
        ring.c.start(only=[b])
        rig.wait_until(lambda: all(ring_state(d, b.ip) == "up" for d in ring.directors
                                   if d is not old), VERDICT_DEADLINE_SECS, "up via new decider")
    finally:
        ring.c.start(only=[old])
    ring.wait_formed()
    wait_decider(ring, old, DECIDER_TIMEOUT_SECS + 20)
    rig.wait_until(lambda: not health_list(nxt)[1], 10, "%s to yield" % nxt.name)
    # decider periods from the logs never overlap
    periods = []
    for d in ring.directors:
        start = None
        for line in d.read_log().splitlines():
            m = re.search(r"health: this director (is now|is no longer) the health decider", line)
            if not m:
                continue
            t = ringrig.log_time(line)
            if m.group(1) == "is now":
                start = t
            elif start is not None:
                periods.append((start, t, d.name))
                start = None
        if start is not None:
            periods.append((start, float("inf"), d.name))
    periods.sort()
    for (s1, e1, n1), (s2, e2, n2) in zip(periods, periods[1:]):
        assert s2 >= e1, "decider periods overlap: %s %s" % ((s1, e1, n1), (s2, e2, n2))


def test_mixed_ring_with_stock_follows_verdicts(make_cluster, settings_module):
    ring = start_ring(make_cluster, ("ours", "stock", "ours"))
    b = ring.c.backends[0]
    stock = ring.directors[1]
    ok, other, _ = ringrig.populate(ring.directors[0], ring.c.users[:9],
                                    [x.ip for x in ring.c.backends])
    assert ok == 9, other
    rig.wait_until(lambda: users_on(ring, stock, b.ip) == 3, 10, "users known to stock")
    ring.c.stop(only=[b])
    took = wait_state_everywhere(ring, b.ip, "down")
    rig.wait_until(lambda: all(users_on(ring, d, b.ip) == 0 for d in ring.directors), 10,
                   "users of %s flushed everywhere" % b.ip)
    print("mixed ring: backend stop -> down on all 3 (1 stock): %.2fs" % took)
    ring.c.start(only=[b])
    took = wait_state_everywhere(ring, b.ip, "up")
    print("mixed ring: backend restart -> up on all 3: %.2fs" % took)
    downs = action_count(ring, ACTION_DOWN_RE % re.escape(b.ip))
    assert downs == {d.name: int(d is ring.decider) for d in ring.directors}, downs
    # the ring stayed whole: stock never dropped a peer for our heartbeats
    assert ring.formed_problems() == []
    assert not re.search(r"Unknown command|Invalid|protocol error", stock.read_log(), re.I)


def test_ring_of_one_decides_like_a_standalone_director(make_cluster, settings_module):
    """director_servers lists only this director and director_health_deciders
    is empty: with no peer to share the decision, it decides as a standalone
    director does (a stopped backend goes down, a restarted one comes up)."""
    c = make_cluster(nbackends=2, nusers=5)
    append_backend_conf(c, "auth_failure_delay = 0\n")
    ring = ringrig.Ring(c, ("ours",), extra_conf=health_conf(c, c.users[-1], ""))
    ring.start()
    d = ring.directors[0]
    b = c.backends[1]
    rig.wait_until(lambda: health_list(d)[1], 20, "the ring of one to decide", interval=0.2)
    rig.wait_until(lambda: all(r["last_check"] > 0 and r["state"] == "up"
                               for r in health_list(d)[2].values()),
                   20, "first health rounds", interval=0.2)
    assert "director_health_deciders is empty" not in d.read_log()
    c.stop(only=[b])
    wait_state_everywhere(ring, b.ip, "down")
    assert re.search(ACTION_DOWN_RE % re.escape(b.ip), d.read_log())
    c.start(only=[b])
    wait_state_everywhere(ring, b.ip, "up")


def make_cert(directory):
    """A throw-away self-signed certificate for the backends' TLS ports."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=backend.test", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_probes_handshake_and_log_in(make_cluster, settings_module):
    """imaps/pop3s probes do a real TLS handshake: a host whose 'imaps' probe
    points at its plain IMAP port fails it and goes down; the others pass
    (banner and login over TLS) and stay up."""
    c = make_cluster(nbackends=3, nusers=5)
    cert, key = make_cert(c.dir)
    append_backend_conf(c, "ssl = yes\nssl_cert = <%s\nssl_key = <%s\n" % (cert, key))
    bad = c.backends[2]
    conf = health_conf(c, c.users[-1], "").replace(
        "director_health_checks = imap:143,pop3:110,lmtp:24",
        "director_health_checks = imaps:993,pop3s:995 %s=imaps:143" % bad.ip)
    d = c.add_director(extra_conf=conf)
    c.start()
    rig.wait_until(lambda: rig.host_table(d)[bad.ip]["state"] == "down", VERDICT_DEADLINE_SECS,
                   "%s down (TLS against a plain port)" % bad.ip)
    _, decides, rows = health_list(d)
    assert decides
    assert rows[bad.ip]["state"] == "down" and "imaps:143" in rows[bad.ip]["result"], rows
    print("TLS probe against a plain port: %s" % rows[bad.ip]["result"])
    for b in c.backends[:2]:
        assert rows[b.ip]["state"] == "up" and rows[b.ip]["result"] == "ok", rows
        assert rig.host_table(d)[b.ip]["state"] == "up"
        # the probes logged in over TLS
        assert re.search(r"imap-login: (?:Info: )?Login: user=<%s>.*\bTLS\b" % re.escape(c.users[-1]),
                         b.read_log()), b.name
        assert re.search(r"pop3-login: (?:Info: )?Login: user=<%s>.*\bTLS\b" % re.escape(c.users[-1]),
                         b.read_log()), b.name
