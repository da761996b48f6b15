"""Encoder backends: the same model run by sentence-transformers (torch) or by ONNX Runtime.

Every backend returns unit-norm float32 rows, one per text, in the order given. The ONNX backend
runs an export of the model's transformer (services/embedder/onnx_export.py) with the model's own
tokenizer, then pools and normalises like the sentence-transformers pipeline: mean of the token
vectors under the attention mask, then L2 normalisation.
"""
import json
import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx-fp32", "onnx-int8")
# Texts per ONNX Runtime call, after sorting by length: small batches pad least. On MovieLens texts
# (int8, one thread, CPU seconds) 4 per call encoded 118 texts per CPU-second, 8: 110, 32: 59-87.
SUB_BATCH = 4


class TorchBackend:
    def __init__(self, model_dir: str, device: str, threads: int, batch_size: int = 64):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.batch_size = batch_size
        self._model = SentenceTransformer(model_dir, device=device)

    @property
    def dimension(self) -> int:
        return self._model.get_embedding_dimension()

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False).astype(np.float32)


class OnnxBackend:
    """`folder` holds model.onnx / model.int8.onnx, tokenizer.json and the model's settings."""

    def __init__(self, folder: Path, quantized: bool, device: str, threads: int, batch_size: int = SUB_BATCH):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from services.embedder.onnx_export import FP32, INT8

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: the cores are shared with the other workers,
        # the database and the event loop.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads == 1:  # the tokenizer's own thread pool would take every core too
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise ValueError("ENCODE_DEVICE=cuda but this onnxruntime has no CUDA provider: install onnxruntime-gpu"
                             " or set ENCODE_DEVICE=auto")
        providers = (["CUDAExecutionProvider"] if device != "cpu" and "CUDAExecutionProvider" in available else [])
        self._session = ort.InferenceSession(str(folder / (INT8 if quantized else FP32)), options,
                                             providers=providers + ["CPUExecutionProvider"])
        self.device = "cuda" if "CUDAExecutionProvider" in self._session.get_providers() else "cpu"
        self._inputs = {i.name for i in self._session.get_inputs()}
        settings = json.loads((folder / "sentence_bert_config.json").read_text())
        pooling = json.loads((folder / "pooling.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError(f"the ONNX backend pools by mean only; this model's pooling is {pooling}: use ENCODER_BACKEND=torch")
        self.dimension = int(json.loads((folder / "config.json").read_text())["hidden_size"])
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=int(settings.get("max_seq_length", 256)))
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        """Texts sorted by length into batches, so each batch pads to similar lengths."""
        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            out[chosen] = self._encode_tokens([encodings[i].ids for i in chosen])
        return out

    def _encode_tokens(self, ids: list[list[int]]) -> np.ndarray:
        width = max(len(row) for row in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for n, row in enumerate(ids):
            input_ids[n, :len(row)] = row
            mask[n, :len(row)] = 1
        feed = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        tokens = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
