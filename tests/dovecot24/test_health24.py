# Health checks under Dovecot 2.4.1 (run inside the trixie chroot by
# tests/dovecot24/run.sh, after "make install"): the director_health_*
# settings come from our settings plugin. One director whose director_servers
# lists only itself (a ring of one decides like a standalone director) and two
# real 2.4 backends: a stopped backend is taken down and its users flushed, a
# restarted one comes back up, director_health_max_down holds when both fail,
# and `doveadm director health` shows it. Loopback only; every wait bounded.
import os
import re
import shutil
import time

import pytest

import test_smoke24 as smoke

PROBE_USER = "probe"
VERDICT_SECS = 30


@pytest.fixture(scope="module")
def hcluster():
    for name in ("hb0", "hb1", "hd0"):
        shutil.rmtree(os.path.join(smoke.ROOT, name), ignore_errors=True)
    block = smoke.pick_block()
    users = ("alice", "bob", "carol", "dave", "erin", "frank", PROBE_USER)
    backends = []
    for i, host in enumerate((20, 21)):
        b = smoke.Instance("hb%d" % i, "%s.%d" % (block, host),
                           smoke.BACKEND + "auth_failure_delay = 0\n")
        with open(os.path.join(b.dir, "users"), "w") as f:
            for u in users:
                f.write("%s:{PLAIN}%s::::%s/home/%s::\n" % (u, smoke.PASSWORD, b.dir, u))
        shutil.chown(os.path.join(b.dir, "home"), "vmail", "vmail")
        backends.append(b)
    conf = smoke.DIRECTOR.replace("{mail_servers}", " ".join(b.ip for b in backends))
    d = smoke.Instance("hd0", block + ".120", conf + """
director_health_checks = imap:143,lmtp:24
director_health_interval = 500 ms
director_health_timeout = 2 s
director_health_fail_rounds = 3
director_health_rapid_interval = 100 ms
director_health_rapid_polls = 10
director_health_rapid_threshold = 7
director_health_max_down = 1
director_health_login_file = {dir}/health-login
director_health_lmtp_rcpt = %s
""" % PROBE_USER)
    login = os.path.join(d.dir, "health-login")
    with open(login, "w") as f:
        f.write("user=%s\npassword=%s\n" % (PROBE_USER, smoke.PASSWORD))
    os.chmod(login, 0o600)
    with open(os.path.join(d.dir, "users"), "w") as f:
        for u in users:
            f.write("%s:{PLAIN}%s::::::proxy=y pass=%s\n" % (u, smoke.PASSWORD, smoke.PASSWORD))
    try:
        for b in backends:
            b.start()
        d.start()
        yield {"director": d, "backends": backends, "users": users[:-1]}
    finally:
        for inst in backends + [d]:
            inst.stop()
        for inst in backends + [d]:
            print("==== %s log\n%s" % (inst.name, inst.log()[-4000:]))


def admin(c):
    return smoke.Admin(os.path.join(c["director"].dir, "run", "director-admin"))


def health_rows(c):
    """HEALTH-LIST -> (this director decides, {ip: fields})."""
    lines = admin(c).listing("HEALTH-LIST")
    head = lines[0].split("\t")
    assert head[0] == "decider", lines
    return head[2] == "1", {l.split("\t")[0]: l.split("\t") for l in lines[1:]}


def host_state(c, ip):
    rows = {r.split("\t")[0]: r.split("\t") for r in admin(c).listing("HOST-LIST")}
    return rows[ip][4]


def users_on(c, ip):
    return sum(1 for r in admin(c).listing("USER-LIST") if r.split("\t")[2] == ip)


def all_up_and_checked(c):
    decides, rows = health_rows(c)
    return decides and len(rows) == 2 and all(
        r[1] == "up" and r[2] == "up" and int(r[5]) > 0 for r in rows.values())


def test_stopped_backend_is_downed_and_flushed_then_up(hcluster):
    c = hcluster
    smoke.wait_until(lambda: all_up_and_checked(c), 30, "first health rounds, deciding")
    b0, b1 = c["backends"]
    a = admin(c)
    for i, u in enumerate(c["users"]):
        assert a.cmd("USER-MOVE\t%s\t%s" % (u, c["backends"][i % 2].ip)) == "OK"
    smoke.wait_until(lambda: users_on(c, b1.ip) == 3, 10, "3 users on " + b1.ip)

    b1.stop()
    smoke.wait_until(lambda: host_state(c, b1.ip) == "D", VERDICT_SECS, b1.ip + " down")
    smoke.wait_until(lambda: users_on(c, b1.ip) == 0, 10, "users of %s flushed" % b1.ip)
    assert users_on(c, b0.ip) == 3
    _, rows = health_rows(c)
    assert rows[b1.ip][1] == "down" and rows[b1.ip][3] == "health", rows
    log = c["director"].log()
    assert re.search(r"health: host %s is failing .*: setting it down and flushing"
                     % re.escape(b1.ip), log)

    b1.start()
    smoke.wait_until(lambda: host_state(c, b1.ip) == "U", VERDICT_SECS, b1.ip + " up")
    assert re.search(r"health: host %s is healthy again: setting it up" % re.escape(b1.ip),
                     c["director"].log())


def test_doveadm_director_health_on_24(hcluster):
    c = hcluster
    smoke.wait_until(lambda: all_up_and_checked(c), 30, "all up")
    r = c["director"].doveadm("-f", "tab", "director", "health")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["mail server ip", "health", "state", "down by", "guard",
                                    "last check", "last result", "decider"], lines
    rows = {f[0]: f for f in (l.split("\t") for l in lines[1:])}
    assert sorted(rows) == sorted(b.ip for b in c["backends"]), rows
    for f in rows.values():
        assert f[1:5] == ["up", "up", "-", "-"] and f[6] == "ok", f
        # a ring of one decides itself
        assert f[7].endswith("(this director)"), f
    r = c["director"].doveadm("director", "health")
    assert r.returncode == 0 and "mail server ip" in r.stdout, r.stderr


def test_guard_holds_when_both_backends_fail(hcluster):
    c = hcluster
    smoke.wait_until(lambda: all_up_and_checked(c), 30, "all up")
    off = len(c["director"].log())
    b0, b1 = c["backends"]
    b0.stop()
    b1.stop()
    try:
        smoke.wait_until(lambda: [host_state(c, b.ip) for b in (b0, b1)].count("D") == 1,
                         VERDICT_SECS, "one of two failed backends down")
        smoke.wait_until(lambda: re.search(r"is left up: 1 hosts are already down and "
                                           r"director_health_max_down=1 allows 1",
                                           c["director"].log()[off:]), 15, "the guard")
        time.sleep(2)   # and it holds
        assert [host_state(c, b.ip) for b in (b0, b1)].count("D") == 1
        _, rows = health_rows(c)
        blocked = [ip for ip, r in rows.items() if r[4] == "blocked"]
        assert len(blocked) == 1 and rows[blocked[0]][2] == "up", rows
    finally:
        b0.start()
        b1.start()
    for b in (b0, b1):
        smoke.wait_until(lambda: host_state(c, b.ip) == "U", VERDICT_SECS, b.ip + " up again")
