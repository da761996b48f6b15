"""The gateway bench's run with the database on cores of its own: the server's processes on one
half of the cores, the bench and the api processes it starts on the other (as when the database
has a machine of its own), for the server that runs on this machine."""
import contextlib
from pathlib import Path

import asyncpg
import psutil


async def server_process(url: str) -> psutil.Process | None:
    """The database server's main process, when it runs on this machine (else None): the parent of
    this connection's backend, if it works in the server's data directory."""
    conn = await asyncpg.connect(url)
    try:
        backend, data_directory = await conn.fetchrow("SELECT pg_backend_pid(), current_setting('data_directory')")
        server = psutil.Process(backend).parent()  # while the backend lives
        return server if server is not None and Path(server.cwd()).resolve() == Path(data_directory).resolve() else None
    except psutil.Error:  # not a process of this machine, or not ours to see
        return None
    finally:
        await conn.close()


@contextlib.contextmanager
def cores_apart(server: psutil.Process):
    """The server's processes (and the connections it forks meanwhile) on the upper half of this
    process's cores, this process and what it starts on the lower half; on the way out the server's
    processes get the server's cores back and this process its own."""
    cores, server_cores = sorted(psutil.Process().cpu_affinity()), server.cpu_affinity()
    half = len(cores) // 2

    def place(processes: list[psutil.Process], allowed: list[int]) -> None:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.cpu_affinity(allowed)

    place([server, *server.children()], cores[half:])
    place([psutil.Process()], cores[:half])
    try:
        yield
    finally:
        place([server, *server.children()], server_cores)
        place([psutil.Process()], cores)
