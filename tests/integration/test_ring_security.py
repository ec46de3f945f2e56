"""Ring security: only real members change the ring, and the authenticated
ring between our directors (director_ring_secret_file).

Rings of three on loopback, ours in the middle (d1) with stock or ours around
it ("stock,ours,stock" and "ours,ours,ours"). Fake peers are plain sockets
bound to a member's address (any process on that machine could do the same);
they speak the stock ring protocol line by line.

Barriers instead of sleeps: a ring connection handles lines in order, so a
PONG to our PING means every line before it was handled; a host change made
with doveadm answers only once the ring has synced, so anything the intruder
had managed to change would have reached every director by then.
"""

import contextlib
import os
import socket
import subprocess
import time

import pytest

import rig
import ringrig
from test_health import built_file, installed

SEC_MIXES = [("stock", "ours", "stock"), ("ours", "ours", "ours")]
SETTINGS_DIR = "/usr/lib/dovecot/modules/settings"
MODULE_NAME = "libdirector_health_settings.so"   # also declares director_ring_secret_file
UNKNOWN_DIRECTOR = "192.0.2.7"                   # TEST-NET-1: nobody's director


@pytest.fixture(params=SEC_MIXES, ids=ringrig.mix_id)
def mix(request):
    return request.param


def ours_under_test():
    if os.path.realpath(rig.director_bin()) == os.path.realpath(rig.STOCK_DIRECTOR):
        pytest.skip("ring hardening is a feature of our director, not of stock")


# --- a fake ring peer -------------------------------------------------------------

class FakePeer:
    """A TCP connection on the ring port that we drive line by line."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(0.2)
        self.buf = b""
        self.lines = []
        self.eof = False

    @classmethod
    def connect(cls, src_ip, dst_ip, port=rig.RING_PORT):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src_ip, 0))
        s.settimeout(5)
        s.connect((dst_ip, port))
        return cls(s)

    def send(self, *lines):
        with contextlib.suppress(OSError):
            self.sock.sendall("".join(l + "\n" for l in lines).encode())

    def _pump(self):
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return
        except OSError:
            self.eof = True
            return
        if not d:
            self.eof = True
            return
        self.buf += d
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            if text.startswith("PING"):   # stay alive: the director pings idle peers
                self.send("PONG\t%d\t0" % int(time.time()))
            self.lines.append(text)

    def wait_line(self, prefix, deadline_secs=10):
        """The first received line starting with prefix (waits for it)."""
        end = time.monotonic() + deadline_secs
        while True:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.eof or time.monotonic() >= end:
                return None
            self._pump()

    def barrier(self, deadline_secs=10):
        """PING and wait for the PONG: all earlier lines were handled."""
        self.lines = [l for l in self.lines if not l.startswith("PONG")]
        self.send("PING\t%d\t0" % int(time.time()))
        return self.wait_line("PONG", deadline_secs) is not None

    def wait_closed(self, deadline_secs=10):
        end = time.monotonic() + deadline_secs
        while not self.eof and time.monotonic() < end:
            self._pump()
        return self.eof

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


def handshake_me(ip, port=rig.RING_PORT):
    return ["VERSION\tdirector\t1\t9", "ME\t%s\t%d\t%d" % (ip, port, int(time.time()))]


def make_ring(make_cluster, mix, extra_conf=""):
    c = make_cluster(nbackends=3, nusers=40)
    return ringrig.Ring(c, mix, extra_conf=extra_conf)


def ok(res):
    rc, out, err = res
    assert rc == 0, (rc, out, err)
    return out


def sync_barrier(d, ring, base_hosts):
    """A host change on d (answered after the ring synced) that every
    director must see; then undo it. Returns each director's host rows as
    they were while the marker was there (marker left out)."""
    marker = ring.c.base + ".250"
    ok(d.doveadm("director", "add", marker, "1"))
    rows = {}
    for x in ring.directors:
        rig.wait_until(lambda: marker in ringrig.host_rows(x), 15,
                       "%s to see the barrier host" % x.name)
        r = ringrig.host_rows(x)
        del r[marker]
        rows[x.name] = r
    ok(d.doveadm("director", "remove", marker))
    return rows


def host_view(rows):
    """Host rows without the user counts (logins are not part of this)."""
    return {ip: row[:4] for ip, row in rows.items()}


# --- hardening, on by default -----------------------------------------------------

def test_intruder_without_handshake_cannot_change_hosts_or_users(make_cluster, mix):
    """A process on d0's machine connects to d1 from d0's address, claims to
    be d0 and sends ring changes without ever finishing the handshake."""
    ours_under_test()
    r = make_ring(make_cluster, mix)
    r.start()
    d0, d1, d2 = r.directors
    b0, b1, b2 = r.c.backends
    users = r.c.users[:12]
    ringrig.populate(d1, users, [b0.ip, b1.ip])
    r.wait_converged(deadline_secs=30)
    hosts_before = {d.name: host_view(ringrig.host_rows(d)) for d in r.directors}
    users_before = {h: v[0] for h, v in ringrig.user_list(d1).items()}
    some_hash = sorted(users_before)[0]
    other_host = b1.ip if users_before[some_hash] != b1.ip else b0.ip
    log_at = d1.log_size()

    p = FakePeer.connect(d0.ip, d1.ip)
    seq = 10 ** 9
    p.send(*handshake_me(d0.ip))
    p.send("DIRECTOR\t%s\t%d" % (UNKNOWN_DIRECTOR, rig.RING_PORT),
           "HOST-REMOVE\t%s\t%d\t%d\t%s" % (d0.ip, rig.RING_PORT, seq, b0.ip),
           "USER-MOVE\t%s\t%d\t%d\t%d\t%s" % (d0.ip, rig.RING_PORT, seq + 1, some_hash,
                                             other_host),
           "HOST\t%s\t%d\t%d\t%s\t0\t\tD%d\t" % (d0.ip, rig.RING_PORT, seq + 2, b2.ip,
                                               int(time.time())),
           "USER\t%d\t%s\t%d" % (some_hash, b2.ip, int(time.time())),
           "HOST-HAND-START\t1",
           "HOST\t%s\t0\t\tD%d\t" % (b1.ip, int(time.time())),
           "HOST-HAND-END\t1",
           "U\t%d\t%s\t%d" % (some_hash, b2.ip, int(time.time())))
    # PONG (everything handled) or a closed connection (refused): both fine
    assert p.barrier() or p.eof
    rows = sync_barrier(d1, r, hosts_before)
    p.close()
    for d in r.directors:
        assert host_view(rows[d.name]) == hosts_before[d.name], d.name
    users_after = {h: v[0] for h, v in ringrig.user_list(d1).items()}
    assert users_after == users_before
    status = ringrig.ring_status(d1)
    assert UNKNOWN_DIRECTOR not in [row["ip"] for row in status]
    d1.wait_log(r"Ignoring DIRECTOR %s:%d: not listed" % (UNKNOWN_DIRECTOR, rig.RING_PORT),
                offset=log_at)
    r.wait_formed(deadline_secs=30)


def test_me_lying_about_its_address_is_refused(make_cluster, mix):
    """From d0's address, ME claims to be d2: refused at once, logged."""
    ours_under_test()
    r = make_ring(make_cluster, mix)
    r.start()
    d0, d1, d2 = r.directors
    log_at = d1.log_size()
    p = FakePeer.connect(d0.ip, d1.ip)
    p.send(*handshake_me(d2.ip))
    assert p.wait_closed(deadline_secs=5), "a lying ME was not refused"
    p.close()
    d1.wait_log(r"director\(%s\): .*ME .*%s:%d.*comes from %s" % (
        rig.re.escape(d0.ip), rig.re.escape(d2.ip), rig.RING_PORT, rig.re.escape(d0.ip)),
        offset=log_at)
    # an ME naming a port nobody listed on a member's address: refused too
    p = FakePeer.connect(d0.ip, d1.ip)
    p.send(*handshake_me(d0.ip, rig.RING_PORT + 7))
    assert p.wait_closed(deadline_secs=5), "ME naming an unlisted director was not refused"
    p.close()
    r.wait_formed(deadline_secs=30)


def start_unwaited(c, inst):
    """Start a master without waiting for its ring to sync (rig.start does)."""
    for sub in ("log", "state"):
        os.makedirs(os.path.join(inst.dir, sub), exist_ok=True)
    os.chmod(inst.dir, 0o755)
    inst.write_config()
    inst.start_log_offset = inst.log_size()
    with open(os.devnull, "rb") as devnull:
        rc = subprocess.call([rig.DOVECOT, "-c", inst.conf], stdin=devnull,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             timeout=rig.START_DEADLINE_SECS)
    assert rc == 0, "dovecot -c %s exited %d" % (inst.conf, rc)
    inst.started = True

    def pid():
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(inst.base_dir, "master.pid")) as f:
                return int(f.read().strip())
        return None
    inst.master_pid = rig.wait_until(pid, rig.START_DEADLINE_SECS, "%s master.pid" % inst.name)


def test_connect_to_an_unknown_address_is_ignored(make_cluster):
    """Our director's right neighbour (a fake that completes the stock
    handshake) asks it to CONNECT to an address nobody listed."""
    ours_under_test()
    c = make_cluster(nbackends=1)
    me_ip, fake_ip = c.base + ".102", c.base + ".103"
    servers = "%s:%d %s:%d" % (me_ip, rig.RING_PORT, fake_ip, rig.RING_PORT)
    d = c.add_director(servers=servers, ip_suffix=102)
    c.start(only=c.backends)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((fake_ip, rig.RING_PORT))
    ls.listen(4)
    ls.settimeout(20)
    try:
        start_unwaited(c, d)
        conn, _ = ls.accept()
        p = FakePeer(conn)
        p.send("VERSION\tdirector\t1\t9",
               "ME\t%s\t%d\t%d" % (fake_ip, rig.RING_PORT, int(time.time())))
        assert p.wait_line("DONE", 20) is not None, p.lines
        p.send("DONE")
        assert p.barrier()
        rig.wait_until(lambda: any(row["ip"] == fake_ip and row["type"] == "right"
                                   for row in ringrig.ring_status(d)), 10,
                       "the fake to be the right side")
        log_at = d.log_size()
        p.send("CONNECT\t%s\t25" % UNKNOWN_DIRECTOR)
        assert p.barrier() or p.eof
        d.wait_log(r"Ignoring CONNECT .*%s:25.*not listed" % UNKNOWN_DIRECTOR, offset=log_at)
        assert UNKNOWN_DIRECTOR not in [row["ip"] for row in ringrig.ring_status(d)]
        p.close()
    finally:
        ls.close()


def test_ring_add_still_reaches_every_director(make_cluster, mix):
    """`doveadm director ring add` on a stock or our director: every
    director learns the new one from its neighbours."""
    r = make_ring(make_cluster, mix)
    r.start()
    new = r.c.base + ".199"
    ok(r.directors[0].doveadm("director", "ring", "add", new))
    for d in r.directors:
        rig.wait_until(lambda: new in [row["ip"] for row in ringrig.ring_status(d)], 15,
                       "%s to learn %s" % (d.name, new))
    ok(r.directors[2].doveadm("director", "ring", "remove", new))


# --- the authenticated ring -------------------------------------------------------

@pytest.fixture(scope="module")
def settings_module():
    """The config settings module that declares director_ring_secret_file to
    the stock 2.3 config process, installed while the tests run."""
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    ours_under_test()
    src = os.environ.get("HEALTH_SETTINGS_MODULE") or built_file("adapter", MODULE_NAME,
                                                                 SETTINGS_DIR)
    with installed(src, SETTINGS_DIR, MODULE_NAME) as dst:
        yield dst


def secret_file(c, name, text, mode=0o600):
    path = os.path.join(c.dir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


def secret_conf(path):
    return "director_ring_secret_file = %s\n" % path


def test_secret_file_with_loose_mode_or_missing_is_fatal(make_cluster, settings_module):
    c = make_cluster(nbackends=1)
    loose = secret_file(c, "loose-secret", "0123456789abcdef0123", mode=0o640)
    short = secret_file(c, "short-secret", "tooshort")
    cases = [(loose, r"director_ring_secret_file=%s: mode 0640 gives group or others access"),
             (os.path.join(c.dir, "missing"),
              r"director_ring_secret_file=%s: open\(\) failed"),
             (short, r"director_ring_secret_file=%s: the secret is 8 bytes")]
    for i, (path, want) in enumerate(cases):
        d = c.add_director(servers="self", extra_conf=secret_conf(path), ip_suffix=110 + i)
        if not c.backends[0].started:
            c.start(only=c.backends)
        start_unwaited(c, d)
        d.wait_log(r"Fatal: " + want % rig.re.escape(path), deadline_secs=15)
        c.stop(only=[d])


def test_authenticated_ring_works_end_to_end(make_cluster, settings_module):
    c0 = make_cluster(nbackends=3, nusers=200)
    path = secret_file(c0, "ring-secret", "a-long-shared-ring-secret-0123456789")
    r = ringrig.Ring(c0, ("ours", "ours", "ours"), extra_conf=secret_conf(path))
    r.start()
    d0, d1, d2 = r.directors
    # the ring really is authenticated: a peer without the secret is refused
    log_at = d1.log_size()
    p = FakePeer.connect(d0.ip, d1.ip)
    p.send(*handshake_me(d0.ip))
    assert p.wait_closed(deadline_secs=5), "a peer without the secret was not refused"
    p.close()
    d1.wait_log(r"did not offer ring authentication", offset=log_at)
    # logins through every director land on one backend per user
    users = r.c.users[:30]
    for i, u in enumerate(users):
        rig.imap_roundtrip(r.directors[i % 3], u)
    r.wait_converged(deadline_secs=30)
    # host changes
    extra = r.c.base + ".13"
    ok(d2.doveadm("director", "add", extra, "50"))
    want = ringrig.host_rows(d2)
    for d in r.directors:
        rig.wait_until(lambda: ringrig.host_rows(d) == want, 10, "%s host add" % d.name)
    ok(d0.doveadm("director", "remove", extra))
    # a move
    u = users[0]
    old = rig.current_host(d0, u)
    new = next(b.ip for b in r.c.backends if b.ip != old)
    ok(d1.doveadm("director", "move", u, new))
    for d in r.directors:
        rig.wait_until(lambda: rig.current_host(d, u) == new, 10, "%s sees the move" % d.name)
    assert rig.imap_roundtrip(d2, u)[0] == new
    # kill -9 and rejoin
    pid = d1.director_pid()
    os.kill(pid, 9)
    ringrig.wait_new_director_pid(d1, pid, deadline_secs=30)
    r.wait_formed(deadline_secs=60)
    r.wait_converged(deadline_secs=60)
    assert rig.current_host(d1, u) == new
    for d in r.directors:
        assert "wrong ring authentication proof" not in d.read_log()


@pytest.mark.parametrize("peer", ["wrong-secret", "no-secret", "stock"])
def test_peer_that_cannot_prove_the_secret_is_refused(make_cluster, settings_module, peer):
    c = make_cluster(nbackends=1)
    good = secret_file(c, "ring-secret", "a-long-shared-ring-secret-0123456789")
    wrong = secret_file(c, "wrong-secret", "another-long-secret-9876543210")
    r = ringrig.Ring(c, ("ours", "stock" if peer == "stock" else "ours", "ours"),
                     extra_conf=secret_conf(good))
    d0, d1, d2 = r.directors
    if peer == "wrong-secret":
        d1.extra_conf = ringrig.LOG_TIMESTAMP_CONF + secret_conf(wrong)
    else:
        d1.extra_conf = ringrig.LOG_TIMESTAMP_CONF
    c.start(only=c.backends)
    # d0 and d2 close a ring of two without d1
    r.start(only=[d0, d2])
    start_unwaited(c, d1)
    reason = {"wrong-secret": "wrong ring authentication proof",
              "no-secret": "did not offer ring authentication",
              "stock": "did not offer ring authentication"}[peer]
    rig.wait_until(lambda: any(reason in d.read_log() for d in (d0, d2)), 30,
                   "d0 or d2 to refuse d1 (%s)" % reason)
    for d in (d0, d2):
        for row in ringrig.ring_status(d):
            if row["ip"] == d1.ip:
                assert row["type"] not in ("left", "right"), (d.name, row)
    r.wait_formed(among=[d0, d2], deadline_secs=30)
