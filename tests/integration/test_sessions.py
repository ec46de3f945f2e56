"""(a) IMAP, POP3 and LMTP through the director under test reach the backend
that `doveadm director status <user>` names as Current."""

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
