"""A second embedding model made locally: the packaged all-MiniLM-L6-v2 followed by a fixed random
projection to another dimension, saved as a sentence-transformers folder.

    python -m tools.projection_model DIR/minilm-proj-256 --dimension 256

Only all-MiniLM-L6-v2 is available offline, so this is how a model of another dimension is tried
here (`recommender reembed --model minilm-proj-256` with MODELS_DIR=DIR on the workers). The
projection is a seeded Gaussian matrix: a different geometry, so rankings change, but neighbours
stay meaningful (random projections roughly keep angles).
"""
import argparse
import os
from pathlib import Path


def build(folder: Path, dimension: int, seed: int = 0) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer, models

    from services.embedder.encoder import PACKAGED_MODEL, model_path

    base = SentenceTransformer(model_path(PACKAGED_MODEL, None), device="cpu")
    width = base.get_embedding_dimension()
    dense = models.Dense(width, dimension, bias=False, activation_function=torch.nn.Identity())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        dense.linear.weight.copy_(torch.randn(dimension, width, generator=generator) / dimension ** 0.5)
    SentenceTransformer(modules=[*base, dense, models.Normalize()], device="cpu").save(str(folder))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to save it: MODELS_DIR/<model name>")
    parser.add_argument("--dimension", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.folder, args.dimension, args.seed))


if __name__ == "__main__":
    main()
