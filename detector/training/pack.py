"""Pack the prepared training data into parts small enough to carry to a borrowed GPU machine.

``python -m detector.training --config detector/training/gpu.yaml --pack``

The device machine receives the repository and the paths a call carries, at most 64 MiB a call,
the repository's own files included; ``../shared`` stays behind. So the training and validation
images of the prepared dataset (``prepare``, with its person pseudo-labels) are re-encoded as WebP
with the longest side capped, and cut into parts that one call each can carry. The parts gather
in one folder there, and ``TrainingConfig.pack`` trains from them (``lists_from_pack``). The
steps are in ``detector/training/GPU.md``.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import yaml
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from detector.training.dataset import CLASS_NAMES, check_repeats

MANIFEST = "manifest.json"


class IncompletePackError(FileNotFoundError):
    """A pack folder lacks parts or files; the message names them."""


class PackSettings(BaseModel):
    """Where the pack lives and how it is encoded."""

    model_config = ConfigDict(extra="forbid")

    folder: Path = Field(Path(".gpu-pack"), description="The pack's folder (git-ignored); its part-N.tgz archives are carried one a call.")
    prepared_dir: Path = Field(Path("runs/data"), description="Where the dataset is prepared before packing: the CPU "
                                                              "stages' folder, so that its cached hashes and person labels are reused.")
    max_side: int = Field(512, ge=160, le=1280, description="Longest image side in pixels after re-encoding.")
    webp_quality: int = Field(60, ge=1, le=100, description="WebP quality; 60 keeps the whole training set near 100 MiB.")
    part_mib: float = Field(30.0, gt=0, description="Largest part; with the repository's ~26 MiB and the wheels it fits one 64 MiB call.")


@dataclass(frozen=True)
class PackedImage:
    file: str  # relative to the pack folder: part-N/images/<source>/<stem>.webp
    source: str
    role: str  # "train" or "val"


def pack(data_dir: Path, settings: PackSettings) -> list[Path]:
    """Write the prepared dataset under ``data_dir`` (its train and val lists) into ``part-N.tgz``
    archives of at most ``part_mib`` each, and of about equal size, in the pack's folder; return them."""
    encoded = [_encode(data_dir, role, link, settings) for role, link in tqdm(_listed_images(data_dir), desc="pack")]
    if len({(e.source, e.stem) for e in encoded}) < len(encoded):
        raise ValueError(f"{data_dir} lists two images of one source with the same name: they would share a label file")
    limit = int(settings.part_mib * 2**20)
    total = sum(e.size for e in encoded)
    count = max(1, -(-total // limit))
    parts: list[list[_Encoded]] = [[]]
    part_bytes = 0
    for item in encoded:
        # Equal parts, so that the part which rides with the wheels is no larger than the others.
        if parts[-1] and (part_bytes + item.size > limit or (part_bytes >= total / count and len(parts) < count)):
            parts.append([])
            part_bytes = 0
        parts[-1].append(item)
        part_bytes += item.size

    out = settings.folder
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    prepared = json.loads((data_dir / "summary.json").read_text()) if (data_dir / "summary.json").is_file() else {}
    archives = []
    for number, items in enumerate(parts, start=1):
        # One file a part: thousands of small files would each take a disk block and a transfer round.
        # The WebP images do not shrink further; the headers, padding and labels gzip away.
        archive = out / f"part-{number}.tgz"
        with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
            entries = []
            for item in items:
                entry = PackedImage(f"part-{number}/images/{item.source}/{item.stem}.webp", item.source, item.role)
                _add(tar, entry.file, item.image)
                _add(tar, f"part-{number}/labels/{item.source}/{item.stem}.txt", item.label)
                entries.append(asdict(entry))
            manifest = {"part": number, "parts": len(parts), "max_side": settings.max_side,
                        "webp_quality": settings.webp_quality, "prepared": prepared, "images": entries}
            _add(tar, f"part-{number}/{MANIFEST}", json.dumps(manifest).encode())
        archives.append(archive)
    return archives


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@dataclass(frozen=True)
class _Encoded:
    role: str
    source: str
    stem: str
    image: bytes
    label: bytes

    @property
    def size(self) -> int:
        return len(self.image) + len(self.label)


def _encode(data_dir: Path, role: str, link: Path, settings: PackSettings) -> _Encoded:
    image = cv2.imread(str(link))
    if image is None:
        raise OSError(f"cannot read image {link} (listed in {data_dir})")
    scale = settings.max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    webp = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, settings.webp_quality])[1].tobytes()
    source = link.parent.name
    return _Encoded(role, source, link.stem, webp, (data_dir / "labels" / source / f"{link.stem}.txt").read_bytes())


def _listed_images(data_dir: Path) -> list[tuple[str, Path]]:
    """Each image of the train and val lists once, in list order."""
    seen: set[str] = set()
    images = []
    for role in ("train", "val"):
        listed = data_dir / f"{role}.txt"
        if not listed.is_file():
            raise FileNotFoundError(f"{listed} not found: prepare the dataset first")
        for line in listed.read_text().split():
            if line not in seen:
                seen.add(line)
                images.append((role, Path(line)))
    return images


def lists_from_pack(pack_dir: Path, out: Path, repeats: dict[str, int] | None = None) -> dict[str, Any]:
    """Check that every part of the pack is there, write ultralytics' train and val lists and
    ``data.yaml`` into ``out``, and return the data summary for the run."""
    repeats = dict(repeats or {})
    for archive in sorted(pack_dir.glob("part-*.tgz")):
        if not (pack_dir / archive.stem / MANIFEST).is_file():
            with tarfile.open(archive) as tar:
                tar.extractall(pack_dir, filter="data")
    manifests = [json.loads(p.read_text()) for p in sorted(pack_dir.glob(f"part-*/{MANIFEST}"))]
    if not manifests:
        raise IncompletePackError(f"no pack in {pack_dir}: expected part-1.tgz and its siblings "
                                  "(python -m detector.training --config ... --pack writes them; GPU.md says how to carry them)")
    expected = manifests[0]["parts"]
    present = {m["part"] for m in manifests}
    if missing := sorted(set(range(1, expected + 1)) - present):
        raise IncompletePackError(f"pack {pack_dir} is incomplete: {', '.join(f'part-{n}' for n in missing)} "
                                  f"of {expected} missing; carry every part-N.tgz before training")
    images = [PackedImage(**entry) for m in manifests for entry in m["images"]]
    if absent := [i.file for i in images if not (pack_dir / i.file).is_file()]:
        raise IncompletePackError(f"pack {pack_dir} lacks {len(absent)} listed images, e.g. {absent[0]}")
    check_repeats(repeats, {i.source for i in images if i.role == "train"})

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"train": [], "val": []}
    for image in images:
        lists[image.role] += [str((pack_dir / image.file).resolve())] * (repeats.get(image.source, 1) if image.role == "train" else 1)
    for role, files in lists.items():
        (out / f"{role}.txt").write_text("\n".join(files) + "\n")
    (out / "data.yaml").write_text(yaml.safe_dump({"path": str(out), "train": "train.txt", "val": "val.txt", "names": CLASS_NAMES}))
    first = manifests[0]
    return {
        "pack": {"folder": str(pack_dir), "parts": expected, "max_side": first["max_side"], "webp_quality": first["webp_quality"]},
        "images": dict(Counter(i.role for i in images)),
        "train_list_entries": len(lists["train"]),
        "source_repeats": repeats,
        "prepared": first["prepared"],
    }
