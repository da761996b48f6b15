"""The evaluation table, printed and written to EVAL.md."""
import statistics
from dataclasses import dataclass

from tools.eval.protocol import Scores


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
    return (f"| {row.method} | {s.ndcg:.4f} | {s.hit_rate:.3f} | {s.recall:.4f} | {s.coverage:.3f} "
            f"| {statistics.median(row.latencies_ms):.1f} | {_percentile(row.latencies_ms, 0.99):.1f} |")


def render(rows: list[Row], grid_rows: list[Row], *, catalogue_s: float, train_s: float, train_mib: float, n_items: int,
           n_ratings: int, n_users: int) -> str:
    lines = [
        "# Evaluation",
        "",
        f"{n_items} products, {n_ratings} training ratings, {n_users} users evaluated "
        "(per-user temporal split, last 20 % held out, targets rated >= 4.0, full ranking, history excluded).",
        "",
        "| method | NDCG@10 | HR@10 | Recall@10 | coverage | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
        *[format_row(row) for row in rows],
        "",
        f"- Catalogue through ingest -> workers -> pgvector, until all embedded: {catalogue_s:.1f} s",
        f"- Training the collaborative model (`services.trainer --once`): {train_s:.1f} s, peak {train_mib:.0f} MiB",
        "- Latency: one HTTP request to the api's recommendations endpoint, measured by the client, sequential.",
        "",
    ]
    if grid_rows:
        lines += [
            "## The hybrid's weights (`--grid`)",
            "",
            "Defaults: collaborative 1, content 0.3, popularity 0.1, next 0.4; each row changes one of them.",
            "",
            "| weights | NDCG@10 | HR@10 | Recall@10 | coverage | p50 ms | p99 ms |",
            "|---|---|---|---|---|---|---|",
            *[format_row(row) for row in grid_rows],
            "",
        ]
    return "\n".join(lines)
