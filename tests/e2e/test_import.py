"""The bulk import tool against the running services: CSV and JSON lines, a bad row reported
with its reason while every other row is imported and embedded."""
import json
import os
import subprocess
import sys
import urllib.request

from tests.processes import ROOT


def run_import(stack, path, report, *options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.importer", str(path), "--ingest-url", stack.ingest_url,
         "--api-url", stack.api_url, "--batch-size", "2", "--wait", "--wait-timeout", "120",
         "--report", str(report), *options],
        cwd=ROOT, capture_output=True, text=True, timeout=180, env={**os.environ, "RECOMMENDER_KEY": stack.keys.write},
    )


def product(stack, product_id: str) -> dict:
    request = urllib.request.Request(f"{stack.api_url}/v1/products/{product_id}", headers=stack.keys.headers())
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_csv_with_a_column_mapping_imports_every_good_row_and_names_the_bad_one(stack, tmp_path, unique):
    path = tmp_path / "movies.csv"
    path.write_text(
        "movieId,title,year,genres,overview\n"
        "1,Star Harbour (2001),2001,Sci-Fi|Adventure,\"A freighter crew finds a harbour between stars.\"\n"
        "2,No Overview (1999),1999,Drama,\n"
        "3,Dust Road (1966),1966,Western,Two drifters ride into a town that owes them money.\n"
    )
    result = run_import(stack, path, tmp_path / "report.json", "--map", "id=movieId,description=overview",
                        "--id-prefix", f"imp-{unique}-")
    assert result.returncode == 1, result.stderr  # 1: some rows were rejected
    report = json.loads((tmp_path / "report.json").read_text())
    assert sorted(report["accepted_ids"]) == [f"imp-{unique}-1", f"imp-{unique}-3"]
    assert [(r["row"], r["reason"].split(":")[0]) for r in report["rejected"]] == [(2, "description")]
    assert report["ready"] == 2
    assert "rejected row 2: description" in result.stdout
    star = product(stack, f"imp-{unique}-1")
    assert (star["genres"], star["year"], star["embedding_status"]) == (["Sci-Fi", "Adventure"], 2001, "ready")


def test_json_lines_import_goes_on_past_a_bad_row(stack, tmp_path, unique):
    path = tmp_path / "items.jsonl"
    rows = [{"id": f"jl-{unique}-{i}", "title": f"Item {i}", "description": f"Plain item number {i}."} for i in range(4)]
    rows[1]["description"] = ""
    rows[2]["metadata"] = {"colour": "blue"}
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_import(stack, path, tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert result.returncode == 1
    assert sorted(report["accepted_ids"]) == [f"jl-{unique}-{i}" for i in (0, 2, 3)]
    assert [r["row"] for r in report["rejected"]] == [2]
    assert report["ready"] == 3
    assert product(stack, f"jl-{unique}-2")["metadata"] == {"colour": "blue"}
