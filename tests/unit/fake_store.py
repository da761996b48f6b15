"""An in-memory stand-in for `services.api.store.Store`: the same four round trips over dicts,
recorded in `calls` (with the in-memory collaborative model), so the request path is tested
without a database."""
import json
from datetime import datetime, timezone

import numpy as np

from services.api.scoring import Vectors
from services.api.store import Filters, Found, Start
from shared.interactions import History, Interaction
from shared.neighbours import CollaborativeModel

T = datetime(2020, 1, 1, tzinfo=timezone.utc)


class FakeStore:
    def __init__(self, vectors: dict[str, np.ndarray], genres: dict[str, list[str]] | None = None,
                 histories: dict[str, list[Interaction]] | None = None, similar: dict | None = None,
                 following: dict | None = None, popularity: dict[str, float] | None = None):
        self.embeddings = {pid: np.asarray(v, dtype=np.float32) for pid, v in vectors.items()}
        self.genres = genres or {}
        self.histories = histories or {}
        self.tables = {"similar": similar or {}, "next": following or {}}
        self.popularity = popularity or {}
        self.deleted: set[str] = set()  # deleted after the model was trained: still in it
        self.calls: list[str] = []

    def _passes(self, pid: str, excluded, filters: Filters) -> bool:
        return (pid not in set(excluded) and pid not in self.deleted
                and (filters.genre is None or filters.genre in self.genres.get(pid, [])))

    async def history(self, tenant_id, user_id, max_events=5000) -> Start:
        self.calls.append("history")
        run = 1 if any(self.tables.values()) else None
        return Start(History.of(self.histories.get(user_id, [])) if user_id else History.empty(), {}, run)

    async def vectors(self, tenant_id, model, product_ids) -> dict[str, np.ndarray]:
        self.calls.append("vectors")
        return {pid: self.embeddings[pid] for pid in product_ids if pid in self.embeddings}

    async def collaborative(self, tenant_id, run) -> CollaborativeModel | None:
        self.calls.append("collaborative")
        return CollaborativeModel.of_pairs(run, self.tables, self.popularity) if run is not None else None

    async def candidates(self, tenant_id, model, queries, counts, excluded, filters, collaborative, with_vectors,
                         popular, dimension=None) -> Found:
        self.calls.append("candidates")
        eligible = sorted(pid for pid in self.embeddings if self._passes(pid, excluded, filters))
        nearest = []
        for query, count in zip(queries, counts):
            distance = {pid: 1 - float(self.embeddings[pid] @ query) / float(np.linalg.norm(self.embeddings[pid]))
                        for pid in eligible}
            nearest.append(sorted(eligible, key=lambda pid: (distance[pid], pid))[:count])
        allowed = {pid for pid in collaborative if pid in self.embeddings and self._passes(pid, excluded, filters)}
        top = sorted((pid for pid in self.popularity if pid in eligible), key=lambda pid: (-self.popularity[pid], pid))
        vectors = {pid: self.embeddings[pid] for ids in nearest for pid in ids}
        if with_vectors:
            vectors |= {pid: self.embeddings[pid] for pid in allowed}
        return Found(nearest, allowed, top[:popular], Vectors.of(vectors))

    def row(self, pid: str) -> dict:
        return {"id": pid, "title": f"Title {pid}", "description": "", "genres": self.genres.get(pid, []),
                "year": 2000, "metadata": json.dumps({}), "version": 1, "created_at": T, "updated_at": T,
                "embedding_status": "ready", "embedding_error": None}

    async def page(self, tenant_id, model, product_ids, excluded, filters, offset, count, live):
        self.calls.append("page")
        rest = sorted((pid for pid in self.embeddings if self._passes(pid, excluded, filters)),
                      key=lambda pid: (-self.popularity.get(pid, 0.0), pid))[offset:offset + count]
        filler = [(pid, self.popularity.get(pid, 0.0)) for pid in rest]
        return {pid: self.row(pid) for pid in [*product_ids, *rest]
                if pid in self.embeddings and pid not in self.deleted}, filler
