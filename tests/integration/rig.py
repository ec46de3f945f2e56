#!/usr/bin/python3
"""Loopback cluster rig: real Dovecot backends and director proxies on 127.X.Y.Z.

Owns the temp dir, the per-instance configs and the masters it started; it
kills only the pids recorded in each instance's run/master.pid.  Every wait has
a deadline.  Facts checked against stock Dovecot 2.3 on loopback.

Library use (tests):
    c = Cluster(nbackends=3)
    d = c.add_director(bin=os.environ["DIRECTOR_BIN"])
    c.start()
    s = imap_login(d, "user1@example.com")
    c.stop()

Command line (demo.sh):
    rig.py demo up | status | stop
"""

import base64
import contextlib
import errno
import imaplib
import json
import os
import poplib
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

STOCK_DIRECTOR = "/usr/lib/dovecot/director"
DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
PASSWORD = "pass"
MAIL_UID = 65534
MAIL_GID = 65534
DOMAIN = "example.com"
RING_PORT = 9090
START_DEADLINE_SECS = 20.0
# The master itself waits up to 5 s for its children to exit after SIGTERM;
# a grace of its own as long as that SIGKILLed busy masters on a loaded
# machine and left their children running into the next start.
STOP_GRACE_SECS = 15.0
DIRECTOR_DEAD_RE = re.compile(
    r"service\(director\): .*(exited with status|killed with signal|command startup failed).*"
    r"|director: (Fatal|Panic): .*")
ANY_TEST_FAILED = False   # set by conftest.py: keep module-scoped clusters' logs
# Opt-in (tests/sanitize.sh): directors built with ASan+UBSan write their reports
# under <base_dir>/sanitizer; cleanup copies them and any sanitizer line of a
# director log into this directory, which must stay empty.
SANITIZER_DIR_ENV = "RIG_SANITIZER_DIR"
SANITIZER_LOG_RE = re.compile(r".*(Sanitizer|runtime error:|==[0-9]+==ERROR).*")


def director_bin():
    """The director under test (env DIRECTOR_BIN, default stock)."""
    return os.environ.get("DIRECTOR_BIN") or STOCK_DIRECTOR


def stock_director_bin():
    """The oracle director (env STOCK_DIRECTOR_BIN, default stock)."""
    return os.environ.get("STOCK_DIRECTOR_BIN") or STOCK_DIRECTOR


def user_name(i):
    return "user%d@%s" % (i, DOMAIN)


def wait_until(pred, deadline_secs, what, interval=0.05):
    """Poll pred() until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + deadline_secs
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (deadline_secs, what))
        time.sleep(interval)


_block_counter = [0]


def pick_block():
    """A 127.X.Y block for this run: derived from the pid plus a per-process
    counter, then checked to be free (nothing listening on .10 or .100)."""
    for _ in range(256):
        _block_counter[0] += 1
        n = (os.getpid() * 7 + _block_counter[0] * 131) % 62000 + 1000
        x, y = 100 + (n // 250) % 150, n % 250 + 2
        base = "127.%d.%d" % (x, y)
        if not (port_open(base + ".10", 143) or port_open(base + ".100", 143)
                or port_open(base + ".100", RING_PORT)):
            return base
    raise RuntimeError("no free 127.x.y block found")


def port_open(ip, port, timeout=0.2):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


class Instance:
    """One `dovecot -c` master: a backend or a director proxy."""

    def __init__(self, cluster, name, ip, kind):
        self.cluster = cluster
        self.name = name
        self.ip = ip
        self.kind = kind
        self.dir = os.path.join(cluster.dir, name)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.log = os.path.join(self.dir, "log", "dovecot.log")
        self.master_pid = None
        self.started = False
        self.start_log_offset = 0

    def path(self, rel):
        return os.path.join(self.base_dir, rel)

    def master_argv(self):
        """The command that starts this instance's master."""
        return [DOVECOT, "-c", self.conf]

    def doveadm_argv(self):
        """doveadm for this instance, without the command."""
        return [DOVEADM, "-c", self.conf]

    def doveadm_arg(self, arg):
        """A doveadm argument as this instance's doveadm sees it (paths)."""
        return arg

    def read_log(self):
        return self.log_since(0)

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        """The instance's log from byte offset `offset` on ("" before it exists)."""
        try:
            with open(self.log, "r", errors="replace") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, regex, offset=0, deadline_secs=10.0):
        """Wait until the log (from byte offset) matches regex; returns the match."""
        rx = re.compile(regex, re.M)

        def check():
            if not os.path.exists(self.log):
                return None
            return rx.search(self.log_since(offset))
        return wait_until(check, deadline_secs, "log of %s to match %r" % (self.name, regex))

    def service_pid(self, service):
        """Pid of a running child process of this master by its process title
        prefix (e.g. 'dovecot/director'); None if not found."""
        if not self.master_pid:
            return None
        for pid in child_processes(self.master_pid):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith(service) or ("/" + service.split("/")[-1]) in cmd.split(" ")[0]:
                return pid
        return None

    def director_pid(self):
        return self.service_pid("dovecot/director")


class Backend(Instance):
    def __init__(self, cluster, name, ip, tag):
        super().__init__(cluster, name, ip, "backend")
        self.tag = tag                    # director tag in director_mail_servers
        self.cap = "B" + name[1:]         # IMAP capability XRIG-B<n> names this backend
        self.home = os.path.join(self.dir, "home")

    def write_config(self):
        c = self.cluster
        passwd = os.path.join(self.dir, "passwd")
        with open(passwd, "w") as f:
            for u in c.users:
                f.write("%s:{PLAIN}%s:%d:%d::%s/%s::\n" % (u, PASSWORD, MAIL_UID, MAIL_GID,
                                                          self.home, u))
        os.chmod(passwd, 0o644)
        reuse = c.backend_reuse
        conf = """# rig backend %(name)s
instance_name = %(inst)s
base_dir = %(base)s
state_dir = %(state)s
listen = %(ip)s
protocols = imap pop3 lmtp
ssl = no
disable_plaintext_auth = no
log_path = %(log)s
mail_location = maildir:~/Maildir
first_valid_uid = %(uid)d
login_trusted_networks = 127.0.0.0/8
imap_capability = +XRIG-%(cap)s
passdb {
  driver = passwd-file
  args = %(passwd)s
}
userdb {
  driver = passwd-file
  args = %(passwd)s
}
service auth {
  client_limit = 4096
}
service imap-login {
  service_count = 0
  process_min_avail = 1
}
service pop3-login {
  service_count = 0
  process_min_avail = 1
}
service imap {
%(reuse)s}
service pop3 {
%(reuse)s}
service lmtp {
  inet_listener lmtp {
    port = 24
  }
}
""" % dict(name=self.name, inst=c.instance_prefix + self.name, base=self.base_dir,
           state=self.state_dir, ip=self.ip, log=self.log, uid=MAIL_UID, cap=self.cap,
           passwd=passwd,
           reuse="  service_count = 0\n  process_min_avail = 2\n" if reuse else "")
        with open(self.conf, "w") as f:
            f.write(conf)

    def maildir_count(self, user):
        """Messages in the user's INBOX on this backend (new + cur)."""
        n = 0
        for sub in ("new", "cur"):
            d = os.path.join(self.home, user, "Maildir", sub)
            with contextlib.suppress(FileNotFoundError):
                n += len([x for x in os.listdir(d) if not x.startswith(".")])
        return n

    def login_count(self, user):
        """Successful logins of user on this backend, from its log."""
        return len(re.findall(r"-login: (?:Info: )?Login: user=<%s>" % re.escape(user),
                              self.read_log()))


class Director(Instance):
    def __init__(self, cluster, name, ip, bin, servers, mail_servers, user_expire, extra_conf,
                 tag_users):
        super().__init__(cluster, name, ip, "director")
        self.bin = bin
        self.servers = servers
        self.mail_servers = mail_servers
        self.user_expire = user_expire
        self.extra_conf = extra_conf
        self.tag_users = dict(tag_users or {})

    def write_config(self):
        c = self.cluster
        if self.servers == "self":
            servers = "%s:%d" % (self.ip, RING_PORT)
        else:
            servers = self.servers or ""
        if self.mail_servers is None:
            mail = " ".join(b.ip + ("@" + b.tag if b.tag and c.tag_backends else "")
                            for b in c.backends)
        else:
            mail = self.mail_servers
        passdb_extra = os.path.join(self.dir, "passdb-extra")
        with open(passdb_extra, "w") as f:
            for u, tag in sorted(self.tag_users.items()):
                f.write("%s::::::: nopassword=y proxy=y director_tag=%s\n" % (u, tag))
        os.chmod(passdb_extra, 0o644)
        global_extra, service_extra = self.sanitizer_conf()
        conf = """# rig director %(name)s
instance_name = %(inst)s
base_dir = %(base)s
state_dir = %(state)s
listen = %(ip)s
protocols = imap pop3 lmtp
ssl = no
disable_plaintext_auth = no
log_path = %(log)s
director_servers = %(servers)s
director_mail_servers = %(mail)s
director_user_expire = %(expire)s
lmtp_proxy = yes
%(global_extra)sprotocol lmtp {
  auth_socket_path = director-userdb
}
passdb {
  driver = passwd-file
  args = %(passdb_extra)s
}
passdb {
  driver = static
  args = nopassword=y proxy=y
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(gid)d home=/nonexistent allow_all_users=yes
}
service director {
  executable = %(bin)s
  unix_listener login/director {
    mode = 0666
  }
  fifo_listener login/proxy-notify {
    mode = 0666
  }
  unix_listener director-userdb {
    mode = 0600
  }
  unix_listener director-admin {
    mode = 0600
  }
  inet_listener director {
    address = %(ip)s
    port = %(ring_port)d
  }
%(service_extra)s}
service imap-login {
  executable = imap-login director
  service_count = 0
  process_min_avail = 1
}
service pop3-login {
  executable = pop3-login director
  service_count = 0
  process_min_avail = 1
}
service auth {
  client_limit = 4096
}
service lmtp {
  inet_listener lmtp {
    port = 24
  }
}
%(extra)s
""" % dict(name=self.name, inst=c.instance_prefix + self.name, base=self.base_dir,
           state=self.state_dir, ip=self.ip, log=self.log, servers=servers, mail=mail,
           expire=self.user_expire, passdb_extra=passdb_extra, uid=MAIL_UID, gid=MAIL_GID,
           bin=self.bin, ring_port=RING_PORT, extra=self.extra_conf or "",
           global_extra=global_extra, service_extra=service_extra)
        with open(self.conf, "w") as f:
            f.write(conf)

    def doveadm(self, *args, timeout=30):
        return doveadm(self, *args, timeout=timeout)

    def sanitizer_conf(self):
        """(global, service director) config lines for a sanitizer build, or
        ("", "") unless RIG_SANITIZER_DIR is set.  The master passes only
        import_environment to its children.  The director is chrooted to base_dir
        with cwd there, so the report path is relative; its directory must be
        writable after the privilege drop.  ASan reserves terabytes of shadow
        memory: vsz_limit = 0.  No LeakSanitizer: the process is not dumpable
        after dropping privileges, so LSan cannot run at exit."""
        if not os.environ.get(SANITIZER_DIR_ENV):
            return "", ""
        os.makedirs(self.sanitizer_dir(), exist_ok=True)
        os.chmod(self.sanitizer_dir(), 0o1777)
        # One log_path for both (it is a common flag: the last one parsed wins).
        # No symbolizer inside the chroot: tests/sanitize.sh symbolizes.
        common = "halt_on_error=1:symbolize=0:log_path=sanitizer/report"
        asan = "detect_leaks=0:" + common
        ubsan = "print_stacktrace=1:" + common
        env = ("import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS NOTIFY_SOCKET"
               " ASAN_OPTIONS=%s UBSAN_OPTIONS=%s\n")
        return env % (asan, ubsan), "  vsz_limit = 0\n"

    def sanitizer_dir(self):
        return self.path("sanitizer")

    def collect_sanitizer_reports(self, dest, label):
        """Copy report files and sanitizer lines of the logs to dest as
        <label>.<director>.*; returns how many were found."""
        found = 0
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(self.sanitizer_dir())):
                shutil.copy(os.path.join(self.sanitizer_dir(), name),
                            os.path.join(dest, "%s.%s.%s" % (label, self.name, name)))
                found += 1
        errlog = os.path.join(self.dir, "log", "master-stderr.log")
        lines = []
        for path in (self.log, errlog):
            with contextlib.suppress(FileNotFoundError):
                with open(path, "r", errors="replace") as f:
                    lines += [m.group(0) for m in SANITIZER_LOG_RE.finditer(f.read())]
        if lines:
            with open(os.path.join(dest, "%s.%s.log-lines" % (label, self.name)), "w") as f:
                f.write("\n".join(lines) + "\n")
            found += 1
        return found


class Director24(Director):
    """Our director under Dovecot 2.4.1, run from the Debian 13 chroot of
    tests/dovecot24 ($DD_CHROOT, with the director installed there). The
    cluster's directory must be inside the chroot (CHAOS_TMPDIR): the host
    reads logs and sockets through the same files. `bin` is ignored."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.chroot = os.environ.get("DD_CHROOT", "/tmp/dd-trixie").rstrip("/")
        if not self.dir.startswith(self.chroot + "/"):
            raise RuntimeError("a 2.4 director needs its cluster inside %s, not %s"
                               % (self.chroot, self.dir))

    def inner(self, path):
        return path[len(self.chroot):]

    def master_argv(self):
        return ["chroot", self.chroot, "dovecot", "-c", self.inner(self.conf)]

    def doveadm_argv(self):
        return ["chroot", self.chroot, "doveadm", "-c", self.inner(self.conf)]

    def doveadm_arg(self, arg):
        return self.inner(arg) if arg.startswith(self.chroot + "/") else arg

    def write_config(self):
        c = self.cluster
        servers = ("%s:%d" % (self.ip, RING_PORT) if self.servers == "self"
                   else self.servers or "")
        mail = (" ".join(b.ip for b in c.backends) if self.mail_servers is None
                else self.mail_servers)
        conf = """dovecot_config_version = 2.4.1
dovecot_storage_version = 2.4.1
# rig director %(name)s (Dovecot 2.4)
instance_name = %(inst)s
base_dir = %(base)s
state_dir = %(state)s
listen = %(ip)s
protocols = imap pop3 lmtp
ssl = no
auth_allow_cleartext = yes
log_path = %(log)s
director_servers = %(servers)s
director_mail_servers = %(mail)s
director_user_expire = %(expire)s
login_socket_path = director
lmtp_proxy = yes
protocol lmtp {
  auth_socket_path = director-userdb
}
passdb static {
  password = %(password)s
  fields {
    proxy = y
    pass = %(password)s
  }
}
service director {
  unix_listener login/director {
    mode = 0666
  }
  fifo_listener login/proxy-notify {
    mode = 0666
  }
  inet_listener director {
    port = %(ring_port)d
  }
}
service imap-login {
  restart_request_count = unlimited
  client_limit = 1000
  process_min_avail = 1
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  restart_request_count = unlimited
  client_limit = 1000
  process_min_avail = 1
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    port = 24
  }
}
%(extra)s
""" % dict(name=self.name, inst=c.instance_prefix + self.name,
           base=self.inner(self.base_dir), state=self.inner(self.state_dir), ip=self.ip,
           log=self.inner(self.log), servers=servers, mail=mail, expire=self.user_expire,
           password=PASSWORD, ring_port=RING_PORT, extra=self.extra_conf or "")
        with open(self.conf, "w") as f:
            f.write(conf)


class Cluster:
    """N backends (127.X.Y.10+) and directors (127.X.Y.100+), one temp dir."""

    def __init__(self, nbackends=3, nusers=300, tags=None, backend_reuse=True,
                 keep=False, base=None, tmp_root=None):
        self.base = base or pick_block()
        self.dir = tempfile.mkdtemp(prefix="director-rig.", dir=tmp_root)
        os.chmod(self.dir, 0o755)
        self.instance_prefix = "rig%d-%s-" % (os.getpid(), self.base.replace("127.", "").replace(".", "-"))
        self.users = [user_name(i) for i in range(1, nusers + 1)]
        self.backend_reuse = backend_reuse
        self.keep = keep
        self.failed = False
        tags = tags or [None] * nbackends
        self.tag_backends = any(tags)
        self.backends = [Backend(self, "b%d" % i, "%s.%d" % (self.base, 10 + i), tags[i] or "")
                         for i in range(nbackends)]
        self.directors = []
        users_file = os.path.join(self.dir, "users")
        with open(users_file, "w") as f:
            f.write("\n".join(self.users) + "\n")
        os.chmod(users_file, 0o644)
        self.users_file = users_file

    def add_director(self, bin=None, servers="", mail_servers=None, user_expire="15 min",
                     extra_conf="", tag_users=None, ip_suffix=None, cls=None):
        n = len(self.directors)
        ip = "%s.%d" % (self.base, ip_suffix if ip_suffix is not None else 100 + n)
        d = (cls or Director)(self, "d%d" % n, ip, bin or director_bin(), servers,
                              mail_servers, user_expire, extra_conf, tag_users)
        self.directors.append(d)
        return d

    def backend_by_ip(self, ip):
        for b in self.backends:
            if b.ip == ip:
                return b
        return None

    def instances(self):
        return self.backends + self.directors

    def start(self, only=None):
        """Start instances (all not yet started, or the given list) and wait
        until each one is serving."""
        todo = [i for i in (only or self.instances()) if not i.started]
        for inst in todo:
            for sub in ("log", "state"):
                os.makedirs(os.path.join(inst.dir, sub), exist_ok=True)
            os.chmod(inst.dir, 0o755)
            if isinstance(inst, Backend):
                os.makedirs(inst.home, exist_ok=True)
                os.chown(inst.home, MAIL_UID, MAIL_GID)
            inst.write_config()
            # a restarted instance appends to its old log: readiness checks
            # look only at what this start writes
            inst.start_log_offset = inst.log_size()
            errlog = os.path.join(inst.dir, "log", "master-stderr.log")
            with open(errlog, "ab") as err, open(os.devnull, "rb") as devnull:
                rc = subprocess.call(inst.master_argv(), stdin=devnull,
                                     stdout=subprocess.DEVNULL, stderr=err,
                                     timeout=START_DEADLINE_SECS)
            if rc != 0:
                self.failed = True
                raise RuntimeError("dovecot -c %s exited %d: %s" % (
                    inst.conf, rc, open(errlog).read()[-2000:]))
            inst.started = True
        try:
            for inst in todo:
                self._wait_ready(inst)
        except BaseException:
            self.failed = True
            raise

    def _wait_ready(self, inst):
        pidfile = os.path.join(inst.base_dir, "master.pid")

        def pid():
            with contextlib.suppress(OSError, ValueError):
                with open(pidfile) as f:
                    return int(f.read().strip())
            return None
        inst.master_pid = wait_until(pid, START_DEADLINE_SECS, "%s master.pid" % inst.name)
        wait_until(lambda: port_open(inst.ip, 143), START_DEADLINE_SECS,
                   "%s imap listener" % inst.name)
        if isinstance(inst, Director):
            wait_until(lambda: os.path.exists(inst.path("director-admin")), START_DEADLINE_SECS,
                       "%s director-admin" % inst.name)
            # the director process itself must be up and answering
            def answers():
                m = DIRECTOR_DEAD_RE.search(inst.log_since(inst.start_log_offset))
                if m:
                    self.failed = True
                    raise RuntimeError("%s: director process failed: %s (log %s)"
                                       % (inst.name, m.group(0), inst.log))
                rc, out, _ = doveadm(inst, "director", "ring", "status", timeout=10)
                return rc == 0 and "ring synced" in out
            wait_until(answers, START_DEADLINE_SECS, "%s director ring synced" % inst.name,
                       interval=0.2)
        else:
            wait_until(lambda: port_open(inst.ip, 24), START_DEADLINE_SECS,
                       "%s lmtp listener" % inst.name)

    def stop(self, only=None):
        """SIGTERM each recorded master pid, SIGKILL after STOP_GRACE_SECS."""
        todo = [i for i in (only or self.instances()) if i.started]
        for inst in todo:
            if not inst.master_pid:   # start() failed before _wait_ready read it
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(inst.base_dir, "master.pid")) as f:
                        inst.master_pid = int(f.read().strip())
        todo = [i for i in todo if i.master_pid]
        for inst in todo:
            with contextlib.suppress(ProcessLookupError):
                os.kill(inst.master_pid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_SECS
        for inst in todo:
            while pid_alive(inst.master_pid) and time.monotonic() < end:
                time.sleep(0.05)
            if pid_alive(inst.master_pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(inst.master_pid, signal.SIGKILL)
                wait_until(lambda: not pid_alive(inst.master_pid), 10,
                           "%s master %d to die" % (inst.name, inst.master_pid))
            # A SIGKILLed master's pid file stays, and "dovecot -c" refuses to
            # start while the pid in it exists, a zombie included.
            pidfile = os.path.join(inst.base_dir, "master.pid")
            with contextlib.suppress(OSError, ValueError):
                with open(pidfile) as f:
                    if int(f.read().strip()) == inst.master_pid:
                        os.unlink(pidfile)
            # The master exits after waiting 5 s for its children, and a
            # SIGKILLed one waits not at all: a child still running (one
            # started during the shutdown, a director still writing its state
            # file) must not outlive this instance into its next start.
            while instance_pids(inst) and time.monotonic() < end:
                time.sleep(0.05)
            for pid in instance_pids(inst):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not instance_pids(inst), 10, "%s processes gone" % inst.name)
            inst.started = False
            inst.master_pid = None

    def cleanup(self):
        """Stop everything; remove the temp dir unless a test failed (or keep)."""
        self.stop()
        self.collect_sanitizer_reports()
        if self.failed or self.keep:
            sys.stderr.write("rig: logs kept in %s\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def collect_sanitizer_reports(self):
        """With RIG_SANITIZER_DIR set: copy every director's sanitizer output
        there, named after the running test, and keep the logs if any."""
        dest = os.environ.get(SANITIZER_DIR_ENV)
        if not dest:
            return
        os.makedirs(dest, exist_ok=True)
        test = os.environ.get("PYTEST_CURRENT_TEST", "rig").split(" ")[0]
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", test) + "." + os.path.basename(self.dir)
        if sum(d.collect_sanitizer_reports(dest, label) for d in self.directors):
            sys.stderr.write("rig: sanitizer reports of %s copied to %s\n" % (self.dir, dest))
            self.failed = True

    # --- which backend served whom ----------------------------------------

    def login_counts(self, user):
        return {b.ip: b.login_count(user) for b in self.backends}

    def maildir_counts(self, user):
        return {b.ip: b.maildir_count(user) for b in self.backends}


def child_processes(ppid):
    """Pids of the live (non-zombie) children of ppid."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open("/proc/%s/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == ppid and fields[0] != "Z":
                found.append(int(p))
    return found


def instance_pids(inst):
    """Pids of the live processes of one instance: Dovecot's children title
    themselves "dovecot-<instance_name>/<service>"."""
    prefix = ("dovecot-%s%s/" % (inst.cluster.instance_prefix, inst.name)).encode()
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open("/proc/%s/cmdline" % p, "rb") as f:
                if f.read().startswith(prefix) and pid_alive(int(p)):
                    found.append(int(p))
    return found


def instance_pipes(inst):
    """For diagnosing lost log lines: {pid: (process title, its stderr)} of
    one instance's processes, and for its log process the pipes it reads
    ("fd:pipe:[inode]"; a process's stderr should be one of them)."""
    found = {}
    for pid in instance_pids(inst):
        with contextlib.suppress(OSError):
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace")
            if title.endswith("/log"):
                fds = sorted(os.listdir("/proc/%d/fd" % pid), key=int)
                links = []
                for fd in fds:
                    with contextlib.suppress(OSError):
                        links.append("%s:%s" % (fd, os.readlink("/proc/%d/fd/%s" % (pid, fd))))
                found[pid] = (title, " ".join(x for x in links if ":pipe:" in x))
            else:
                found[pid] = (title, os.readlink("/proc/%d/fd/2" % pid))
    return found


def pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    with contextlib.suppress(OSError):
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    return True


# --- doveadm -----------------------------------------------------------------

def doveadm(inst, *args, timeout=30):
    """Run `doveadm -c <conf> args...` -> (rc, stdout, stderr)."""
    p = subprocess.run(inst.doveadm_argv() + [inst.doveadm_arg(str(a)) for a in args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def current_host(d, user, tag=None):
    """The 'Current:' IP of `doveadm director status user`, or None for n/a."""
    args = ["director", "status", "--", user] + ([tag] if tag else [])
    rc, out, err = doveadm(d, *args)
    if rc != 0:
        raise RuntimeError("doveadm status failed %d: %s" % (rc, err))
    m = re.search(r"^Current: (\S+)", out, re.M)
    if not m or m.group(1) == "n/a":
        return None
    return m.group(1)


def status_fields(d, user, tag=None):
    args = ["director", "status", "--", user] + ([tag] if tag else [])
    rc, out, err = doveadm(d, *args)
    res = {}
    for line in out.splitlines():
        k, _, v = line.partition(":")
        res[k.strip()] = v.strip()
    return res


def host_table(d):
    """doveadm director status -> {ip: {tag, vhosts, state, users}}"""
    rc, out, err = doveadm(d, "-f", "tab", "director", "status")
    if rc != 0:
        raise RuntimeError("doveadm director status failed: %s" % err)
    lines = out.splitlines()
    res = {}
    for line in lines[1:]:
        f = line.split("\t")
        if len(f) >= 6:
            res[f[0]] = dict(tag=f[1], vhosts=int(f[2]), state=f[3], users=int(f[5]))
    return res


# --- client sessions -----------------------------------------------------------

def imap_login(inst, user, pw=PASSWORD, timeout=10):
    """IMAP LOGIN through inst; returns the imaplib session (raises on failure)."""
    s = imaplib.IMAP4(inst.ip, 143, timeout=timeout)
    s.login(user, pw)
    return s


def imap_backend(session, cluster):
    """Which backend a logged-in IMAP session is proxied to (by the XRIG-Bn
    capability each backend advertises)."""
    typ, data = session.capability()
    caps = b" ".join(data).decode()
    m = re.search(r"XRIG-B(\d+)", caps)
    if not m:
        raise RuntimeError("no XRIG capability in %r" % caps)
    return cluster.backends[int(m.group(1))]


def imap_roundtrip(inst, user, pw=PASSWORD):
    """LOGIN, SELECT INBOX, LOGOUT; returns (backend ip, message count)."""
    s = imap_login(inst, user, pw)
    try:
        b = imap_backend(s, inst.cluster)
        typ, data = s.select("INBOX")
        if typ != "OK":
            raise RuntimeError("SELECT failed: %r" % data)
        return b.ip, int(data[0])
    finally:
        with contextlib.suppress(Exception):
            s.logout()


def pop3_roundtrip(inst, user, pw=PASSWORD, timeout=10):
    """USER/PASS, STAT, QUIT through inst; returns the message count."""
    p = poplib.POP3(inst.ip, 110, timeout=timeout)
    try:
        p.user(user)
        p.pass_(pw)
        count, _ = p.stat()
        return count
    finally:
        with contextlib.suppress(Exception):
            p.quit()


def lmtp_deliver(inst, rcpt, subject="rig test", sender="sender@example.org", timeout=15):
    """Deliver one message via LMTP on inst:24; raises on refusal."""
    msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s.%s@rig>\r\n\r\nhello\r\n"
           % (sender, rcpt, subject, time.time(), os.getpid()))
    with smtplib.LMTP(inst.ip, 24, timeout=timeout) as l:
        refused = l.sendmail(sender, [rcpt], msg)
        if refused:
            raise RuntimeError("LMTP refused: %r" % refused)


# --- raw sockets -------------------------------------------------------------

class LineSocket:
    """A blocking unix/TCP line socket with deadlines on every read."""

    def __init__(self, sock, timeout=5.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    @classmethod
    def unix(cls, path, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s, timeout)

    @classmethod
    def tcp(cls, ip, port, timeout=5.0):
        return cls(socket.create_connection((ip, port), timeout=timeout), timeout)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def send_line(self, line):
        self.send((line if isinstance(line, bytes) else line.encode()) + b"\n")

    def read_line(self):
        """Next line (str, without LF); None on EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(errors="replace")

    def read_until_closed(self, deadline_secs=5.0):
        """Read everything until EOF; returns (lines, closed: bool)."""
        end = time.monotonic() + deadline_secs
        lines = []
        while time.monotonic() < end:
            try:
                line = self.read_line()
            except socket.timeout:
                continue
            except ConnectionResetError:
                return lines, True
            if line is None:
                return lines, True
            lines.append(line)
        return lines, False

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def admin_socket(d, timeout=5.0):
    """Connected director-admin socket after the VERSION exchange."""
    s = LineSocket.unix(d.path("director-admin"), timeout)
    s.send_line("VERSION\tdirector-doveadm\t1\t0")
    v = s.read_line()
    if not v or not v.startswith("VERSION\tdirector-doveadm\t1\t"):
        raise RuntimeError("bad admin handshake: %r" % v)
    return s


def userdb_socket(d, timeout=5.0):
    return LineSocket.unix(d.path("director-userdb"), timeout)


def login_socket(d, timeout=5.0):
    return LineSocket.unix(d.path("login/director"), timeout)


def auth_client_handshake(sock, cpid):
    """The login side of the auth-client handshake on a login/director or
    auth-login socket; returns after auth's DONE. auth refuses a CPID that
    another connection uses."""
    sock.send("VERSION\t1\t2\nCPID\t%d\n" % cpid)
    for _ in range(100):
        line = sock.read_line()
        if line is None:
            raise RuntimeError("auth closed during the handshake")
        if line == "DONE":
            return
    raise RuntimeError("no DONE in auth's handshake")


def auth_plain(user, password=PASSWORD):
    """SASL PLAIN's initial response for an AUTH line's resp=."""
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def notify_fifo_write(d, data):
    """Write raw bytes to the login/proxy-notify FIFO (non-blocking open with a
    deadline: a FIFO without a reader would block)."""
    path = d.path("login/proxy-notify")
    end = time.monotonic() + 5
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > end:
                raise
            time.sleep(0.05)
    try:
        os.set_blocking(fd, True)
        os.write(fd, data)
    finally:
        os.close(fd)


# --- command line (demo) -----------------------------------------------------

def _state_file():
    return os.path.join(tempfile.gettempdir(), "director-rig-demo.%d.json" % os.getuid())


def _demo(argv):
    cmd = argv[0] if argv else "up"
    sf = _state_file()
    if cmd == "up":
        if os.path.exists(sf):
            sys.exit("a demo is already running (%s); stop it first" % sf)
        c = Cluster(nbackends=3, nusers=20, keep=True)
        d = c.add_director(bin=director_bin())
        try:
            c.start()
        except Exception:
            c.failed = True
            c.cleanup()
            raise
        with open(sf, "w") as f:
            json.dump({"dir": c.dir, "pids": [i.master_pid for i in c.instances()],
                       "director_conf": d.conf, "director_ip": d.ip,
                       "backends": [b.ip for b in c.backends]}, f)
        print("rig: 3 backends %s, director %s (binary %s)"
              % (" ".join(b.ip for b in c.backends), d.ip, d.bin))
        print("rig: files and logs in %s" % c.dir)
        user = c.users[0]
        lmtp_deliver(d, user, subject="demo")
        print("rig: LMTP delivery to %s via %s:24: accepted" % (user, d.ip))
        s = imaplib.IMAP4(d.ip, 143, timeout=10)
        print("rig: IMAP greeting: %s" % s.welcome.decode(errors="replace"))
        typ, data = s.login(user, PASSWORD)
        print("rig: IMAP LOGIN %s: %s %s" % (user, typ, data[0].decode(errors="replace")))
        backend = imap_backend(s, c)
        typ, data = s.select("INBOX")
        print("rig: IMAP SELECT INBOX: %s, %s message(s) (served by backend %s)"
              % (typ, data[0].decode(), backend.ip))
        typ, data = s.logout()
        print("rig: IMAP LOGOUT: %s" % typ)
        for args in (["director", "status"], ["director", "status", user]):
            rc, out, err = doveadm(d, *args)
            print("\n$ doveadm -c %s %s\n%s%s" % (d.conf, " ".join(args), out, err))
    elif cmd == "status":
        with open(sf) as f:
            st = json.load(f)
        subprocess.call([DOVEADM, "-c", st["director_conf"], "director", "status"])
    elif cmd in ("stop", "down"):
        if not os.path.exists(sf):
            print("rig: no demo running")
            return
        with open(sf) as f:
            st = json.load(f)
        for pid in st["pids"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE_SECS
        for pid in st["pids"]:
            while pid_alive(pid) and time.monotonic() < end:
                time.sleep(0.05)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        os.unlink(sf)
        print("rig: stopped; logs kept in %s" % st["dir"])
    else:
        sys.exit("usage: rig.py demo up|status|stop")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "demo":
        _demo(sys.argv[2:])
    else:
        sys.exit("usage: rig.py demo up|status|stop")
