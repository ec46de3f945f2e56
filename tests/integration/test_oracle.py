"""(c) Oracle comparison: a stock director and the director under test, side by
side in one test against the same backends with the same config, get the same
logins and the same `doveadm director` commands; every output (after
normalizing timestamps and the director's own address) and exit code must be
identical."""

import re
import time

import pytest

import rig

TS_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def normalize(text, d):
    text = TS_RE.sub("<TIME>", text)
    # the two directors differ only in their own (same-length) listen address
    return text.replace(d.ip, "<SELF>").replace(d.conf, "<CONF>").replace(d.dir, "<DIR>")


class Pair:
    def __init__(self, cluster, oracle, dut):
        self.c = cluster
        self.oracle = oracle
        self.dut = dut
        self.transcript = []
        self.secs = {}

    def run(self, *args, timeout=60):
        """Run one doveadm command on both; assert identical results."""
        res = []
        for d in (self.oracle, self.dut):
            t0 = time.monotonic()
            rc, out, err = d.doveadm(*args, timeout=timeout)
            res.append((rc, normalize(out, d), normalize(err, d)))
            self.secs[d.name] = self.secs.get(d.name, 0) + time.monotonic() - t0
        self.transcript.append((args, res[0]))
        assert res[1] == res[0], "doveadm %s differs:\n stock: %r\n  ours: %r" % (
            " ".join(map(str, args)), res[0], res[1])
        return res[0]

    def dump(self):
        for args, (rc, out, err) in self.transcript:
            print("$ doveadm %s  -> rc=%d" % (" ".join(args), rc))
            print("".join("  | %s\n" % x for x in (out + err).splitlines()), end="")

    def login(self, users):
        """Same IMAP logins through both; the backends chosen must match."""
        for u in users:
            a = rig.imap_roundtrip(self.oracle, u)[0]
            b = rig.imap_roundtrip(self.dut, u)[0]
            assert a == b, "user %s: stock sent to %s, ours to %s" % (u, a, b)


@pytest.fixture(params=["empty", "self"])
def pair(request, make_cluster):
    servers = "" if request.param == "empty" else "self"
    c = make_cluster(nbackends=3)
    oracle = c.add_director(bin=rig.stock_director_bin(), servers=servers)
    dut = c.add_director(bin=rig.director_bin(), servers=servers)
    c.start()
    return Pair(c, oracle, dut)


@pytest.mark.slow
def test_oracle_admin_outputs_match(pair):
    p = pair
    c = p.c
    b0, b1, b2 = (b.ip for b in c.backends)
    spare = c.base + ".13"      # not a running backend: admin-only host
    users = c.users[:24]
    uf = c.users_file

    def run(*a, **kw):
        return p.run("director", *a, **kw)

    assert "ring synced" in run("ring", "status")[1]
    run("status")
    run("dump")
    run("status", "--", users[0])
    run("status", "--", users[0], "blue")
    p.login(users)
    run("status")
    run("status", "--", users[0])
    p.run("-f", "tab", "director", "status")
    run("status", "--", "287140048")          # numeric: taken as the user hash
    run("map", "-f", uf)
    run("map", "-f", uf, b1)
    run("map", "-u", users[1])
    h = run("map", "-u", users[1])[1].strip()
    run("map", "-f", uf, "-h", h)
    # add / update / tags
    run("add", spare, "7")
    run("add", "-t", "blue", c.base + ".14")
    run("add", c.base + ".15@red", "3")
    run("add", "-t", "green", spare)          # tag can't be changed
    run("add", spare, "1001")                 # vhost count too large
    run("update", spare, "20")
    run("update", c.base + ".99", "5")        # unknown host
    run("update", spare, "2000")
    run("down", spare)                        # no real backend behind it
    run("status")
    run("status", "--", users[2], "blue")
    run("status", "--", users[2], "red")
    # up / down
    run("down", b1)
    run("down", b1)
    run("down", c.base + ".99")
    p.login(c.users[24:40])
    run("status")
    run("up", b1)
    run("up", c.base + ".99")
    # remove incl. tagged hosts
    run("remove", c.base + ".15")
    run("remove", c.base + ".15")
    run("remove", c.base + ".14")
    run("dump")
    # move / kick
    target = b2 if run("status", "--", users[3])[1].find(b2) < 0 else b0
    run("move", users[3], target)
    run("move", users[4], c.base + ".99")
    run("status", "--", users[3])
    run("kick", users[5])
    run("kick", "-f", "user_alt", "nobody")
    run("map", "-f", uf, target)
    # flush variants
    run("update", b0, "0")
    run("flush", "--max-parallel", "3", b0, timeout=90)
    run("status")
    run("flush", "-F", b2)
    run("status")
    run("flush", c.base + ".99")
    run("flush", "-F", c.base + ".99")
    p.login(users[:8])
    run("flush", "all", timeout=90)
    run("flush", "--max-parallel", "2", "all", timeout=90)
    run("flush", "-F", "all")
    run("status")
    run("map", "-f", uf)
    run("remove", spare)
    run("dump")
    # ring
    run("ring", "status")
    run("ring", "add", c.base + ".200")
    run("ring", "status")
    run("ring", "remove", c.base + ".200")
    run("ring", "remove", c.base + ".200")   # stock: still OK (entry kept as 'removed')
    run("ring", "remove", c.base + ".201")   # never known: Not found
    run("ring", "status")
    p.run("-f", "tab", "director", "ring", "status")
    # usage errors are doveadm's own, but must not differ either
    run("update", b0)
    run("move", users[0])
    # the directors are still alive and serving
    p.login(users[:3])
    p.dump()   # shown with -s or on failure
