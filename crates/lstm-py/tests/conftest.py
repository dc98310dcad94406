"""What several test files share."""

import os
import time

import pytest


@pytest.fixture
def forked():
    """``forked(child, timeout)``: runs ``child()`` in a process forked from this one and returns
    the bytes it returns; fails the test if the child does not end within ``timeout`` seconds
    (it is killed then)."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork() here")

    def run(child, timeout):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.write(w, child())
            finally:
                os._exit(0)
        os.close(w)
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(r)
            pytest.fail(f"the forked child did not finish in {timeout} s")
        out = os.read(r, 1 << 16)
        os.close(r)
        return out

    return run
