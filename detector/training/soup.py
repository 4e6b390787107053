"""Average the weights of checkpoints fine-tuned from one start (a uniform "model soup").

Two fine-tunes of the same network that stay in one basin can be averaged tensor by tensor; the
average often keeps what each gained (Wortsman et al., 2022, "Model soups"). Here it asks whether a
model between a photo-fitted stage and a video-robust one keeps both. BatchNorm running statistics
are averaged like the weights, which holds for models this close.

``python -m detector.training.soup --weights a.pt --weights b.pt --out runs/soup/smokewatch-v30.pt``
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path

import torch
from ultralytics.nn.tasks import DetectionModel, load_checkpoint

from detector.training.train import save_model_checkpoint


def average_models(models: Sequence[DetectionModel]) -> DetectionModel:
    """A copy of the first model whose floating-point tensors are the mean of all the models'."""
    if len(models) < 2:
        raise ValueError("a soup needs at least two checkpoints")
    first = models[0]
    states = [model.state_dict() for model in models]
    first_shapes = {key: tuple(tensor.shape) for key, tensor in states[0].items()}
    for index, (model, state) in enumerate(zip(models, states, strict=True)):
        if dict(model.names) != dict(first.names):
            raise ValueError(f"checkpoint {index + 1} has classes {dict(model.names)}, the first "
                             f"{dict(first.names)}: only models of one task can be averaged")
        if {key: tuple(tensor.shape) for key, tensor in state.items()} != first_shapes:
            raise ValueError(f"checkpoint {index + 1} is another architecture than the first (its tensors "
                             "differ in name or shape): only fine-tunes of one network can be averaged")
    averaged = {}
    for key, tensor in states[0].items():
        if tensor.is_floating_point():
            averaged[key] = torch.stack([state[key].float() for state in states]).mean(dim=0).to(tensor.dtype)
        else:  # BatchNorm's batch counter: not a weight
            averaged[key] = tensor.clone()
    soup = copy.deepcopy(first)
    soup.load_state_dict(averaged)
    return soup


def write_soup(weights: Sequence[Path], out: Path) -> Path:
    """Average the checkpoints ``weights`` and save the result as an ultralytics checkpoint at ``out``."""
    for path in weights:
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
    models = [load_checkpoint(path)[0] for path in weights]
    soup = average_models(models).half()  # as ultralytics stores trained weights
    return save_model_checkpoint(soup, out, soup_of=[str(path) for path in weights])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.training.soup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, action="append", required=True,
                        help="a checkpoint to average; give two or more")
    parser.add_argument("--out", type=Path, required=True, help="where to write the averaged checkpoint")
    args = parser.parse_args()
    print(write_soup(args.weights, args.out))


if __name__ == "__main__":
    main()
