"""Ship a trained checkpoint: copy the weights into models/ and export ONNX and OpenVINO beside them.

``python -m detector.training.export --weights runs/train/smokewatch-v3/weights/best.pt --name smokewatch-v3``
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ultralytics import YOLO
from ultralytics.utils.torch_utils import strip_optimizer

from detector.model import MODELS_DIR, SHIPPED_IMGSZ, SHIPPED_MODEL


def export(weights: Path, out_dir: Path = MODELS_DIR, name: str = SHIPPED_MODEL,
           imgsz: int = SHIPPED_IMGSZ) -> list[Path]:
    """Write ``name.pt``, ``name.onnx`` and ``name_openvino_model/`` (dynamic input size) into ``out_dir``."""
    if not weights.is_file():
        raise FileNotFoundError(f"weights not found: {weights}")
    out_dir.mkdir(parents=True, exist_ok=True)
    shipped = out_dir / f"{name}.pt"
    if weights.resolve() != shipped.resolve():
        shutil.copyfile(weights, shipped)
    strip_optimizer(str(shipped))  # a mid-run checkpoint still carries optimizer state: 5x the size
    written = [shipped]
    model = YOLO(str(shipped))
    # Dynamic shapes let 16:9 frames run at e.g. 512x288 instead of a padded 512x512 square.
    onnx = Path(model.export(format="onnx", imgsz=imgsz, dynamic=True, simplify=False, device="cpu"))
    openvino = Path(YOLO(str(shipped)).export(format="openvino", imgsz=imgsz, dynamic=True, half=False, device="cpu"))
    for produced in (onnx, openvino):
        target = out_dir / produced.name
        if produced.resolve() != target.resolve():
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
            shutil.move(str(produced), target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.training.export", description=__doc__)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--out-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--name", default=SHIPPED_MODEL)
    parser.add_argument("--imgsz", type=int, default=SHIPPED_IMGSZ)
    args = parser.parse_args()
    for path in export(args.weights, args.out_dir, args.name, args.imgsz):
        print(path)


if __name__ == "__main__":
    main()
