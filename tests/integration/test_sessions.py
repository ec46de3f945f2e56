"""(a) IMAP, POP3 and LMTP through the director under test reach the backend
that `doveadm director status <user>` names as Current."""

import statistics
import time

import rig


def test_lmtp_lands_on_current_backend_and_imap_pop3_see_it(cluster1):
    c = cluster1
    d = c.directors[0]
    users = c.users[:6]
    for i, u in enumerate(users):
        for _ in range(i % 3 + 1):
            rig.lmtp_deliver(d, u, subject="to %s" % u)
    seen_backends = set()
    for i, u in enumerate(users):
        want = i % 3 + 1
        cur = rig.current_host(d, u)
        assert cur in [b.ip for b in c.backends], "no Current host for %s" % u
        # the mail is on Current's Maildir and nowhere else
        assert c.maildir_counts(u) == {b.ip: (want if b.ip == cur else 0) for b in c.backends}
        ip, count = rig.imap_roundtrip(d, u)
        assert (ip, count) == (cur, want)
        assert rig.pop3_roundtrip(d, u) == want
        seen_backends.add(cur)
        # both logins were proxied to Current (backend log)
        assert rig.wait_until(lambda: c.login_counts(u)[cur] == 2, 5, "backend login log")
        assert sum(c.login_counts(u).values()) == 2
    # six users over three equal hosts: the hash spreads them (fixed names, so stable)
    assert len(seen_backends) >= 2


def test_wrong_password_is_refused_through_director(cluster1):
    d = cluster1.directors[0]
    u = cluster1.users[0]
    try:
        rig.imap_login(d, u, "wrong")
    except rig.imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e) or "Authentication failed" in str(e)
    else:
        raise AssertionError("login with a wrong password succeeded")
    # the director still serves the user afterwards
    assert rig.imap_roundtrip(d, u)[0] == rig.current_host(d, u)


def _auth_line(req_id, user):
    return "AUTH\t%d\tPLAIN\tservice=imap\tresp=%s\n" % (req_id, rig.auth_plain(user))


def _single_lookup_secs(sock, req_id, user):
    start = time.monotonic()
    sock.send(_auth_line(req_id, user))
    line = sock.read_line()
    took = time.monotonic() - start
    assert line is not None and line.startswith("OK\t%d\t" % req_id), line
    return took, line


def test_pipelined_logins_each_answered_and_single_ones_not_held(cluster1):
    """login/director reads auth's replies in batches while a connection has
    many requests open at auth (a short wait before the read,
    src/director/auth-connection.cc). A burst of 300 AUTH requests written at
    once gets one OK with host= per request, the hash's host for each user;
    afterwards, with one request open at a time, nothing waits: the median
    lookup through the director is within 0.8 ms of the same lookup straight
    on auth (a batching wait is at least 1 ms)."""
    c = cluster1
    d = c.directors[0]
    users = ["burst%d@example.com" % i for i in range(300)]
    with rig.login_socket(d, timeout=10) as s:
        rig.auth_client_handshake(s, 70001)
        s.send("".join(_auth_line(i + 1, u) for i, u in enumerate(users)))
        replies = {}
        for _ in range(len(users)):
            line = s.read_line()
            assert line is not None, "director closed with %d replies read" % len(replies)
            fields = line.split("\t")
            assert fields[0] == "OK", line
            host = [f[5:] for f in fields if f.startswith("host=")]
            assert len(host) == 1, line
            replies[int(fields[1])] = host[0]
    assert sorted(replies) == list(range(1, len(users) + 1))
    for i in (0, 1, 150, 299):
        assert rig.current_host(d, users[i]) == replies[i + 1]

    direct, through = [], []
    with rig.LineSocket.unix(d.path("auth-login"), 5) as a, rig.login_socket(d) as s:
        rig.auth_client_handshake(a, 70002)
        rig.auth_client_handshake(s, 70003)
        for i in range(40):
            user = users[i]
            direct.append(_single_lookup_secs(a, 1000 + i, user)[0])
            took, line = _single_lookup_secs(s, 1000 + i, user)
            assert "\thost=%s" % replies[i + 1] in line, line
            through.append(took)
    direct_ms = statistics.median(direct) * 1000
    through_ms = statistics.median(through) * 1000
    assert through_ms - direct_ms < 0.8, \
        "median lookup %.2f ms through the director, %.2f ms on auth" % (through_ms, direct_ms)
