"""Use the official YOLOv5 COCO checkpoint without the YOLOv5 repository.

The checkpoint is a pickled ``models.yolo.Model`` from the YOLOv5 repository, which
ultralytics cannot load. We unpickle it into placeholder modules to read its tensors,
then (a) transfer backbone and neck into ultralytics' ``yolov5n.yaml`` architecture as a
fine-tuning start and (b) run the original anchor-based head to pseudo-label persons.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel

COCO_PERSON = 0
# Layers model.0 … model.23 of YOLOv5 v6.x match ultralytics' yolov5n.yaml by name and shape.
HEAD_LAYER = "model.24."


class _Placeholder(nn.Module):
    """Stands in for any YOLOv5-repository class so its tensors can be read."""

    def forward(self, *args: Any) -> Any:  # pragma: no cover - never called
        raise RuntimeError("placeholder module from a YOLOv5 checkpoint cannot run")


class _YoloV5Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith(("models.", "utils.")):
            return type(name, (_Placeholder,), {})
        return super().find_class(module, name)


_pickle_module = types.ModuleType("yolov5_pickle")
_pickle_module.Unpickler = _YoloV5Unpickler  # type: ignore[attr-defined]
_pickle_module.load = pickle.load  # type: ignore[attr-defined]


def load_yolov5_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Return the float32 state dict of a YOLOv5 checkpoint (``ema`` if present, else ``model``)."""
    if not path.is_file():
        raise FileNotFoundError(f"YOLOv5 checkpoint not found: {path}")
    checkpoint = torch.load(path, map_location="cpu", pickle_module=_pickle_module, weights_only=False)
    model = checkpoint.get("ema") or checkpoint["model"]
    return {k: v.float() for k, v in model.state_dict().items()}


def transfer_backbone(model: DetectionModel, yolov5_state: dict[str, torch.Tensor]) -> int:
    """Copy every tensor of layers 0-23 whose name and shape match; return how many were copied."""
    target = model.state_dict()
    matched = {
        k: v for k, v in yolov5_state.items()
        if not k.startswith(HEAD_LAYER) and k in target and target[k].shape == v.shape
    }
    model.load_state_dict(matched, strict=False)
    return len(matched)


class _AnchorHead(nn.Module):
    """YOLOv5 v6 anchor-based Detect head, rebuilt from the checkpoint's tensors."""

    def __init__(self, state: dict[str, torch.Tensor], from_layers: list[int], index: int) -> None:
        super().__init__()
        self.f, self.i = from_layers, index  # read by DetectionModel._predict_once
        self.anchors = state[HEAD_LAYER + "anchors"]  # (3 levels, 3 anchors, 2) in grid units
        self.num_anchors = self.anchors.shape[1]
        self.convs = nn.ModuleList()
        for level in range(self.anchors.shape[0]):
            weight = state[f"{HEAD_LAYER}m.{level}.weight"]
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], 1)
            conv.weight.data = weight
            conv.bias.data = state[f"{HEAD_LAYER}m.{level}.bias"]  # type: ignore[union-attr]
            self.convs.append(conv)
        self.outputs = weight.shape[0] // self.num_anchors  # 5 + classes

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        decoded = []
        for level, (conv, x) in enumerate(zip(self.convs, features, strict=True)):
            batch, _, ny, nx = x.shape
            stride = 8 * 2**level
            y = conv(x).view(batch, self.num_anchors, self.outputs, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            gy, gx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
            grid = torch.stack((gx, gy), -1).float() - 0.5
            anchor_px = (self.anchors[level] * stride).view(1, self.num_anchors, 1, 1, 2)
            xy = (y[..., :2] * 2 + grid) * stride
            wh = (y[..., 2:4] * 2) ** 2 * anchor_px
            decoded.append(torch.cat((xy, wh, y[..., 4:]), -1).view(batch, -1, self.outputs))
        return torch.cat(decoded, 1)


class CocoPersonDetector:
    """The COCO YOLOv5n checkpoint as a person detector, for pseudo-labeling person boxes."""

    def __init__(self, checkpoint: Path, conf: float = 0.35, iou: float = 0.5, size: int = 384) -> None:
        state = load_yolov5_state_dict(checkpoint)
        classes = state[HEAD_LAYER + "m.0.weight"].shape[0] // 3 - 5
        self.model = DetectionModel("yolov5n.yaml", nc=classes, verbose=False)
        transfer_backbone(self.model, state)
        layers: nn.Sequential = self.model.model  # type: ignore[assignment]
        detect = layers[-1]
        layers[-1] = _AnchorHead(state, list(detect.f), int(detect.i))  # type: ignore[arg-type]
        self.model.eval()
        self.conf, self.iou, self.size = conf, iou, size

    @torch.no_grad()
    def persons(self, images_bgr: list[np.ndarray]) -> list[np.ndarray]:
        """Person boxes per image as ``(n, 5)`` arrays of x1, y1, x2, y2, score in pixels.

        Each image is resized (stretched) to ``size`` x ``size``; the datasets are square and
        their persons large, so 384 px labels them at a third of the cost of 640.
        """
        from torchvision.ops import nms

        resized = [cv2.resize(im, (self.size, self.size), interpolation=cv2.INTER_AREA)[..., ::-1] for im in images_bgr]
        batch = torch.from_numpy(np.stack(resized).copy())
        batch = batch.permute(0, 3, 1, 2).float() / 255
        predictions = self.model(batch)
        results = []
        for pred, image in zip(predictions, images_bgr, strict=True):
            score = pred[:, 4] * pred[:, 5 + COCO_PERSON]
            keep = score > self.conf
            pred, score = pred[keep], score[keep]
            boxes = torch.cat((pred[:, :2] - pred[:, 2:4] / 2, pred[:, :2] + pred[:, 2:4] / 2), 1)
            kept = nms(boxes, score, self.iou)
            scale = torch.tensor([image.shape[1], image.shape[0]] * 2) / self.size
            pixels = (boxes[kept] * scale).clamp(min=torch.zeros(4), max=torch.tensor([image.shape[1], image.shape[0]] * 2))
            results.append(torch.cat((pixels, score[kept, None]), 1).numpy())
        return results
