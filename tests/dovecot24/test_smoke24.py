# Smoke test of our director under Dovecot 2.4.1 (run inside the trixie
# chroot by tests/dovecot24/run.sh, as root, after "make install"): two real
# 2.4 backends and a 2.4 director instance whose config carries the director
# settings (known to 2.4 only through our settings plugin), with imap-login
# routed through login/director by login_socket_path. Loopback only; every
# wait is bounded; only processes started here are stopped, by master pid.
import os
import pwd
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest

PASSWORD = "pass"
ROOT = "/tmp/dd24-smoke"


def wait_until(pred, secs, what):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out after %s s waiting for %s" % (secs, what))


def port_open(ip, port):
    try:
        with socket.create_connection((ip, port), timeout=0.2):
            return True
    except OSError:
        return False


def pick_block():
    # A 127.24.N.0/24 block nobody listens in (parallel runs differ).
    for _ in range(50):
        n = random.randint(1, 250)
        if not any(port_open("127.24.%d.%d" % (n, h), 143) for h in (10, 11, 100)):
            return "127.24.%d" % n
    raise AssertionError("no free 127.24.N block")


COMMON = """dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = {name}
listen = {ip}
log_path = {dir}/dovecot.log
ssl = no
auth_allow_cleartext = yes
protocols = imap lmtp
default_internal_user = dovecot
default_login_user = dovenull
# Performance mode: a kick reaches a proxy through anvil and the login
# process's admin socket. (2.4.1 in high-security mode, one client per
# process, answers a kick with SIGTERM, which leaves an established proxy
# open; "doveadm proxy kick" behaves the same.)
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
service doveadm {{
  inet_listener doveadm {{
    port = 0
  }}
}}
"""


class Instance:
    def __init__(self, name, ip, body):
        self.name = name
        self.ip = ip
        self.dir = os.path.join(ROOT, name)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(COMMON.format(dir=self.dir, name=name, ip=ip))
            f.write(body.format(dir=self.dir, ip=ip))
        self.pid = None

    def start(self):
        subprocess.run(["dovecot", "-c", self.conf], check=True, timeout=30)
        pidfile = os.path.join(self.dir, "run", "master.pid")
        self.pid = int(wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(),
                                  10, self.name + " master.pid"))
        wait_until(lambda: port_open(self.ip, 143), 15, self.name + " imap port")

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.pid = None

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def doveadm(self, *args):
        return subprocess.run(["doveadm", "-c", self.conf] + list(args), capture_output=True,
                              text=True, errors="replace", timeout=30)


BACKEND = """mail_driver = maildir
mail_home = {dir}/home/%{{user}}
mail_path = ~/Maildir
mail_uid = vmail
mail_gid = vmail
passdb passwd-file {{
  passwd_file_path = {dir}/users
}}
userdb passwd-file {{
  passwd_file_path = {dir}/users
}}
service lmtp {{
  inet_listener lmtp {{
    port = 24
  }}
}}
"""

DIRECTOR = """director_servers = {ip}:9090
director_mail_servers = {mail_servers}
director_user_expire = 1 min
log_debug = category=director
login_socket_path = director
# LMTP proxying asks the director (director-userdb) for the backend
lmtp_proxy = yes
protocol lmtp {{
  auth_socket_path = director-userdb
}}
service lmtp {{
  inet_listener lmtp {{
    port = 24
  }}
}}
passdb passwd-file {{
  passwd_file_path = {dir}/users
}}
# only for `doveadm director map` without -f, which lists the userdb's users
userdb passwd-file {{
  passwd_file_path = {dir}/users
}}
service director {{
  unix_listener login/director {{
    mode = 0666
  }}
  fifo_listener login/proxy-notify {{
    mode = 0666
  }}
  unix_listener director-admin {{
    mode = 0600
  }}
  inet_listener director {{
    port = 9090
  }}
}}
"""


class Imap:
    def __init__(self, ip, port=143):
        self.sock = socket.create_connection((ip, port), timeout=10)
        self.buf = b""
        self.tag = 0
        assert self.read_line().startswith("* OK")

    def read_line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def cmd(self, text):
        self.tag += 1
        tag = "a%d" % self.tag
        self.sock.sendall(("%s %s\r\n" % (tag, text)).encode())
        lines = []
        for _ in range(1000):
            line = self.read_line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines
        raise AssertionError("no tagged reply to " + text)

    def closed_within(self, secs):
        self.sock.settimeout(secs)
        try:
            while True:
                if not self.sock.recv(4096):
                    return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def close(self):
        self.sock.close()


class Admin:
    """The director-admin socket (what doveadm director talks to)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.sock.sendall(b"VERSION\tdirector-doveadm\t1\t0\n")
        assert self.read_line().startswith("VERSION\tdirector-doveadm\t1\t")

    def read_line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("admin connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, line):
        self.sock.sendall((line + "\n").encode())
        return self.read_line()

    def listing(self, line):
        self.sock.sendall((line + "\n").encode())
        out = []
        for _ in range(10000):
            row = self.read_line()
            if row == "":
                return out
            out.append(row)
        raise AssertionError("unterminated listing")


@pytest.fixture(scope="module")
def cluster():
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(ROOT)
    block = pick_block()
    backends = []
    for i, host in enumerate((10, 11)):
        b = Instance("b%d" % i, "%s.%d" % (block, host), BACKEND)
        with open(os.path.join(b.dir, "users"), "w") as f:
            for u in ("alice", "bob", "carol"):
                f.write("%s:{PLAIN}%s::::%s/home/%s::\n" % (u, PASSWORD, b.dir, u))
        shutil.chown(os.path.join(b.dir, "home"), "vmail", "vmail")
        backends.append(b)
    mail_servers = " ".join(b.ip for b in backends)
    d = Instance("d0", block + ".100", DIRECTOR.replace("{mail_servers}", mail_servers))
    with open(os.path.join(d.dir, "users"), "w") as f:
        for u in ("alice", "bob", "carol"):
            f.write("%s:{PLAIN}%s::::::proxy=y pass=%s\n" % (u, PASSWORD, PASSWORD))
    try:
        for b in backends:
            b.start()
            # A mailbox naming the backend tells a proxied session where it is.
            for u in ("alice", "bob", "carol"):
                r = b.doveadm("mailbox", "create", "-u", u, "on-" + b.ip.replace(".", "-"))
                assert r.returncode == 0, r.stderr
        d.start()
        yield {"director": d, "backends": backends}
    finally:
        for inst in backends + [d]:
            inst.stop()
        for inst in backends + [d]:
            print("==== %s log\n%s" % (inst.name, inst.log()[-4000:]))


def maildir_count(backend, user):
    n = 0
    for sub in ("new", "cur"):
        path = os.path.join(backend.dir, "home", user, "Maildir", sub)
        if os.path.isdir(path):
            n += len(os.listdir(path))
    return n


def test_lmtp_through_director_lands_on_the_backend_it_names(cluster):
    """LMTP proxying (lmtp_proxy, auth_socket_path = director-userdb): the
    mail lands on the backend `doveadm director status` names."""
    bs = cluster["backends"]
    before = {b.ip: maildir_count(b, "bob") for b in bs}
    with smtplib.LMTP(cluster["director"].ip, 24, timeout=20) as s:
        refused = s.sendmail("sender@example.com", ["bob"],
                             b"Subject: via the director\r\n\r\nhello\r\n")
    assert refused == {}
    r = doveadm_director(cluster, "status", "bob")
    assert r.returncode == 0, r.stderr
    current = r.stdout.split()[1]
    wait_until(lambda: maildir_count([b for b in bs if b.ip == current][0], "bob")
               == before[current] + 1, 10, "mail for bob on " + current)
    for b in bs:
        if b.ip != current:
            assert maildir_count(b, "bob") == before[b.ip]


def admin(cluster):
    return Admin(os.path.join(cluster["director"].dir, "run", "director-admin"))


def backend_of(session_lines):
    for line in session_lines:
        if "on-" in line:
            return line.split("on-")[-1].strip('"').replace("-", ".")
    return None


def test_doveconf_accepts_director_settings(cluster):
    d = cluster["director"]
    r = subprocess.run(["doveconf", "-c", d.conf, "-n"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "director_mail_servers = " in r.stdout
    r = subprocess.run(["doveconf", "-c", d.conf, "-a"], capture_output=True, text=True,
                       timeout=30)
    assert "service director {" in r.stdout
    for name in ("director_user_expire", "director_username_hash", "director_flush_socket",
                 "director_max_parallel_kicks", "director_output_buffer_size"):
        assert name + " = " in r.stdout, name


def test_director_runs_and_lists_hosts(cluster):
    d = cluster["director"]
    assert "director" in d.doveadm("process", "status").stdout
    a = admin(cluster)
    rows = wait_until(lambda: a.listing("HOST-LIST"), 10, "HOST-LIST")
    ips = sorted(r.split("\t")[0] for r in rows)
    assert ips == sorted(b.ip for b in cluster["backends"])


def test_login_lands_on_the_backend_the_director_names(cluster):
    a = admin(cluster)
    for user in ("alice", "bob", "carol"):
        s = Imap(cluster["director"].ip)
        assert s.cmd("LOGIN %s %s" % (user, PASSWORD))[-1].split()[1] == "OK"
        landed = backend_of(s.cmd('LIST "" "*"'))
        s.cmd("LOGOUT")
        s.close()
        reply = a.cmd("USER-LOOKUP\t" + user).split("\t")
        assert landed is not None and reply[0] == landed, (user, landed, reply)


def test_host_down_and_up(cluster):
    a = admin(cluster)
    b = cluster["backends"][0]
    assert a.cmd("HOST-DOWN\t" + b.ip) == "OK"
    rows = {r.split("\t")[0]: r.split("\t") for r in a.listing("HOST-LIST")}
    assert rows[b.ip][4] == "D", rows
    assert a.cmd("HOST-UP\t" + b.ip) == "OK"
    rows = {r.split("\t")[0]: r.split("\t") for r in a.listing("HOST-LIST")}
    assert rows[b.ip][4] == "U", rows


def test_user_kick_goes_through_anvil(cluster):
    s = Imap(cluster["director"].ip)
    assert s.cmd("LOGIN alice %s" % PASSWORD)[-1].split()[1] == "OK"
    assert not s.closed_within(0.5)
    a = admin(cluster)
    assert a.cmd("USER-KICK\talice") == "OK"
    assert s.closed_within(10), "kicked session stayed open"
    s.close()
    assert "Failed to kick" not in cluster["director"].log()


def test_move_kicks_by_user_hash(cluster):
    # USER-MOVE kicks the user's sessions by user hash, which 2.4's login
    # processes no longer know: CONNECT-DUMP + KICK-USER through anvil. The
    # next login lands on the new host.
    a = admin(cluster)
    s = Imap(cluster["director"].ip)
    assert s.cmd("LOGIN bob %s" % PASSWORD)[-1].split()[1] == "OK"
    landed = backend_of(s.cmd('LIST "" "*"'))
    other = [b.ip for b in cluster["backends"] if b.ip != landed][0]
    assert a.cmd("USER-MOVE\tbob\t" + other) == "OK"
    assert s.closed_within(15), "session of the moved user stayed open"
    s.close()

    def moved():
        return a.cmd("USER-LOOKUP\tbob").split("\t")[0] == other
    wait_until(moved, 15, "bob on " + other)
    s = Imap(cluster["director"].ip)
    assert s.cmd("LOGIN bob %s" % PASSWORD)[-1].split()[1] == "OK"
    again = backend_of(s.cmd('LIST "" "*"'))
    s.cmd("LOGOUT")
    s.close()
    assert again == other
    log = cluster["director"].log()
    assert "Failed to kill" not in log and "CONNECT-DUMP" in log


def doveadm_director(cluster, *args):
    r = cluster["director"].doveadm("director", *args)
    assert "Module is for different ABI version" not in r.stderr
    return r


def test_doveadm_director_status_add_up_down_remove(cluster):
    b = cluster["backends"]
    r = doveadm_director(cluster, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["mail", "server", "ip", "tag", "vhosts", "state", "state",
                                "changed", "users"]
    assert sorted(l.split()[0] for l in lines[1:]) == sorted(x.ip for x in b)

    extra = b[0].ip.rsplit(".", 1)[0] + ".12"
    assert doveadm_director(cluster, "add", "-t", "blue", extra, "50").returncode == 0
    assert doveadm_director(cluster, "down", extra).returncode == 0
    row = [l.split() for l in doveadm_director(cluster, "status").stdout.splitlines()
           if l.startswith(extra + " ")][0]
    assert row[1:4] == ["blue", "50", "down"], row
    assert doveadm_director(cluster, "up", extra).returncode == 0
    assert doveadm_director(cluster, "update", extra, "7").returncode == 0
    row = [l.split() for l in doveadm_director(cluster, "status").stdout.splitlines()
           if l.startswith(extra + " ")][0]
    assert row[1:4] == ["blue", "7", "up"], row
    dump = doveadm_director(cluster, "dump").stdout
    assert "doveadm director add %s@blue 7" % extra in dump
    assert doveadm_director(cluster, "remove", extra).returncode == 0
    r = doveadm_director(cluster, "remove", extra)
    assert r.returncode == 68 and "doesn't exist" in r.stderr
    assert extra not in doveadm_director(cluster, "status").stdout


def test_doveadm_director_user_status_map_move_kick(cluster):
    b = cluster["backends"]
    s = Imap(cluster["director"].ip)
    assert s.cmd("LOGIN carol %s" % PASSWORD)[-1].split()[1] == "OK"
    landed = backend_of(s.cmd('LIST "" "*"'))
    r = doveadm_director(cluster, "status", "carol")
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert re.fullmatch(r"Current: %s \(expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)"
                        % re.escape(landed), first), r.stdout

    users = os.path.join(ROOT, "userlist")
    with open(users, "w") as f:
        f.write("alice\nbob\ncarol\n")
    r = doveadm_director(cluster, "map", "-f", users)
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:]}
    assert rows["carol"][2] == landed, r.stdout
    h = doveadm_director(cluster, "map", "-u", "carol").stdout.strip()
    assert h == rows["carol"][1]
    assert doveadm_director(cluster, "map", "-f", users, "-h", h).stdout.split() == ["carol"]
    # without -f the names come from the userdb, as on 2.3
    r = doveadm_director(cluster, "map")
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l.split() for l in r.stdout.splitlines()[1:]}
    assert rows["carol"][2] == landed, r.stdout

    other = [x.ip for x in b if x.ip != landed][0]
    assert doveadm_director(cluster, "move", "carol", other).returncode == 0
    assert s.closed_within(15), "moved user's session stayed open"
    s.close()
    wait_until(lambda: doveadm_director(cluster, "status", "carol").stdout.startswith(
        "Current: " + other), 15, "carol on " + other)

    s = Imap(cluster["director"].ip)
    assert s.cmd("LOGIN carol %s" % PASSWORD)[-1].split()[1] == "OK"
    assert backend_of(s.cmd('LIST "" "*"')) == other
    assert doveadm_director(cluster, "kick", "carol").returncode == 0
    assert s.closed_within(10), "kicked session stayed open"
    s.close()


def test_doveadm_director_ring_status(cluster):
    r = doveadm_director(cluster, "ring", "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("director ip")
    assert lines[1].split()[:3] == [cluster["director"].ip, "9090", "self"], lines


def children_named(ppid, comm):
    """pids of ppid's children whose command name is comm (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == ppid and name == comm:
            out.append(int(entry))
    return out


def test_kicks_survive_an_anvil_restart(cluster):
    """anvil is killed and restarted by the master; a later move of a user
    with an open session still kicks it (through the anvil-director
    listener, owned by the director's user, not root's anvil socket)."""
    d = cluster["director"]
    sock = os.path.join(d.dir, "run", "anvil-director")
    st = os.stat(sock)
    assert pwd.getpwuid(st.st_uid).pw_name == "dovecot" and st.st_mode & 0o777 == 0o600
    a = admin(cluster)
    # the director has a connection to the old anvil
    s = Imap(d.ip)
    assert s.cmd("LOGIN alice %s" % PASSWORD)[-1].split()[1] == "OK"
    assert a.cmd("USER-KICK\talice") == "OK"
    assert s.closed_within(10)
    s.close()

    old = children_named(d.pid, "anvil")
    assert len(old) == 1, old
    os.kill(old[0], signal.SIGKILL)
    new = wait_until(lambda: [p for p in children_named(d.pid, "anvil") if p != old[0]], 15,
                     "the master to restart anvil")
    assert len(new) == 1
    wait_until(lambda: "anvil disconnected" in d.log(), 10, "the director to see anvil go")

    s = Imap(d.ip)
    assert s.cmd("LOGIN bob %s" % PASSWORD)[-1].split()[1] == "OK"
    landed = backend_of(s.cmd('LIST "" "*"'))
    other = [b.ip for b in cluster["backends"] if b.ip != landed][0]
    r = doveadm_director(cluster, "move", "bob", other)
    assert r.returncode == 0, r.stderr
    assert s.closed_within(15), "the moved user's session stayed open after anvil restarted"
    s.close()
    director_log = "\n".join(l for l in d.log().splitlines() if " director: " in l)
    for bad in ("Permission denied", "Failed to kill", "Can't reach anvil"):
        assert bad not in director_log, director_log[-3000:]
    assert re.search(r"anvil: KICK-USER\tbob\t", director_log)
