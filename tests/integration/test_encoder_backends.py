"""The encoder backends give the model's vectors: ONNX fp32 and int8 against sentence-transformers.

The real model on a few texts; the ONNX files come from the shared cache (exported once, at install
or by the first test that needs them). `make bench PART=embed` measures the same on many texts.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from services.embedder import onnx_export
from services.embedder.encoder import Encoder, encode_threads, model_path

MODEL = "all-MiniLM-L6-v2"
DEMO = Path(__file__).resolve().parents[2] / "tools" / "demo_data" / "movies.json"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    movies = json.loads(DEMO.read_text())["movies"]
    return [f"{m['title']}. {m['description']}" for m in movies[::7]] + ["Up.", "x " * 400]  # short and truncated


@pytest.fixture(scope="module")
def torch_vectors(texts) -> np.ndarray:
    encoder = Encoder(MODEL, backend="torch", threads=2)
    yield encoder.encode_sync(texts)
    encoder.close()


@pytest.fixture(scope="module", params=["onnx-fp32", "onnx-int8"])
def onnx(request) -> Encoder:
    encoder = Encoder(MODEL, backend=request.param, threads=2)
    yield encoder
    encoder.close()


def test_onnx_vectors_agree_with_torch(onnx, texts, torch_vectors):
    vectors = onnx.encode_sync(texts)
    assert vectors.shape == torch_vectors.shape == (len(texts), onnx.dimension) and onnx.dimension == 384
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * torch_vectors).sum(axis=1)
    if onnx.backend_name == "onnx-fp32":
        assert cosine.min() >= 0.999
    else:
        assert cosine.mean() >= 0.98 and cosine.min() >= 0.95
    # Each text's nearest other text is the same as torch's for almost every text.
    def nearest(v):
        scores = v @ v.T
        np.fill_diagonal(scores, -2)
        return scores.argmax(axis=1)
    assert (nearest(vectors) == nearest(torch_vectors)).mean() >= 0.8


async def test_rows_come_back_in_the_order_given_whatever_the_lengths(onnx, texts):
    # The ONNX backend sorts texts by length into batches: the rows must still match the texts.
    forward = await onnx.encode(texts)
    backward = (await onnx.encode(texts[::-1]))[::-1]
    similarity = forward @ backward.T  # int8 scales activations per call: near, not equal
    assert (similarity.argmax(axis=1) == np.arange(len(texts))).all()
    assert np.diag(similarity).min() >= 0.98
    # Alone or in a batch, a text gets (nearly: int8 scales activations per batch) the same vector.
    assert float(onnx.encode_sync([texts[3]])[0] @ forward[3]) >= 0.98


def test_the_export_is_made_once_and_found_again(onnx):
    source = Path(model_path(MODEL, None))
    folder = onnx_export.ensure(MODEL, source, onnx_export.default_cache_dir())
    stamp = (folder / onnx_export.INT8).stat().st_mtime_ns
    assert onnx_export.ensure(MODEL, source, onnx_export.default_cache_dir()) == folder
    assert (folder / onnx_export.INT8).stat().st_mtime_ns == stamp
    assert (folder / onnx_export.INT8).stat().st_size < 0.7 * (folder / onnx_export.FP32).stat().st_size


def test_workers_share_the_cores_unless_told_otherwise(monkeypatch):
    monkeypatch.setattr("services.embedder.encoder.available_cores", lambda: 8)
    assert [encode_threads(0, workers) for workers in (1, 2, 4, 16)] == [8, 4, 2, 1]
    assert encode_threads(3, 4) == 3


def test_an_unknown_backend_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="onnx-int8"):
        Encoder(MODEL, backend="tensorflow")
