"""Schemathesis against each service's /openapi.json: every operation, positive and negative
examples, a bounded number per operation. Passes with zero 5xx and every answer (status, content
type, headers, body) as documented. FUZZ_EXAMPLES and FUZZ_SEED change the run."""
import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "ignored_auth",
])
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "20")
SEED = os.environ.get("FUZZ_SEED", "8")


def summary(output: str) -> str:
    """The lines of schemathesis' summary that say what ran: operations, test cases, failures."""
    keep = re.compile(r"API Operations|Test Phases|Test cases|Failures|Errors|Seed|generated|passed|failed|"
                      r"Examples|Coverage|Fuzzing|Selected|Tested", re.IGNORECASE)
    return "\n".join(line.rstrip() for line in output.splitlines() if keep.search(line))


@pytest.mark.parametrize("service", ["ingest", "api"])
async def test_schemathesis(contract_services, service, capsys):
    url = contract_services.url(service)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "run", f"{url}/openapi.json",
        "--checks", CHECKS, "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "30", "--generation-database", "none",
        "--header", f"Authorization: Bearer {contract_services.keys.write}",
    ]
    ARTIFACTS.mkdir(exist_ok=True)  # also the working directory: schemathesis keeps its crash files there
    process = await asyncio.create_subprocess_exec(*command, cwd=ARTIFACTS, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT,
                                                   env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"})
    out, _ = await process.communicate()
    output = out.decode(errors="replace")
    shown = " ".join(command[1:]).replace(contract_services.keys.write, "<write key>")
    (ARTIFACTS / f"schemathesis-{service}.txt").write_text(shown + "\n\n" + output)
    with capsys.disabled():
        shown = " ".join(command[4:]).replace(contract_services.keys.write, "<write key>")
        print(f"\nschemathesis {service} ({shown}):\n{summary(output)}")
    assert process.returncode == 0, output[-20000:]
