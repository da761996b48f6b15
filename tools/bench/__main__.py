"""Run the benchmark parts: `python -m tools.bench [--part NAME ...]` (`make bench PART=NAME`).

Each part prints its tables; the run writes `bench.json` (figures under the part's name) and
`BENCHMARKS.md` (the tables, with the machine, date, commit and load average).
"""
import argparse
import importlib
import signal
import sys
from pathlib import Path

from tools.bench import results

# In the order `make bench` runs them; each is the module tools/bench/<name>.py.
PARTS = ("embed", "gateway", "trainer", "auth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=PARTS,
                        help="a part to run (repeatable); default: every part")
    parser.add_argument("--out-dir", type=Path, default=Path("."),
                        help="where bench.json and BENCHMARKS.md go (default: the current folder)")
    modules = {name: importlib.import_module(f"tools.bench.{name}") for name in PARTS}
    for name, module in modules.items():
        module.add_arguments(parser.add_argument_group(f"{name} part"))
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    # SIGTERM unwinds like Ctrl-C, so each part stops the processes and databases it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in args.part or PARTS:
        info = results.machine()
        print(f"== {name} ({info['cores']} cores, {info['cpu']}, load {info['load_average']})")
        report = results.Report(name)
        figures = modules[name].run(args, report)
        results.write(args.out_dir, name, figures, report, info)
    print(f"wrote {args.out_dir / 'bench.json'} and {args.out_dir / 'BENCHMARKS.md'}")


if __name__ == "__main__":
    main()
