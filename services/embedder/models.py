"""The models one worker serves: the default loaded at start, any other loaded on first use.

A worker embeds each write with every model its tenant wants (shared.models), so one pool of
workers serves a model change without a second deployment. A model other than MODEL_NAME is
loaded from MODELS_DIR/<name> (a sentence-transformers folder) the first time a message needs it;
its dimension is then registered (a name never changes dimension) and its HNSW index created.
A model that fails to load is retried after RETRY_S, not on every batch.
"""
import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from shared.models import MODEL_NAME

log = logging.getLogger(__name__)

RETRY_S = 60.0


class Encoder(Protocol):
    model_name: str

    @property
    def dimension(self) -> int: ...

    async def encode(self, texts: list[str]) -> np.ndarray: ...

    def close(self) -> None: ...


PLAIN_MODULES = {"Transformer", "Pooling", "Normalize"}  # what the ONNX backends reproduce


def model_folder(models_dir: str | None, model: str) -> str | None:
    """Where a model other than the default lives: MODELS_DIR/<name>, when that folder exists."""
    if not MODEL_NAME.match(model):  # never a path outside MODELS_DIR
        raise ValueError(f"{model!r} is not a valid model name")
    if models_dir and (Path(models_dir) / model).is_dir():
        return str(Path(models_dir) / model)
    return None


def backend_for(folder: str | None, configured: str) -> str:
    """The configured backend, or torch for a model with modules the ONNX export leaves out (a Dense
    projection, say): the ONNX backends run the transformer, then pool and normalise themselves."""
    if folder is None or configured == "torch":
        return configured
    modules = json.loads((Path(folder) / "modules.json").read_text())
    kinds = {module["type"].rsplit(".", 1)[-1] for module in modules}
    return configured if kinds <= PLAIN_MODULES else "torch"


def other_encoder(settings, model: str):
    """An encoder of `model` (not MODEL_NAME) with the worker's settings (blocking: seconds)."""
    from services.embedder.encoder import Encoder

    folder = model_folder(settings.models_dir, model)
    return Encoder(model, folder, settings.encode_device, backend_for(folder, settings.encoder_backend),
                   settings.encode_threads, settings.embedder_workers, settings.onnx_cache_dir)


class Encoders:
    def __init__(self, default: Encoder, load: Callable[[str], Encoder],
                 register: Callable[[str, int], Awaitable[None]]):
        """`load(name)` builds an encoder (blocking: run in a thread); `register(name, dimension)`
        records it in the database and raises when the name is taken by another dimension."""
        self._default = default
        self._encoders = {default.model_name: default}
        self._load = load
        self._register = register
        self._failed: dict[str, float] = {}  # model -> when loading last failed
        self._lock = asyncio.Lock()

    async def get(self, model: str) -> Encoder:
        if (encoder := self._encoders.get(model)) is not None:
            return encoder
        async with self._lock:  # one load at a time; the others wait for it
            if (encoder := self._encoders.get(model)) is not None:
                return encoder
            if time.monotonic() - self._failed.get(model, -RETRY_S) < RETRY_S:
                raise LookupError(f"model {model!r} failed to load recently")
            try:
                log.info("loading model %s", model)
                encoder = await asyncio.to_thread(self._load, model)
                try:
                    await self._register(model, encoder.dimension)
                except Exception:
                    encoder.close()
                    raise
            except Exception as exc:
                self._failed[model] = time.monotonic()
                log.error("model %s cannot be used: %s", model, exc)
                raise LookupError(f"model {model!r} cannot be used: {exc}") from exc
            self._encoders[model] = encoder
            return encoder

    async def available(self, model: str) -> bool:
        try:
            await self.get(model)
        except LookupError:
            return False
        return True

    async def encode(self, model: str, texts: list[str]) -> np.ndarray:
        return await (await self.get(model)).encode(texts)

    def close(self) -> None:
        """Close the encoders loaded here (the default one belongs to the caller)."""
        for encoder in self._encoders.values():
            if encoder is not self._default:
                encoder.close()
