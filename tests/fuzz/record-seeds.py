#!/usr/bin/python3
"""Records what stock 2.3 directors read on loopback and turns it into seed inputs:
ring traffic for fuzz-ring-director and login/proxy-notify lines for
fuzz-proxy-notify (tests/fuzz/corpus/<target>/).

ring: three stock directors (tests/integration/ringrig.py) run a scenario: d1's
director is killed and restarted under strace (both of its handshakes), then users
are moved and log in through d0 and d2, hosts are added, changed, taken down and
up, flushed and removed, a user is kicked, and d0's director is killed so that it
rejoins. strace records every read() of d1's director on its ring sockets. Each
recorded connection becomes a fuzz connection: d1 sits between d0 (its left,
connecting in) and d2 (its right, connected out), which is the fuzz target's
127.0.0.2 between 127.0.0.1 and 127.0.0.3; the rig's addresses and the recording's
clock are mapped accordingly.

proxy-notify: a standalone stock director with director_user_expire = 20 s (so
logins refresh every few seconds); two IMAP sessions stay open for 12 s while
strace records the director's reads on the FIFO. The seed looks each user up
first (a 0x01 line) and then replays the recorded stream.

Needs root, strace and the Dovecot packages. Run from anywhere:
    tests/fuzz/record-seeds.py [corpus dir, default tests/fuzz/corpus]
"""

import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import rig  # noqa: E402
import ringrig  # noqa: E402

T0 = 1700000000            # the fuzz target's clock at start
OP_CONNECTED = 1           # ops of fuzz-ring-director.cc (Harness::op)
OP_PEER_CLOSES = 2
OP_RAW_LINE = 3
OP_ACCEPT = 0
OP_TICK = 9
READ_RE = re.compile(r'^(?:\d+ +)?(\d+\.\d+) read\((\d+)<TCP:\[([0-9.]+):(\d+)->([0-9.]+):(\d+)\]>, '
                     r'"((?:[^"\\]|\\.)*)"(?:\.\.\.)?, \d+\) = (-?\d+)')


def scenario(ring):
    c = ring.c
    d0, d1, d2 = ring.directors
    ips = [b.ip for b in c.backends]
    ringrig.populate(d0, c.users[:30], ips)
    for i, u in enumerate(c.users[30:40]):
        s = rig.imap_login(d0 if i % 2 else d2, u)
        s.logout()
    extra = "%s.13" % c.base
    rig.doveadm(d0, "director", "add", extra, "50")
    rig.doveadm(d2, "director", "update", ips[0], "10")
    rig.doveadm(d0, "director", "down", ips[1])
    rig.doveadm(d2, "director", "up", ips[1])
    rig.doveadm(d0, "director", "move", c.users[0], ips[2])
    rig.doveadm(d2, "director", "kick", c.users[1])
    rig.doveadm(d0, "director", "flush", ips[0])
    rig.doveadm(d2, "director", "remove", extra)
    time.sleep(2)
    pid = d0.director_pid()
    os.kill(pid, signal.SIGKILL)
    ringrig.wait_new_director_pid(d0, pid, deadline_secs=30)
    ring.wait_formed(deadline_secs=60)
    for u in c.users[40:45]:
        rig.imap_login(d2, u).logout()
    time.sleep(3)


def unhex(text):
    return bytes.fromhex(text.replace("\\x", ""))


def record_notify(out_dir):
    c = rig.Cluster(nbackends=2, nusers=20)
    d = c.add_director(bin=rig.stock_director_bin(), user_expire="20 secs")
    trace = os.path.join(c.dir, "d.strace")
    try:
        c.start()
        st = subprocess.Popen(["strace", "-f", "-p", str(d.master_pid), "-yy", "-xx",
                               "-s", "100000", "-e", "trace=read", "-o", trace])
        time.sleep(1)
        pid = d.director_pid()
        os.kill(pid, signal.SIGKILL)  # the new director process is traced
        time.sleep(1)
        sessions = [rig.imap_login(d, u) for u in (c.users[0], "User2@Example.COM")]
        time.sleep(12)
        for s in sessions:
            s.logout()
        st.send_signal(signal.SIGINT)
        st.wait(timeout=10)
        stream = b""
        with open(trace) as f:
            for line in f:
                m = re.search(r'read\(\d+<((?:\\x[0-9a-f]{2})+)>, "((?:\\x[0-9a-f]{2})*)"', line)
                if m and unhex(m.group(1)).endswith(b"/login/proxy-notify"):
                    stream += unhex(m.group(2))
    finally:
        c.cleanup()
    users = sorted(set(l for l in stream.split(b"\n") if l))
    out = bytes([0]) + b"".join(b"\x01" + u + b"\n" for u in users) + stream
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "stock-notify"), "wb") as f:
        f.write(out)
    print("%d proxy-notify bytes, users %s, seed in %s" % (len(stream), users, out_dir))


def record(out_dir):
    c = rig.Cluster(nbackends=3, nusers=50)
    ring = ringrig.Ring(c, ("stock", "stock", "stock"))
    trace = os.path.join(c.dir, "d1.strace")
    try:
        ring.start()
        # Follow d1's master, then kill its director: the new director
        # process (forked by the master) is traced from its first handshake.
        d1 = ring.directors[1]
        st = subprocess.Popen(["strace", "-f", "-p", str(d1.master_pid), "-yy", "-ttt", "-xx",
                               "-s", "1000000", "-e", "trace=read", "-o", trace])
        time.sleep(1)
        pid = d1.director_pid()
        os.kill(pid, signal.SIGKILL)
        ringrig.wait_new_director_pid(d1, pid, deadline_secs=30)
        ring.wait_formed(deadline_secs=60)
        scenario(ring)
        st.send_signal(signal.SIGINT)
        st.wait(timeout=10)
        with open(trace) as f:
            reads = parse(f, c.base)
    finally:
        c.cleanup()
    os.makedirs(out_dir, exist_ok=True)
    seeds = make_seeds(reads, c.base)
    for name, data in seeds.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    print("%d reads, %d seeds in %s" % (len(reads), len(seeds), out_dir))


def parse(lines, base):
    """[(secs, conn key, incoming, data)] of d1's ring reads; data b"" = EOF."""
    mine = base + ".101"
    reads = []
    for line in lines:
        m = READ_RE.match(line)
        if not m:
            continue
        secs, fd, lip, lport, rip, rport, data, rc = m.groups()
        if lip != mine or (lport != str(rig.RING_PORT) and rport != str(rig.RING_PORT)):
            continue
        if int(rc) < 0:
            continue
        secs = float(secs)
        raw = bytes.fromhex(data.replace("\\x", "")) if int(rc) > 0 else b""
        incoming = lport == str(rig.RING_PORT)
        reads.append((secs, (fd, rip, rport), incoming, raw))
    return reads


def rewrite(line, base, clock0):
    """Rig addresses and wall-clock times to the fuzz target's."""
    b = re.escape(base)
    line = re.sub(rb"\b" + b.encode() + rb"\.10([0-2])\b",
                  lambda m: b"127.0.0.%d" % (int(m.group(1)) + 1), line)
    line = re.sub(rb"\b" + b.encode() + rb"\.1([0-3])\b",
                  lambda m: b"10.0.0.%d" % (int(m.group(1)) + 1), line)
    line = re.sub(rb"\b" + b.encode() + rb"\.\d+\b", b"10.0.0.99", line)
    # Times are within a day of the recording; other numbers (user hashes) stay.
    line = re.sub(rb"\b(\d{10})\b",
                  lambda m: b"%d" % (T0 + int(m.group(1)) - clock0)
                  if abs(int(m.group(1)) - clock0) < 86400 else m.group(1), line)
    return line.replace(b"\t9377", b"\t9090")


def make_seeds(reads, base):
    """One seed per connection and one with all of them, in recorded order."""
    clock0 = int(reads[0][0]) if reads else 0
    conns = []
    for _, key, incoming, _ in reads:
        if key not in [k for k, _ in conns]:
            conns.append((key, incoming))
    seeds = {}
    for n, which in enumerate([None] + conns):
        out = bytearray([0x02, 0x07])   # config byte; mail hosts 10.0.0.1-3
        # Open connections by the harness's id order: the director's connect
        # to its right is id 1, accepted ones come after it.
        ids = {}
        partial = {}    # connection -> the unterminated tail of its stream
        next_id = 2
        last = reads[0][0]
        for secs, key, incoming, data in reads:
            if which is not None and key != which[0]:
                continue
            while secs - last >= 1:
                step = min(19, int(secs - last))
                out += bytes([OP_TICK, step])
                last += step
            if key not in ids:
                if incoming:
                    peer = 0 if key[1].endswith(".100") else 1
                    out += bytes([OP_ACCEPT, peer])
                    ids[key] = next_id
                    next_id += 1
                else:
                    out += bytes([OP_CONNECTED, 0, 0])
                    ids[key] = 1
            idx = sorted(ids.values()).index(ids[key])
            if data == b"":
                out += bytes([OP_PEER_CLOSES, idx])
                del ids[key]
                continue
            lines = (partial.pop(key, b"") + data).split(b"\n")
            partial[key] = lines.pop()
            for line in lines:
                out += bytes([OP_RAW_LINE, idx]) + rewrite(line, base, clock0) + b"\n"
        name = "stock-ring-all" if which is None else "stock-ring-%s-%d" % (
            "in" if which[1] else "out", n)
        seeds[name] = bytes(out)
    return seeds


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("record-ring-seeds: needs root (Dovecot masters, strace)")
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    record(os.path.join(corpus, "ring-director"))
    record_notify(os.path.join(corpus, "proxy-notify"))
