"""The bench harness keeps every part's figures: running one part replaces only that part."""
import json

from tools.bench import results


def test_one_part_replaces_its_own_figures_and_keeps_the_others(tmp_path):
    info = results.machine()
    assert info["cores"] >= 1 and info["cpu"] and info["commit"]
    embed = results.Report("embed")
    embed.table("Encoders", ["backend", "texts/s"], [["torch", 51.23], ["onnx", 70.0]])
    results.write(tmp_path, "embed", {"raw_texts_per_s": 70.0}, embed, info)
    gateway = results.Report("gateway")
    gateway.table("Requests", ["requests", "p50 ms"], [["one at a time", 3.5]])
    results.write(tmp_path, "gateway", {"p50_ms": 3.5}, gateway, info)
    again = results.Report("embed")
    again.table("Encoders", ["backend", "texts/s"], [["torch", 49.0]])
    results.write(tmp_path, "embed", {"raw_texts_per_s": 49.0}, again, info)

    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["embed"]["raw_texts_per_s"] == 49.0 and data["gateway"]["p50_ms"] == 3.5
    assert data["embed"]["measured"]["cores"] == info["cores"]
    markdown = (tmp_path / "BENCHMARKS.md").read_text()
    assert markdown.count("## embed") == 1 and "| torch | 49.0 |" in markdown and "51.2" not in markdown
    assert "| one at a time | 3.500 |" in markdown and info["cpu"] in markdown
