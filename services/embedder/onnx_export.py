"""ONNX copies of a sentence-transformers model, made here from its own weights (nothing downloaded).

`python -m services.embedder.onnx_export [--model-path DIR] [--cache-dir DIR]` writes
`model.onnx` (fp32) and `model.int8.onnx` (dynamic int8 quantisation of its MatMuls) into a folder
of the cache named after the model's weights, so a changed model gets new files. Run it at install
or image build; an ONNX backend that finds no files exports on first start (with torch and onnx
installed). Exporting needs torch, transformers and onnx; using the files needs only onnxruntime
and tokenizers.
"""
import argparse
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

FP32, INT8 = "model.onnx", "model.int8.onnx"
FORMAT = "1"  # bump when the exported graph changes: old cache folders are then ignored
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "recommender" / "onnx"


def fingerprint(model_dir: Path) -> str:
    """The model's weights and config: equal fingerprints mean the same network."""
    digest = hashlib.sha256(FORMAT.encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = model_dir / name
        if path.exists():
            with path.open("rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def export_dir(model_name: str, model_dir: Path, cache_dir: Path) -> Path:
    return cache_dir / f"{model_name.replace('/', '--')}-{fingerprint(model_dir)}"


def ensure(model_name: str, model_dir: Path, cache_dir: Path) -> Path:
    """The folder holding both ONNX files of this model, exported now when missing."""
    target = export_dir(model_name, model_dir, cache_dir)
    if (target / FP32).exists() and (target / INT8).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(cache_dir / ".lock", "w") as lock:  # several workers starting at once export once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ((target / FP32).exists() and (target / INT8).exists()):
            export(model_dir, target)
    return target


def export(model_dir: Path, target: Path) -> None:
    """Write both files into `target` (through a temporary folder, renamed when complete)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    log.warning("exporting %s to ONNX in %s (once per model)", model_dir, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    model = AutoModel.from_pretrained(str(model_dir)).eval()

    class TokenEmbeddings(torch.nn.Module):  # positional inputs, one output: the last hidden state
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = (torch.ones((2, 16), dtype=torch.long), torch.ones((2, 16), dtype=torch.long),
              torch.zeros((2, 16), dtype=torch.long))
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    with torch.no_grad():
        torch.onnx.export(TokenEmbeddings().eval(), sample, str(work / FP32), input_names=list(INPUTS),
                          output_names=["token_embeddings"],
                          dynamic_axes={**axes, "token_embeddings": {0: "batch", 1: "tokens"}},
                          opset_version=17, dynamo=False)
    # Signed int8 weights per output channel, MatMuls only: mean cosine to torch 0.992 on MovieLens
    # overviews, where one scale per tensor gave 0.955 and unsigned weights 0.979.
    logging.disable(logging.INFO)  # the quantiser logs a line per tensor
    try:
        quantize_dynamic(str(work / FP32), str(work / INT8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.disable(logging.NOTSET)
    for name in ("tokenizer.json", "sentence_bert_config.json", "config.json"):
        if (model_dir / name).exists():
            (work / name).write_bytes((model_dir / name).read_bytes())
    pooling = model_dir / "1_Pooling" / "config.json"
    (work / "pooling.json").write_text(pooling.read_text() if pooling.exists() else json.dumps(
        {"pooling_mode_mean_tokens": True}))
    work.chmod(0o755)  # mkdtemp's folder is private; an image's service user must read it
    shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier try
    work.rename(target)


def main() -> None:
    from services.embedder.encoder import model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=os.environ.get("MODEL_NAME", "all-MiniLM-L6-v2"))
    parser.add_argument("--model-path", default=os.environ.get("MODEL_PATH"))
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("ONNX_CACHE_DIR") or default_cache_dir()))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    print(ensure(args.model_name, Path(model_path(args.model_name, args.model_path)), args.cache_dir))


if __name__ == "__main__":
    main()
