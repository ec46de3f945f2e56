"""pytest fixtures for the loopback integration tests (see rig.py).

The director under test comes from DIRECTOR_BIN, the oracle from
STOCK_DIRECTOR_BIN (both default to the stock /usr/lib/dovecot/director).
A failed test keeps its cluster's temp dir and prints where it is.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rig  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than ~10 s")


def pytest_report_header(config):
    return ["DIRECTOR_BIN=%s" % rig.director_bin(),
            "STOCK_DIRECTOR_BIN=%s" % rig.stock_director_bin()]


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item._rig_failed = True
        rig.ANY_TEST_FAILED = True


def _require_env():
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (Dovecot masters, uid 65534 mail)")
    # a missing binary is a failure, never a skip: a skip would hide a broken build
    for path in (rig.DOVECOT, rig.DOVEADM, rig.director_bin(), rig.stock_director_bin()):
        if not os.access(path, os.X_OK):
            pytest.fail("%s is missing or not executable" % path)


@pytest.fixture
def make_cluster(request):
    """Factory: make_cluster(**Cluster kwargs) -> rig.Cluster (not started).
    All clusters made are stopped at the end of the test."""
    _require_env()
    made = []

    def factory(**kw):
        c = rig.Cluster(**kw)
        made.append(c)
        return c
    yield factory
    failed = getattr(request.node, "_rig_failed", False)
    for c in made:
        c.failed = c.failed or failed
        c.cleanup()


@pytest.fixture
def cluster1(make_cluster):
    """3 backends and one standalone director running DIRECTOR_BIN, started."""
    c = make_cluster(nbackends=3)
    c.add_director()
    c.start()
    return c
