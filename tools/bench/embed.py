"""The embed part: each encoder backend's speed and agreement with torch, and the pipeline against
the encoder's ceiling (`make bench PART=embed`).

1. Raw: each backend encodes the first `--embed-compare-texts` texts in this process with every
   core (runs interleaved, median texts/s); fp32 and int8 vectors are compared with torch's
   (cosine, top-10 neighbours). The chosen backend is the fastest acceptable one (fp32: every
   cosine >= 0.999; int8: mean cosine >= 0.99).
2. End to end: a throwaway ingest + N embedder workers of the chosen backend; each run POSTs the
   texts as new products and waits until all have vectors, between two timings of the raw encoder
   on the same texts, so each ratio (end to end / their mean) is measured under the same load.
   Enough texts (2,000 by default, ~10 s of work) that the fixed costs (the first batch's wait,
   the last batch) weigh little.
3. MovieLens import: at the default worker count, every MovieLens text once, POSTed as the importer
   does, until every vector is stored.
"""
import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from services.embedder.backends import BACKENDS
from services.embedder.encoder import DEFAULT_BACKEND, Encoder, available_cores
from shared.settings import Settings, default_embedder_workers
from tools.bench.pipeline import Pipeline
from tools.bench.results import Report, median

ACCEPT_FP32_MIN_COSINE = 0.999
ACCEPT_INT8_MEAN_COSINE = 0.99
DEMO = Path(__file__).resolve().parent.parent / "demo_data" / "movies.json"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    data = Path(os.environ.get("DATA_DIR", "../shared/data/movielens-small")) / "movies.csv"
    group.add_argument("--embed-data", type=Path, default=data,
                       help="a CSV with title and overview columns (default: MovieLens under DATA_DIR;"
                            " the demo catalogue when missing)")
    group.add_argument("--embed-texts", type=int, default=2000, help="texts per end-to-end run")
    group.add_argument("--embed-compare-texts", type=int, default=1000,
                       help="texts per run of the backend comparison (torch is slow)")
    group.add_argument("--embed-runs", type=int, default=3, help="runs per figure (the median counts)")
    group.add_argument("--embed-workers", default="1,2,4", help="worker counts of the end-to-end runs")
    group.add_argument("--embed-default-workers", type=int,
                       default=int(os.environ.get("EMBEDDER_WORKERS", default_embedder_workers())),
                       help="the worker count whose end-to-end figure goes to bench.json")
    group.add_argument("--embed-import", action=argparse.BooleanOptionalAction, default=True,
                       help="time the import of every text of --embed-data at the default worker count")


def catalogue_texts(path: Path) -> list[str]:
    """Every product text of the catalogue as the embedder sees it (title. description)."""
    if path.exists():
        with path.open(newline="") as file:
            rows = [(r["title"], r.get("overview") or r.get("description") or "") for r in csv.DictReader(file)]
    else:
        rows = [(m["title"], m["description"]) for m in json.loads(DEMO.read_text())["movies"]]
    return [f"{title}. {text}" for title, text in rows if text]


def bench_texts(path: Path, count: int) -> list[str]:
    """`count` product texts: the catalogue's, repeated with a suffix when it has fewer."""
    texts = catalogue_texts(path)
    return [texts[i % len(texts)] if i < len(texts) else f"{texts[i % len(texts)]} ({i})" for i in range(count)]


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of each text's k nearest neighbours (among the texts) that both sets of vectors agree on."""
    def nearest(v: np.ndarray) -> np.ndarray:
        scores = v @ v.T
        np.fill_diagonal(scores, -np.inf)
        return np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(nearest(a), nearest(b))]))


def raw(texts: list[str], runs: int, report: Report) -> tuple[dict, dict, str]:
    cores = available_cores()
    encoders = {name: Encoder(Settings().model_name, backend=name, threads=cores) for name in BACKENDS}
    speeds: dict[str, list[float]] = {name: [] for name in BACKENDS}
    vectors: dict[str, np.ndarray] = {}
    for name, encoder in encoders.items():
        encoder.encode_sync(texts[:64])  # warm up
    for _ in range(runs):
        for name, encoder in encoders.items():
            started = time.perf_counter()
            vectors[name] = encoder.encode_sync(texts)
            speeds[name].append(len(texts) / (time.perf_counter() - started))
    for encoder in encoders.values():
        encoder.close()
    rows, figures, acceptable = [], {}, {}
    for name in BACKENDS:
        cosine = (vectors[name] * vectors["torch"]).sum(axis=1)
        overlap = top_overlap(vectors[name], vectors["torch"])
        ok = (name == "torch" or (name == "onnx-fp32" and cosine.min() >= ACCEPT_FP32_MIN_COSINE)
              or (name == "onnx-int8" and cosine.mean() >= ACCEPT_INT8_MEAN_COSINE))
        acceptable[name] = ok
        figures[name] = {"texts_per_s": round(median(speeds[name]), 1), "min_cosine": round(float(cosine.min()), 5),
                         "mean_cosine": round(float(cosine.mean()), 5), "top10_overlap": round(overlap, 4)}
        rows.append([name, median(speeds[name]), min(speeds[name]), max(speeds[name]), float(cosine.min()),
                     float(cosine.mean()), overlap, "yes" if ok else "no"])
    chosen = max((n for n in BACKENDS if acceptable[n]), key=lambda n: figures[n]["texts_per_s"])
    report.table(f"Encoders, one process, {cores} threads, {len(texts)} texts, {runs} runs (texts/s)",
                 ["backend", "median", "min", "max", "min cos", "mean cos", "top-10 overlap", "acceptable"], rows)
    report.note(f"Fastest acceptable backend: **{chosen}** (the default setting is {DEFAULT_BACKEND}).")
    return figures, acceptable, chosen


def raw_speed(encoder: Encoder, texts: list[str]) -> float:
    started = time.perf_counter()
    encoder.encode_sync(texts)
    return len(texts) / (time.perf_counter() - started)


def end_to_end(texts: list[str], backend: str, worker_counts: list[int], runs: int, report: Report,
               catalogue: tuple[int, list[str]] | None = None) -> dict:
    """Figures per worker count; with `catalogue` (worker count, texts), also the seconds to import
    those texts at that worker count (under "import")."""
    ceiling = Encoder(Settings().model_name, backend=backend, threads=available_cores())
    ceiling.encode_sync(texts[:64])
    pipeline = Pipeline(backend)
    results, imported = {}, None
    try:
        for count in worker_counts:
            pipeline.start_workers(count)
            pipeline.run(texts[:200])  # warm up: connections, prepared statements, first batches
            # Each end-to-end run sits between two timings of the raw encoder and is compared with
            # their mean, so load that changes during the run weighs on both sides.
            raws, e2es, ratios, busy = [raw_speed(ceiling, texts)], [], [], []
            for _ in range(runs):
                wall_s, encode_s = pipeline.run(texts)
                raws.append(raw_speed(ceiling, texts))
                e2es.append(len(texts) / wall_s)
                ratios.append(e2es[-1] / ((raws[-2] + raws[-1]) / 2))
                busy.append(encode_s / count / wall_s)
            results[count] = {"end_to_end": median(e2es), "raw": median(raws), "ratio": median(ratios),
                              "encoding_share": median(busy)}
            print(f"{count} worker(s): end to end {results[count]['end_to_end']:.1f} texts/s,"
                  f" raw {results[count]['raw']:.1f}, ratio {results[count]['ratio']:.2f},"
                  f" workers encoding {results[count]['encoding_share']:.0%} of the time", flush=True)
            if catalogue is not None and catalogue[0] == count:
                wall_s, _ = pipeline.run(catalogue[1])
                imported = {"products": len(catalogue[1]), "workers": count, "seconds": wall_s,
                            "texts_per_s": len(catalogue[1]) / wall_s}
                print(f"import of {imported['products']} products, {count} worker(s): {wall_s:.1f} s"
                      f" ({imported['texts_per_s']:.1f} texts/s)", flush=True)
    finally:
        pipeline.close()
        ceiling.close()
    cores = available_cores()
    report.table(f"End to end (POST -> every vector stored), {backend}, {len(texts)} texts, {runs} runs",
                 ["workers", "threads each", "end to end texts/s", "raw texts/s", "ratio", "time in encode"],
                 [[str(n), max(1, cores // n), r["end_to_end"], r["raw"], r["ratio"], f"{r['encoding_share']:.0%}"]
                  for n, r in results.items()])
    if imported is not None:
        report.note(f"Import of the whole catalogue ({imported['products']} products, POST -> every vector stored),"
                    f" {imported['workers']} workers: **{imported['seconds']:.1f} s**"
                    f" ({imported['texts_per_s']:.1f} texts/s).")
        results["import"] = imported
    return results


def run(args: argparse.Namespace, report: Report) -> dict:
    texts = bench_texts(args.embed_data, args.embed_texts)
    source = args.embed_data if args.embed_data.exists() else DEMO
    report.note(f"Texts: {len(texts)} product texts from {source.name}"
                f" (mean {np.mean([len(t) for t in texts]):.0f} characters).")
    backends, acceptable, chosen = raw(texts[:args.embed_compare_texts], args.embed_runs, report)
    counts = sorted({int(n) for n in args.embed_workers.split(",")} | {args.embed_default_workers})
    catalogue = (args.embed_default_workers, catalogue_texts(args.embed_data)) if args.embed_import else None
    pipeline = end_to_end(texts, chosen, counts, args.embed_runs, report, catalogue)
    imported = pipeline.pop("import", None)
    default = pipeline[args.embed_default_workers]
    report.note("Load average after the run: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
                + " (every process of the machine shares its cores: see the ratio's note in README).")
    return {"backend": chosen, "raw_texts_per_s": round(default["raw"], 1),
            "torch_texts_per_s": backends["torch"]["texts_per_s"],
            "onnx_fp32_texts_per_s": backends["onnx-fp32"]["texts_per_s"],
            "onnx_int8_texts_per_s": backends["onnx-int8"]["texts_per_s"],
            "int8_mean_cosine": backends["onnx-int8"]["mean_cosine"],
            "int8_top10_overlap": backends["onnx-int8"]["top10_overlap"],
            "fp32_min_cosine": backends["onnx-fp32"]["min_cosine"],
            "end_to_end_texts_per_s": round(default["end_to_end"], 1), "ratio": round(default["ratio"], 3),
            "workers": args.embed_default_workers, "texts": len(texts), "runs": args.embed_runs,
            "backends": backends,
            "import_products": imported and imported["products"],
            "import_s": imported and round(imported["seconds"], 1),
            "by_workers": {str(n): {k: round(v, 3) for k, v in r.items()} for n, r in pipeline.items()}}
