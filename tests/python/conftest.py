"""pytest configuration for the Python (WSGI) test suite."""

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "difference(behaviour, waitress, maitred, why): a conformance check where maitred "
        "deliberately differs from Waitress (listed in tests/python/DIFFERENCES.md)",
    )


def pytest_sessionfinish(session, exitstatus):
    # Without the maitred package every module skips itself at import, so nothing is
    # collected, which pytest reports as exit status 5. That is the documented outcome of a
    # run before `pip install .`: exit 0, with the skip reason in the summary. With the
    # package installed, an empty collection stays an error.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        from helpers import maitred_installed

        if not maitred_installed():
            session.exitstatus = pytest.ExitCode.OK
