"""`make chaos` in small: 800 products through a private stack while a worker is
SIGKILLed, RabbitMQ restarted and PostgreSQL restarted; nothing lost, duplicated or dead-lettered."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tools import rabbitnode

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not rabbitnode.available(), reason="rabbitmq-server is not installed (private broker node)")
def test_small_chaos_loses_nothing():
    folder = Path(tempfile.mkdtemp(prefix="recommender-chaos-"))
    output = folder / "chaos.json"
    command = [sys.executable, "-m", "tools.chaos", "--products", "800", "--kills", "1", "--down-s", "5",
               "--max-backlog", "100", "--timeout-s", "240", "--run-dir", str(folder / "run"), "--output", str(output)]
    try:
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=420)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"make chaos (small) did not finish in 420s:\n{(exc.stdout or b'')[-3000:]}") from None
    assert output.exists(), f"no chaos.json; exit {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    report = json.loads(output.read_text())
    assert (report["lost"], report["duplicated"], report["dead_lettered"]) == (0, 0, 0), run.stdout
    assert report["accepted"] == report["stored"] == report["embedded"] == 800, report
    assert (report["worker_kills"], report["broker_restarts"], report["database_restarts"]) == (1, 1, 1), report
    assert report["worker_crashes"] == 0, "a worker exited on its own instead of riding out the outages"
    # Every event hit work in flight: products accepted and not yet embedded when it happened.
    assert all(event["pending"] > 0 for event in report["events"]), report["events"]
    assert all(event["down_s"] >= 5 for event in report["events"] if "down_s" in event), report["events"]
    assert run.returncode == 0, run.stdout[-3000:]
