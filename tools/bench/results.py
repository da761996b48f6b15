"""What every bench part shares: tables printed and kept, the machine, bench.json and BENCHMARKS.md.

A part's figures go to `bench.json` under the part's name; its tables go to its own section of
`BENCHMARKS.md`. Running one part replaces that part's entries and keeps the others', so
`make bench PART=embed` does not erase the gateway's last figures.
"""
import json
import os
import platform
import re
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine() -> dict:
    """Cores, CPU model, load average, date and commit: what a reader needs to weigh the figures."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        if subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                          text=True).stdout.strip():
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"cores": os.cpu_count(), "cpu": cpu, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit, "load_average": [round(x, 2) for x in load]}


class Report:
    """Tables and notes of one part: printed as they come, kept for BENCHMARKS.md."""

    def __init__(self, part: str):
        self.part = part
        self.lines: list[str] = []

    def note(self, text: str) -> None:
        print(text, flush=True)
        self.lines += [text, ""]

    def table(self, title: str, headers: list[str], rows: list[list]) -> None:
        cells = [[_cell(value) for value in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
        print(f"\n{title}")
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        for row in cells:
            print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        print(flush=True)
        self.lines += [f"**{title}**", "", "| " + " | ".join(headers) + " |",
                       "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
        self.lines += ["| " + " | ".join(row) + " |" for row in cells]
        self.lines.append("")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write(out_dir: Path, part: str, figures: dict, report: Report, info: dict) -> None:
    """Put one part's figures into bench.json and its section into BENCHMARKS.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "bench.json"
    data = json.loads(json_path.read_text()) if json_path.exists() else {}
    data[part] = {**figures, "measured": info}
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    md_path = out_dir / "BENCHMARKS.md"
    sections = _sections(md_path.read_text()) if md_path.exists() else {}
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    sections[part] = "\n".join([
        f"## {part}", "",
        f"Measured {info['date']} at commit {info['commit']} on {info['cores']} cores ({info['cpu']});"
        f" load average before the run {load}.", "",
        *report.lines]).rstrip() + "\n"
    md_path.write_text(HEADER + "".join(f"\n<!-- part:{name} -->\n{sections[name]}<!-- /part:{name} -->\n"
                                        for name in sorted(sections)))


HEADER = """# Benchmarks

Written by `make bench` (`make bench PART=embed|gateway|trainer` runs one part and keeps the
others' last figures). The same figures are in `bench.json` for scripts. Throughput measured on a
machine shared with other work is noisy: compare ratios measured within one run, and read the load
average given with each part.
"""


def _sections(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- part:(\w+) -->\n(.*?)<!-- /part:\1 -->", text, re.S)}
