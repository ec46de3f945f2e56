"""(b) Host management through the director under test: vhost weights, tags,
down hosts, moves (kicking an open session), flush --max-parallel, expiry."""

import collections
import os
import sys
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import rig


def login_all(d, users, workers=6):
    """IMAP round trip for each user; returns {user: backend ip}."""
    with ThreadPoolExecutor(workers) as ex:
        ips = list(ex.map(lambda u: rig.imap_roundtrip(d, u)[0], users))
    return dict(zip(users, ips))


def ok(res):
    rc, out, err = res
    assert rc == 0, "doveadm failed rc=%d: %s%s" % (rc, out, err)
    return out


def test_vhost_weights_100_0_300(cluster1):
    c = cluster1
    d = c.directors[0]
    b0, b1, b2 = c.backends
    ok(d.doveadm("director", "update", b1.ip, "0"))
    ok(d.doveadm("director", "update", b2.ip, "300"))
    table = rig.host_table(d)
    assert [table[b.ip]["vhosts"] for b in c.backends] == [100, 0, 300]
    users = c.users[:200]
    where = login_all(d, users)
    counts = collections.Counter(where.values())
    assert counts[b1.ip] == 0, "a 0-vhost host got users"
    assert counts[b0.ip] + counts[b2.ip] == len(users)
    # Expected 50 : 150, but the backends' addresses are new in every run and
    # the ring is lumpy: b0's share is 0.25 with a standard deviation of 0.0375
    # (where its 100 points land among 400, and drawing 200 users). 128 : 72
    # happened (a share of 0.36). The band is a share of 0.10 to 0.39: in a
    # simulation of 40,000 runs it failed 1 in 10,000, and equal weights (a
    # share of 0.5) passed it 1.4 % of the time; b1 above gets no user at all,
    # and test_oracle.py compares every placement with stock's.
    assert 1.55 <= counts[b2.ip] / max(counts[b0.ip], 1) <= 9.0, counts
    table = rig.host_table(d)
    assert {ip: table[ip]["users"] for ip in table} == {b.ip: counts[b.ip] for b in c.backends}
    # each assignment is what status reports, and what the backend logged
    for u in users[:20]:
        assert rig.current_host(d, u) == where[u]
        assert c.login_counts(u)[where[u]] >= 1 or rig.wait_until(
            lambda: c.login_counts(u)[where[u]] >= 1, 5, "backend log")


def test_tagged_user_goes_to_tagged_host(make_cluster):
    c = make_cluster(nbackends=3)
    b0, b1, b2 = c.backends
    tagged = c.users[:8]
    d = c.add_director(mail_servers="%s %s" % (b0.ip, b1.ip),
                       tag_users={u: "blue" for u in tagged})
    c.start()
    # before the tagged host exists, a tagged login cannot be served: only check
    # Hashed is empty for the tag
    assert rig.status_fields(d, tagged[0], "blue")["Hashed"] == ""
    ok(d.doveadm("director", "add", "-t", "blue", b2.ip, "50"))
    table = rig.host_table(d)
    assert table[b2.ip]["tag"] == "blue"
    where = login_all(d, tagged + c.users[8:60])
    for u in tagged:
        assert where[u] == b2.ip, "tagged user %s went to %s" % (u, where[u])
        assert rig.current_host(d, u, "blue") == b2.ip
        assert rig.current_host(d, u) is None  # not in the default tag's table
    for u in c.users[8:60]:
        assert where[u] in (b0.ip, b1.ip), "untagged user %s on the tagged host" % u


def test_down_host_gets_no_new_users_but_keeps_old(cluster1):
    c = cluster1
    d = c.directors[0]
    b1 = c.backends[1]
    old = c.users[:60]
    before = login_all(d, old)
    on_b1 = [u for u in old if before[u] == b1.ip]
    assert on_b1, "no user hashed to b1; pick more users"
    ok(d.doveadm("director", "down", b1.ip))
    assert rig.host_table(d)[b1.ip]["state"] == "down"
    new = c.users[60:160]
    after = login_all(d, new)
    assert b1.ip not in after.values(), "a new user landed on a down host"
    # existing assignments stay, including those on the down host
    assert login_all(d, old) == before
    assert rig.current_host(d, on_b1[0]) == b1.ip
    ok(d.doveadm("director", "up", b1.ip))
    assert rig.host_table(d)[b1.ip]["state"] == "up"


def read_until_closed(sock, deadline_secs):
    """Read a socket until EOF; returns (data, closed)."""
    end = time.monotonic() + deadline_secs
    data = b""
    while time.monotonic() < end:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def test_move_kicks_open_session_and_next_login_lands_on_new_host(cluster1):
    c = cluster1
    d = c.directors[0]
    u = c.users[3]
    log_at = d.log_size()
    s = rig.imap_login(d, u)
    old = rig.imap_backend(s, c).ip
    assert rig.current_host(d, u) == old
    new = [b.ip for b in c.backends if b.ip != old][0]
    s.select("INBOX")
    # an unrelated user's open session must survive the move
    other = next(x for x in c.users[10:] if x != u)
    s2 = rig.imap_login(d, other)
    rc, out, err = d.doveadm("director", "move", u, new)
    assert (rc, out, err) == (0, "", "")
    sock = s.socket()
    sock.settimeout(0.5)
    data, closed = read_until_closed(sock, 10)
    assert closed, "the moved user's open session was not disconnected: %r" % data
    # stock closes the proxied connection without a BYE (the login process is in
    # byte-copy mode); the director proxy's login process logs why
    assert data == b"" or b"BYE" in data, data
    d.wait_log(r"proxy\(%s,%s:143\): Disconnected by proxy: Kicked via director"
               % (rig.re.escape(u), rig.re.escape(old)), offset=log_at)
    rig.wait_until(lambda: rig.current_host(d, u) == new, 10, "Current to become the new host")
    # the kill/delay of the move may still hold logins; retry within a deadline
    ip, _ = rig.imap_roundtrip(d, u)
    assert ip == new
    # the other session is alive
    assert s2.noop()[0] == "OK"
    s2.logout()


def test_move_to_unknown_host_fails(cluster1):
    d = cluster1.directors[0]
    rc, out, err = d.doveadm("director", "move", cluster1.users[0], cluster1.base + ".99")
    assert rc == 68 and "doesn't exist" in err


def test_flush_max_parallel_moves_users_off_zeroed_host(cluster1):
    c = cluster1
    d = c.directors[0]
    b0 = c.backends[0]
    users = c.users[:36]
    before = login_all(d, users)
    on_b0 = [u for u in users if before[u] == b0.ip]
    assert len(on_b0) >= 5
    ok(d.doveadm("director", "update", b0.ip, "0"))
    # the update alone does not move existing users
    assert rig.host_table(d)[b0.ip]["users"] == len(on_b0)
    t0 = time.monotonic()
    rc, out, err = d.doveadm("director", "flush", "--max-parallel", "2", b0.ip, timeout=90)
    assert (rc, out, err) == (0, "", "")
    took = time.monotonic() - t0
    # each move holds its slot for director_user_kick_delay (2 s, kept to the
    # millisecond as stock keeps it), so with two slots the flush needs
    # ceil(n/2) rounds: proof the limit is honoured. The 0.1 s is for the
    # clock readings, not for the delay (a whole-second timer once ended
    # it after 1 to 3 s, and 8 users took 5.4 s).
    rounds = (len(on_b0) + 1) // 2
    assert took >= (rounds - 1) * 2 - 0.1, (took, len(on_b0))
    table = rig.host_table(d)
    assert table[b0.ip]["users"] == 0
    assert sum(t["users"] for t in table.values()) == len(users)
    for u in on_b0:
        cur = rig.current_host(d, u)
        assert cur is not None and cur != b0.ip
        assert rig.status_fields(d, u)["Hashed"] == cur
    # users not on b0 were not touched
    for u in users:
        if before[u] != b0.ip:
            assert rig.current_host(d, u) == before[u]
    after = login_all(d, on_b0)
    assert b0.ip not in after.values()
    # a flush of all hosts with max-parallel 1 is a no-op now
    assert d.doveadm("director", "flush", "--max-parallel", "1", "all", timeout=60) == (0, "", "")
    assert rig.host_table(d)[b0.ip]["users"] == 0
    assert time.monotonic() - t0 < 60


def test_flush_unknown_host_reports_not_found(cluster1):
    d = cluster1.directors[0]
    rc, out, err = d.doveadm("director", "flush", cluster1.base + ".99")
    assert rc == 68 and "doesn't exist" in err, (rc, out, err)


@pytest.mark.slow
def test_user_expires_after_director_user_expire(make_cluster):
    c = make_cluster(nbackends=2)
    d = c.add_director(user_expire="10s")
    c.start()
    u = c.users[0]
    ip, _ = rig.imap_roundtrip(d, u)
    t_login = time.monotonic()
    assert rig.current_host(d, u) == ip
    time.sleep(5)
    assert rig.current_host(d, u) == ip, "expired too early"
    rig.wait_until(lambda: rig.current_host(d, u) is None, 20, "user to expire", interval=0.5)
    took = time.monotonic() - t_login
    assert 9 <= took <= 16, took
    f = rig.status_fields(d, u)
    assert f["Current"] == "n/a (expires -1)"
    assert rig.host_table(d)[ip]["users"] == 0


def test_kick_without_ipc_reply_times_out_and_kicks_go_on(make_cluster):
    """A hung ipc server (SIGSTOP) never answers kicks.  Once the running
    kicks fill director_max_parallel_kicks, a nowait kick gets TRYAGAIN;
    the director gives up on an unanswered kick after 30 s, so kicking works
    again while ipc is still hung (before, the running-kick count leaked for
    as long as ipc hung, for good if it never answered)."""
    c = make_cluster(nbackends=1, nusers=4)
    d = c.add_director(extra_conf="director_max_parallel_kicks = 2")
    c.start()
    # a login brings up the ipc service (login processes connect to it)
    ip, _ = rig.imap_roundtrip(d, c.users[0])
    # "doveadm proxy list" is answered by ipc once it runs its event loop: a
    # process stopped before it has told the master it started is killed by
    # the master after 30 s ("Initial status notification not received").
    rig.wait_until(lambda: d.doveadm("proxy", "list")[0] == 0, 20, "ipc answering")
    ipc = rig.wait_until(lambda: d.service_pid("dovecot/ipc"), 10, "ipc process")
    os.kill(ipc, signal.SIGSTOP)
    try:
        s = rig.admin_socket(d, timeout=10)
        for u in c.users[:2]:
            s.send_line("USER-KICK\t%s\tnowait" % u)
            assert s.read_line() == "OK"
        s.send_line("USER-KICK\t%s\tnowait" % c.users[2])
        assert s.read_line() == "TRYAGAIN"
        t0 = time.monotonic()

        def kick_accepted():
            s.send_line("USER-KICK\t%s\tnowait" % c.users[3])
            return s.read_line() == "OK"
        rig.wait_until(kick_accepted, 45, "a kick to be accepted while ipc hangs", interval=1)
        assert time.monotonic() - t0 > 20, "kicks accepted again before the reply timeout"
        d.wait_log(r"ipc did not answer a kick in 30000 msecs, giving up on \d+ kicks",
                   deadline_secs=5)
        s.close()
    finally:
        # (An exception here would hide the one that brought us here.)
        ipc_alive = True
        try:
            os.kill(ipc, signal.SIGCONT)
        except ProcessLookupError:
            ipc_alive = False
            sys.stderr.write("ipc process %d exited while stopped; the log says:\n%s\n" % (
                ipc, "\n".join(l for l in d.read_log().splitlines() if "ipc" in l)))
    assert ipc_alive, "the stopped ipc process exited"
    assert d.director_pid()
    ip, _ = rig.imap_roundtrip(d, c.users[0])
    assert ip == c.backends[0].ip
