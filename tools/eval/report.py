"""The evaluation tables, printed and written to EVAL.md."""
import statistics
from dataclasses import dataclass

import numpy as np

from services.api.hybrid import Tuning
from tools.eval.protocol import HISTORY_BUCKETS, EvalUser, Scores, bootstrap_interval, history_bucket

DEFAULTS = ", ".join(f"{name} {value:g}" for name, value in
                     (*Tuning().blend.__dict__.items(), ("next", Tuning().next_weight)))
HEADER = "| {what} | NDCG@10 [95 % interval] | HR@10 | Recall@10 | coverage | rare share | p50 ms | p99 ms |"


@dataclass
class Row:
    method: str
    scores: Scores
    latencies_ms: list[float]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def format_row(row: Row) -> str:
    s = row.scores
    low, high = s.ndcg_interval
    return (f"| {row.method} | {s.ndcg:.4f} [{low:.4f}, {high:.4f}] | {s.hit_rate:.3f} | {s.recall:.4f} "
            f"| {s.coverage:.3f} | {s.rare_share:.3f} | {statistics.median(row.latencies_ms):.1f} | {_percentile(row.latencies_ms, 0.99):.1f} |")


def _table(what: str, rows: list[Row]) -> list[str]:
    return [HEADER.format(what=what), "|---|---|---|---|---|---|---|---|", *[format_row(row) for row in rows], ""]


def comparison(default: Row, components: list[Row]) -> list[str]:
    """The default against its best single component on the same users: paired bootstrap of the
    per-user NDCG difference."""
    best = max(components, key=lambda row: row.scores.ndcg)
    difference = default.scores.ndcg_per_user - best.scores.ndcg_per_user
    low, high = bootstrap_interval(difference)
    if low > 0:
        verdict = "better than it beyond noise"
    elif high < 0:
        verdict = "WORSE than it beyond noise"
    else:
        verdict = "not distinguishable from it (the interval contains 0)"
    return [f"The default ({default.method}) against its best single component ({best.method}) on the reported "
            f"users: NDCG difference {difference.mean():+.4f}, 95 % paired bootstrap interval [{low:+.4f}, {high:+.4f}]:"
            f" {verdict}.", ""]


def by_history(rows: list[Row], users: list[EvalUser]) -> list[str]:
    """NDCG per history-length bucket of the reported users."""
    buckets = [f"{low}-{high}" if high < 10**9 else f"{low}+" for low, high in HISTORY_BUCKETS]
    of_user = np.array([history_bucket(u) for u in users])
    counts = [int((of_user == b).sum()) for b in buckets]
    lines = ["| method | " + " | ".join(f"{b} ratings ({n} users)" for b, n in zip(buckets, counts)) + " |",
             "|---|" + "---|" * len(buckets)]
    for row in rows:
        cells = [f"{row.scores.ndcg_per_user[of_user == b].mean():.4f}" if n else "-" for b, n in zip(buckets, counts)]
        lines.append(f"| {row.method} | " + " | ".join(cells) + " |")
    return lines + [""]


def render(rows: list[Row], grid_rows: list[Row], tuned: list[str], *, comparison_lines: list[str],
           history_lines: list[str], catalogue_s: float, train_s: float, train_mib: float, n_items: int,
           n_ratings: int, n_tune: int, n_report: int) -> str:
    lines = [
        "# Evaluation",
        "",
        f"{n_items} products, {n_ratings} training ratings; the evaluated users are split once, by a seeded hash"
        f" of their id, into {n_tune} users the weights are tuned on and {n_report} users reported on (per-user"
        " temporal split, last 20 % held out, targets rated >= 4.0, full ranking, history excluded). NDCG intervals:"
        " 95 %, bootstrap over users. Rare share: the share of recommendations that are products with at most"
        " 5 training ratings (new or rarely rated).",
        "",
        f"## Reported users ({n_report})",
        "",
        *_table("method", rows),
        *comparison_lines,
        "### NDCG@10 by history length (reported users)",
        "",
        *history_lines,
        f"- Catalogue through ingest -> workers -> pgvector, until all embedded: {catalogue_s:.1f} s",
        f"- Training the collaborative model (`services.trainer --once`): {train_s:.1f} s, peak {train_mib:.0f} MiB",
        "- Latency: one HTTP request to the api's recommendations endpoint, measured by the client, sequential.",
        "",
    ]
    if grid_rows:
        lines += [
            f"## Tuning: the hybrid's weights on the tuned users ({n_tune})",
            "",
            f"Defaults: {DEFAULTS}; each row changes one or two of them.",
            "",
            *_table("weights", grid_rows),
            *tuned,
        ]
    return "\n".join(lines)
