"""The gateway bench's run on cores apart: the server's processes on one half of the cores, the
bench and what it starts on the other, and afterwards each on the cores it had before."""
import subprocess
import time

import psutil
import pytest

from tools.bench.cores import cores_apart

CORES = sorted(psutil.Process().cpu_affinity())


@pytest.mark.skipif(len(CORES) < 2, reason="needs two cores to set apart")
def test_the_server_and_the_bench_run_on_separate_cores_then_get_their_own_back():
    # stands for the database server: a main process with a child (a connection it already serves)
    server = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    try:
        main = psutil.Process(server.pid)
        while not main.children():
            time.sleep(0.01)
        connection = main.children()[0]
        for process in (main, connection):  # an operator keeps the server on the first core
            process.cpu_affinity(CORES[:1])
        with cores_apart(main):
            started_inside = subprocess.Popen(["sleep", "60"])  # an api process the bench starts
            server_cores, bench_cores = set(main.cpu_affinity()), set(psutil.Process().cpu_affinity())
            assert set(connection.cpu_affinity()) == server_cores
            assert set(psutil.Process(started_inside.pid).cpu_affinity()) == bench_cores
            assert server_cores and bench_cores and not server_cores & bench_cores
            assert server_cores | bench_cores == set(CORES)
        started_inside.kill()
        assert main.cpu_affinity() == connection.cpu_affinity() == CORES[:1]
        assert sorted(psutil.Process().cpu_affinity()) == CORES
    finally:
        for process in psutil.Process(server.pid).children():
            process.kill()
        server.kill()
