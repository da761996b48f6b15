"""`make bench`: the benchmark parts (`python -m tools.bench --part NAME`), one module each.

A part module has `add_arguments(group)` (its own options, named so they do not clash with the
other parts') and `run(args, report) -> dict`: it prints its tables through `report`
(tools/bench/results.py) and returns its figures, which go to bench.json under the part's name.
"""
