"""Start a wider network from a trained narrow one without losing what it learned (Net2WiderNet).

Only the YOLOv5n COCO checkpoint can be had here, so a larger model (``yolov5s.yaml``, twice the
channels of ``yolov5n.yaml`` in every layer but the box branch of the head) would otherwise start
from scratch. Instead each narrow channel ``c`` becomes the two wide channels ``2c`` and ``2c + 1``
with the same weights, and a layer reading a doubled input splits each narrow weight between the
two copies, so that the wide network computes the narrow one's function exactly. Pairing channels
as ``c -> (2c, 2c + 1)`` keeps concatenations consistent: the channels of ``[a, b]`` map the same
way whether mapped as one tensor or part by part.

The split is random per weight rather than half and half, so the two copies of a channel get
different gradients and can learn different things (identical copies would stay identical).
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel

SPLIT_SPREAD = 0.2  # each copy takes between 0.3 and 0.7 of a narrow input weight


def widen(narrow: DetectionModel, wide_architecture: str, seed: int = 0) -> DetectionModel:
    """Return a ``wide_architecture`` model (an ultralytics yaml) that computes what ``narrow`` does.

    Every convolution of the wide model must have the narrow one's channel counts or twice them, as
    ``yolov5s.yaml`` has against ``yolov5n.yaml`` (and any ultralytics family at width x2).
    """
    names = dict(narrow.names)
    wide = DetectionModel(wide_architecture, nc=len(names), verbose=False)
    narrow_modules = dict(narrow.named_modules())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in wide.named_modules():
            if isinstance(module, nn.Conv2d | nn.BatchNorm2d):
                source = narrow_modules.get(name)
                if type(source) is not type(module):
                    raise ValueError(f"{wide_architecture} has {type(module).__name__} {name!r} where the narrow "
                                     f"model has {type(source).__name__}: the two are not one family at two widths")
                if isinstance(module, nn.Conv2d):
                    _widen_conv(name, source, module, generator)  # type: ignore[arg-type]
                else:
                    _widen_batch_norm(name, source, module)  # type: ignore[arg-type]
    wide.names = names
    return wide


def _channel_map(name: str, narrow: int, wide: int) -> torch.Tensor:
    """For each wide channel, the narrow channel it copies."""
    if wide == narrow:
        return torch.arange(wide)
    if wide == 2 * narrow:
        return torch.arange(wide) // 2
    raise ValueError(f"layer {name!r}: {wide} channels against {narrow}; widening needs equal or twice the channels")


def _widen_conv(name: str, narrow: nn.Conv2d, wide: nn.Conv2d, generator: torch.Generator) -> None:
    if narrow.groups != 1 or wide.groups != 1 or narrow.kernel_size != wide.kernel_size:
        raise ValueError(f"layer {name!r}: only plain convolutions of one kernel size can be widened")
    out_map = _channel_map(name, narrow.out_channels, wide.out_channels)
    in_map = _channel_map(name, narrow.in_channels, wide.in_channels)
    weight = narrow.weight[out_map][:, in_map].clone()
    if wide.in_channels == 2 * narrow.in_channels:
        # Input channels 2c and 2c + 1 carry the same values: share each weight between them.
        share = 0.5 + SPLIT_SPREAD * (2 * torch.rand(weight.shape[0], weight.shape[1] // 2, 1, 1,
                                                     generator=generator) - 1)
        weight[:, 0::2] *= share
        weight[:, 1::2] *= 1 - share
    wide.weight.copy_(weight)
    if wide.bias is not None and narrow.bias is not None:
        wide.bias.copy_(narrow.bias[out_map])


def _widen_batch_norm(name: str, narrow: nn.BatchNorm2d, wide: nn.BatchNorm2d) -> None:
    out_map = _channel_map(name, narrow.num_features, wide.num_features)
    for tensor in ("weight", "bias", "running_mean", "running_var"):
        getattr(wide, tensor).copy_(getattr(narrow, tensor)[out_map])
    wide.eps, wide.momentum = narrow.eps, narrow.momentum
