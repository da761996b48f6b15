"""The gateway bench's run on cores apart: the server's processes on one half of the cores, the
bench and what it starts on the other, every process on every core again afterwards."""
import subprocess
import time

import psutil
import pytest

from tools.bench.gateway import cores_apart

CORES = sorted(psutil.Process().cpu_affinity())


@pytest.mark.skipif(len(CORES) < 2, reason="needs two cores to set apart")
def test_the_server_and_the_bench_run_on_separate_cores_until_the_run_ends():
    # stands for the database server: a main process with a child (a connection it already serves)
    server = subprocess.Popen(["sh", "-c", "sleep 60 & wait"])
    try:
        main = psutil.Process(server.pid)
        while not main.children():
            time.sleep(0.01)
        connection = main.children()[0]
        with cores_apart(main):
            started_inside = subprocess.Popen(["sleep", "60"])  # an api process the bench starts
            server_cores, bench_cores = set(main.cpu_affinity()), set(psutil.Process().cpu_affinity())
            assert set(connection.cpu_affinity()) == server_cores
            assert set(psutil.Process(started_inside.pid).cpu_affinity()) == bench_cores
            assert server_cores and bench_cores and not server_cores & bench_cores
            assert server_cores | bench_cores == set(CORES)
        started_inside.kill()
        for process in (main, connection, psutil.Process()):
            assert sorted(process.cpu_affinity()) == CORES
    finally:
        for process in psutil.Process(server.pid).children():
            process.kill()
        server.kill()
