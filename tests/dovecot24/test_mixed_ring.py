# A mixed-version ring on loopback, run on the Debian 12 host by run.sh
# (through "chroot.sh host", which keeps the chroot's mounts): a Dovecot
# 2.3.19.1 director (the stock binary, or ours with MIXED_DIRECTOR_BIN) with
# two 2.3 backends from tests/integration/rig.py, and our director under
# Dovecot 2.4.1 inside the trixie chroot (installed there by run.sh). Both
# directors list each other in director_servers; the test checks the ring
# syncs, hosts and users are shared, and logins through either director land
# on the same backend.
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import rig  # noqa: E402

CHROOT = os.environ.get("DD_CHROOT", "/tmp/dd-trixie")
INNER = "/tmp/dd24-mixed"  # path inside the chroot
OUTER = CHROOT + INNER

CONF24 = """dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
base_dir = {inner}/run
state_dir = {inner}/state
instance_name = dd24-mixed-{ip}
listen = {ip}
log_path = {inner}/dovecot.log
ssl = no
auth_allow_cleartext = yes
protocols = imap
log_debug = category=director
director_servers = {servers}
director_mail_servers = {mail}
login_socket_path = director
passdb static {{
  password = {password}
  fields {{
    proxy = y
    pass = {password}
  }}
}}
service imap-login {{
  restart_request_count = unlimited
  client_limit = 100
  inet_listener imap {{
    port = 143
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service director {{
  unix_listener login/director {{
    mode = 0666
  }}
  fifo_listener login/proxy-notify {{
    mode = 0666
  }}
  inet_listener director {{
    port = {port}
  }}
}}
"""


def in_chroot(*args, check=True):
    return subprocess.run(["chroot", CHROOT] + list(args), capture_output=True, text=True,
                          errors="replace", timeout=60, check=check)


class Director24:
    def __init__(self, ip, servers, mail):
        shutil.rmtree(OUTER, ignore_errors=True)
        for sub in ("run", "state"):
            os.makedirs(os.path.join(OUTER, sub))
        self.ip = ip
        self.conf = INNER + "/dovecot.conf"
        with open(OUTER + "/dovecot.conf", "w") as f:
            f.write(CONF24.format(inner=INNER, ip=ip, servers=servers, mail=mail,
                                  password=rig.PASSWORD, port=rig.RING_PORT))
        self.pid = None

    def start(self):
        # The daemon keeps inherited pipes open: no output capture here.
        subprocess.run(["chroot", CHROOT, "dovecot", "-c", self.conf], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        pidfile = OUTER + "/run/master.pid"
        self.pid = int(rig.wait_until(
            lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 15,
            "2.4 master.pid"))
        rig.wait_until(lambda: rig.port_open(self.ip, 143), 15, "2.4 imap port")

    def stop(self):
        if self.pid is None:
            return
        os.kill(self.pid, 15)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and rig.pid_alive(self.pid):
            time.sleep(0.05)
        self.pid = None

    def doveadm(self, *args):
        return in_chroot("doveadm", "-c", self.conf, *args, check=False)

    def log(self):
        try:
            with open(OUTER + "/dovecot.log", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="module")
def ring():
    bin23 = os.environ.get("MIXED_DIRECTOR_BIN", "/usr/lib/dovecot/director")
    c = rig.Cluster(nbackends=2, nusers=20)
    d24_ip = c.base + ".150"
    d23 = c.add_director(bin=bin23)
    servers = "%s:%d %s:%d" % (d23.ip, rig.RING_PORT, d24_ip, rig.RING_PORT)
    d23.servers = servers
    d24 = Director24(d24_ip, servers, " ".join(b.ip for b in c.backends))
    try:
        # The 2.3 side waits for a synced ring, so the 2.4 director goes first.
        d24.start()
        c.start()
        yield c, d23, d24
    finally:
        d24.stop()
        print("==== 2.4 director log\n" + d24.log()[-5000:])
        c.stop()
        c.cleanup()


def ring_synced(d):
    _, out, _ = rig.doveadm(d, "director", "ring", "status")
    lines = out.splitlines()[1:]
    return len(lines) == 3 and all("synced" in l for l in lines)


def test_ring_syncs_across_versions(ring):
    c, d23, d24 = ring
    rig.wait_until(lambda: ring_synced(d23), 30, "2.3 director sees a synced ring")
    r = d24.doveadm("director", "ring", "status")
    assert r.returncode == 0, r.stderr
    assert "ring synced" in r.stdout, r.stdout


def test_host_added_on_24_appears_on_23(ring):
    c, d23, d24 = ring
    extra = c.base + ".19"
    r = d24.doveadm("director", "add", extra, "10")
    assert r.returncode == 0, r.stderr
    rig.wait_until(lambda: extra in rig.doveadm(d23, "director", "status")[1], 15,
                   "host on the 2.3 director")
    assert d24.doveadm("director", "remove", extra).returncode == 0
    rig.wait_until(lambda: extra not in rig.doveadm(d23, "director", "status")[1], 15,
                   "host gone from the 2.3 director")


def test_logins_through_both_land_on_one_backend(ring):
    c, d23, d24 = ring
    for user in c.users[:8]:
        s = rig.imap_login(d23, user)
        first = rig.imap_backend(s, c)
        s.logout()
        s = rig.imap_login(d24, user)
        second = rig.imap_backend(s, c)
        s.logout()
        assert first is second, (user, first.ip, second.ip)
        r24 = d24.doveadm("director", "status", user).stdout.splitlines()[0]
        r23 = rig.doveadm(d23, "director", "status", user)[1].splitlines()[0]
        assert r24.split()[1] == r23.split()[1] == first.ip, (r23, r24)
