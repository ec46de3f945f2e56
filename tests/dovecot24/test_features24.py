# The rest of the 2.3 behaviours under Dovecot 2.4.1 (run inside the trixie
# chroot by tests/dovecot24/run.sh, after "make install"): POP3 through the
# director, proxy-notify refreshes from a real login process (proxy_refresh),
# the director_flush_socket program after a move, and doveadm proxying
# through director-userdb to the backend the director names. One director,
# two 2.4 backends; loopback only; every wait bounded.
import os
import shutil
import socket
import subprocess
import threading

import pytest

import test_smoke24 as smoke

DOVEADM_PORT = 12345
USERS = ("alice", "bob", "carol", "dave")
EXTRA_COMMON = """protocols = imap pop3 lmtp
service pop3-login {
  restart_request_count = unlimited
  client_limit = 100
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 0
  }
}
doveadm_password = secret
"""
EXTRA_BACKEND = """service doveadm {
  inet_listener doveadm {
    port = %d
  }
}
""" % DOVEADM_PORT
EXTRA_DIRECTOR = """doveadm_port = %d
protocol doveadm {
  auth_socket_path = director-userdb
}
director_flush_socket = unix:flush-sock
# the director asks login processes for a refresh every user_expire/2 = 5 s
director_user_expire = 10 s
""" % DOVEADM_PORT


def braces(text):
    """Instance formats its config body with str.format()."""
    return text.replace("{", "{{").replace("}", "}}")


class FlushServer:
    """A program-client "script" server on the director's flush socket:
    records each request's arguments and answers '+' (success)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                buf = b""
                try:
                    while b"\n\n" not in buf:
                        data = conn.recv(4096)
                        if not data:
                            break
                        buf += data
                except OSError:
                    continue
                lines = buf.decode(errors="replace").split("\n")
                # VERSION, "-" or "noreply", the arguments, an empty line
                self.requests.append(lines[2:lines.index("", 2)] if "" in lines[2:] else lines)
                try:
                    conn.sendall(b"+\n")
                except OSError:
                    pass

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def fcluster():
    for name in ("fb0", "fb1", "fd0"):
        shutil.rmtree(os.path.join(smoke.ROOT, name), ignore_errors=True)
    block = smoke.pick_block()
    backends = []
    for i, host in enumerate((30, 31)):
        b = smoke.Instance("fb%d" % i, "%s.%d" % (block, host),
                           braces(EXTRA_COMMON) + smoke.BACKEND + braces(EXTRA_BACKEND))
        with open(os.path.join(b.dir, "users"), "w") as f:
            for u in USERS:
                f.write("%s:{PLAIN}%s::::%s/home/%s::\n" % (u, smoke.PASSWORD, b.dir, u))
        shutil.chown(os.path.join(b.dir, "home"), "vmail", "vmail")
        backends.append(b)
    conf = smoke.DIRECTOR.replace("{mail_servers}", " ".join(b.ip for b in backends))
    d = smoke.Instance("fd0", block + ".130",
                       braces(EXTRA_COMMON) + conf + braces(EXTRA_DIRECTOR))
    with open(os.path.join(d.dir, "users"), "w") as f:
        for u in USERS:
            f.write("%s:{PLAIN}%s::::::proxy=y pass=%s\n"
                    % (u, smoke.PASSWORD, smoke.PASSWORD))
    flush = FlushServer(os.path.join(d.dir, "run", "flush-sock"))
    try:
        for b in backends:
            b.start()
            for u in USERS:
                r = b.doveadm("mailbox", "create", "-u", u, "on-" + b.ip.replace(".", "-"))
                assert r.returncode == 0, r.stderr
        d.start()
        yield {"director": d, "backends": backends, "flush": flush}
    finally:
        flush.stop()
        for inst in backends + [d]:
            inst.stop()
        for inst in backends + [d]:
            print("==== %s log\n%s" % (inst.name, inst.log()[-4000:]))


def admin(c):
    return smoke.Admin(os.path.join(c["director"].dir, "run", "director-admin"))


def lookup(c, user):
    """USER-LOOKUP -> (current host, expire time)."""
    f = admin(c).cmd("USER-LOOKUP\t" + user).split("\t")
    return f[0], int(f[1])


class Pop3:
    def __init__(self, ip):
        self.sock = socket.create_connection((ip, 110), timeout=10)
        self.f = self.sock.makefile("rb")
        assert self.line().startswith("+OK")

    def line(self):
        return self.f.readline().decode(errors="replace").rstrip("\r\n")

    def cmd(self, text):
        self.sock.sendall((text + "\r\n").encode())
        return self.line()

    def close(self):
        self.f.close()
        self.sock.close()


def test_pop3_through_the_director(fcluster):
    c = fcluster
    d = c["director"]
    for user in ("alice", "bob"):
        p = Pop3(d.ip)
        assert p.cmd("USER " + user).startswith("+OK")
        assert p.cmd("PASS " + smoke.PASSWORD).startswith("+OK")
        assert p.cmd("STAT").startswith("+OK")
        assert p.cmd("QUIT").startswith("+OK")
        p.close()
        current, _ = lookup(c, user)
        backend = [b for b in c["backends"] if b.ip == current][0]
        smoke.wait_until(lambda: "pop3-login: Info: Logged in: user=<%s>" % user in backend.log(),
                         10, "%s's POP3 login on %s" % (user, current))
        other = [b for b in c["backends"] if b.ip != current][0]
        assert "Logged in: user=<%s>" % user not in other.log()
        assert "proxy(%s,%s:110): Started proxying" % (user, current) in d.log()


def test_proxy_notify_refresh_from_login_process(fcluster):
    """The director's replies carry proxy_refresh=5 (director_user_expire/2):
    the login process writes dave to login/proxy-notify while his session is
    open, and the director pushes his expiry forward; carol, logged out,
    keeps hers."""
    c = fcluster
    d = c["director"]
    s = smoke.Imap(d.ip)
    assert s.cmd("LOGIN carol %s" % smoke.PASSWORD)[-1].split()[1] == "OK"
    s.cmd("LOGOUT")
    s.close()
    s = smoke.Imap(d.ip)
    assert s.cmd("LOGIN dave %s" % smoke.PASSWORD)[-1].split()[1] == "OK"
    _, dave0 = lookup(c, "dave")
    _, carol0 = lookup(c, "carol")
    smoke.wait_until(lambda: lookup(c, "dave")[1] >= dave0 + 3, 15, "dave's expiry to move")
    assert lookup(c, "carol")[1] == carol0
    # still served: the refreshes kept him past director_user_expire
    assert s.cmd("NOOP")[-1].split()[1] == "OK"
    s.cmd("LOGOUT")
    s.close()


def test_flush_socket_program_runs_after_a_move(fcluster):
    c = fcluster
    flush = c["flush"]
    s = smoke.Imap(c["director"].ip)
    assert s.cmd("LOGIN bob %s" % smoke.PASSWORD)[-1].split()[1] == "OK"
    old, _ = lookup(c, "bob")
    new = [b.ip for b in c["backends"] if b.ip != old][0]
    n = len(flush.requests)
    assert admin(c).cmd("USER-MOVE\tbob\t" + new) == "OK"
    assert s.closed_within(15)
    s.close()
    smoke.wait_until(lambda: len(flush.requests) > n, 15, "the flush program to run")
    req = flush.requests[n]
    assert req[0] == "FLUSH" and req[2] == old and req[3] == new and req[4] == "up", req
    smoke.wait_until(lambda: lookup(c, "bob")[0] == new, 15, "bob on " + new)
    assert "Failed to flush" not in c["director"].log()


def test_doveadm_proxying_through_director_userdb(fcluster):
    """doveadm -u on the director: director-userdb names the backend, doveadm
    proxies the command there (doveadm_port), and the backend runs it."""
    c = fcluster
    d = c["director"]
    for user in ("alice", "carol"):
        r = d.doveadm("mailbox", "list", "-u", user)
        assert r.returncode == 0, r.stderr
        current, _ = lookup(c, user)
        assert "on-" + current.replace(".", "-") in r.stdout.split(), (user, current, r.stdout)
        other = [b.ip for b in c["backends"] if b.ip != current][0]
        assert "on-" + other.replace(".", "-") not in r.stdout
