"""An in-memory stand-in for `services.api.store.Store`: the same four round trips over dicts,
recorded in `calls`, so the request path is tested without a database."""
import json
from datetime import datetime, timezone

import numpy as np

from services.api.store import Facts, Filters, Found, Start, _neighbour_rows
from shared.interactions import History, Interaction

T = datetime(2020, 1, 1, tzinfo=timezone.utc)


class FakeStore:
    def __init__(self, vectors: dict[str, np.ndarray], genres: dict[str, list[str]] | None = None,
                 histories: dict[str, list[Interaction]] | None = None, similar: dict | None = None,
                 following: dict | None = None, popularity: dict[str, float] | None = None):
        self.vectors = {pid: np.asarray(v, dtype=np.float32) for pid, v in vectors.items()}
        self.genres = genres or {}
        self.histories = histories or {}
        self.tables = {"similar": similar or {}, "next": following or {}}
        self.popularity = popularity or {}
        self.calls: list[str] = []

    def _passes(self, pid: str, excluded, filters: Filters) -> bool:
        return pid not in set(excluded) and (filters.genre is None or filters.genre in self.genres.get(pid, []))

    async def history(self, tenant_id, user_id, max_events=5000) -> Start:
        self.calls.append("history")
        return Start(History.of(self.histories.get(user_id, [])) if user_id else History.empty(), {})

    async def facts(self, tenant_id, model, vector_ids, similar_ids, next_ids, neighbours_per_row) -> Facts:
        self.calls.append("facts")

        def rows(kind, ids):
            rows = [(pid, self.tables[kind][pid][:neighbours_per_row]) for pid in ids if pid in self.tables[kind]]
            return {"row_ids": [pid for pid, _ in rows], "lengths": [len(pairs) for _, pairs in rows],
                    "neighbours": " ".join(n for _, pairs in rows for n, _ in pairs),
                    "weights": " ".join(str(w) for _, pairs in rows for _, w in pairs)} if rows else None

        return Facts({pid: self.vectors[pid] for pid in vector_ids if pid in self.vectors},
                     _neighbour_rows(rows("similar", similar_ids)), _neighbour_rows(rows("next", next_ids)))

    async def candidates(self, tenant_id, model, queries, counts, excluded, filters, collaborative, with_vectors,
                         popular, dimension=None) -> Found:
        self.calls.append("candidates")
        eligible = sorted(pid for pid in self.vectors if self._passes(pid, excluded, filters))
        nearest = []
        for query, count in zip(queries, counts):
            distance = {pid: 1 - float(self.vectors[pid] @ query) / float(np.linalg.norm(self.vectors[pid]))
                        for pid in eligible}
            nearest.append(sorted(eligible, key=lambda pid: (distance[pid], pid))[:count])
        allowed = {pid for pid in collaborative if pid in self.vectors and self._passes(pid, excluded, filters)}
        top = sorted((pid for pid in self.popularity if pid in eligible), key=lambda pid: (-self.popularity[pid], pid))
        shown = {pid for ids in nearest for pid in ids} | allowed | set(top[:popular])
        vectors = {pid: self.vectors[pid] for ids in nearest for pid in ids}
        if with_vectors:
            vectors |= {pid: self.vectors[pid] for pid in allowed}
        return Found(nearest, allowed, top[:popular], {pid: self.popularity.get(pid, 0.0) for pid in shown}, vectors)

    def row(self, pid: str) -> dict:
        return {"id": pid, "title": f"Title {pid}", "description": "", "genres": self.genres.get(pid, []),
                "year": 2000, "metadata": json.dumps({}), "version": 1, "created_at": T, "updated_at": T,
                "embedding_status": "ready"}

    async def page(self, tenant_id, model, product_ids, excluded, filters, offset, count, live):
        self.calls.append("page")
        rest = sorted((pid for pid in self.vectors if self._passes(pid, excluded, filters)),
                      key=lambda pid: (-self.popularity.get(pid, 0.0), pid))[offset:offset + count]
        filler = [(pid, self.popularity.get(pid, 0.0)) for pid in rest]
        return {pid: self.row(pid) for pid in [*product_ids, *rest] if pid in self.vectors}, filler
