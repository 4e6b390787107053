"""Evidence on disk: clip, clean and annotated snapshots, and a hashed manifest per event.

Layout: ``<root>/<YYYY-MM-DD>/<camera id>/<event id>/``. Every file is written under a
temporary name and renamed when complete, and the manifest (with the SHA-256 of every
other file) is written last, so a folder without a manifest is an unfinished event.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from detector import Detections, FrameEvidence

CLIP, CLIP_MASTER, SNAPSHOT, SNAPSHOT_ANNOTATED, MANIFEST = "clip", "clip_master", "snapshot", "snapshot_annotated", "manifest"
FILE_NAMES = {CLIP: "clip.mp4", CLIP_MASTER: "clip-master.mp4", SNAPSHOT: "snapshot.jpg",
              SNAPSHOT_ANNOTATED: "snapshot-annotated.jpg", MANIFEST: "manifest.json"}
CONTENT_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".json": "application/json"}
PARTIAL_CLIP = "clip.partial.mp4"
BROWSER_CODECS = {"h264"}


class StorageError(OSError):
    """The evidence folder cannot take new files; the message says why and where."""


@dataclass(frozen=True)
class StoredFile:
    kind: str
    path: Path  # relative to the evidence root
    sha256: str
    size_bytes: int
    content_type: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_bytes(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def annotate(image: np.ndarray, detections: Detections, evidence: FrameEvidence, caption: str) -> np.ndarray:
    """Boxes (smokers red, other persons green, cigarettes yellow) and a caption band."""
    out = image.copy()
    smokers = {e.person_index for e in evidence.persons}
    thickness = max(1, round(max(out.shape[:2]) / 500))
    for row, (box, score, class_id) in enumerate(zip(detections.xyxy, detections.confidence, detections.class_id, strict=True)):
        name = detections.names.get(int(class_id), str(class_id))
        color = (0, 215, 255) if name == "cigarette" else (0, 0, 255) if row in smokers else (0, 200, 0)
        x1, y1, x2, y2 = (int(v) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        label = f"{name} {score:.2f}"
        if detections.tracker_id[row] >= 0:
            label += f" #{detections.tracker_id[row]}"
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, color, thickness)
    band = max(20, out.shape[0] // 24)
    cv2.rectangle(out, (0, 0), (out.shape[1], band), (0, 0, 0), -1)
    cv2.putText(out, caption, (6, int(band * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, band / 40, (255, 255, 255), max(1, band // 20))
    return out


def _remux_faststart(source: Path, target: Path) -> None:
    """Copy packets into a progressive MP4 with the index at the front (plays while downloading)."""
    temporary = target.with_name(target.name + ".tmp")
    with av.open(str(source)) as inp, av.open(str(temporary), "w", format="mp4", options={"movflags": "faststart"}) as out:
        in_stream = inp.streams.video[0]
        out_stream = out.add_stream_from_template(in_stream)
        for packet in inp.demux(in_stream):
            if packet.dts is None:
                continue
            packet.stream = out_stream
            out.mux(packet)
    os.replace(temporary, target)


def _transcode_h264(source: Path, target: Path) -> None:
    """A browser-playable H.264 review copy of a clip in another codec (HEVC)."""
    temporary = target.with_name(target.name + ".tmp")
    with av.open(str(source)) as inp, av.open(str(temporary), "w", format="mp4", options={"movflags": "faststart"}) as out:
        in_stream = inp.streams.video[0]
        rate = in_stream.average_rate or 25
        encoder = out.add_stream("libx264", rate=Fraction(int(round(float(rate))), 1))
        encoder.width, encoder.height = in_stream.codec_context.width // 2 * 2, in_stream.codec_context.height // 2 * 2
        encoder.pix_fmt = "yuv420p"
        encoder.options = {"preset": "veryfast", "crf": "23"}
        for index, frame in enumerate(inp.decode(in_stream)):
            frame = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, int(round(float(rate))))
            out.mux(encoder.encode(frame))
        out.mux(encoder.encode(None))
    os.replace(temporary, target)


class EvidenceStore:
    """Writes and verifies the files of each event under one root folder."""

    def __init__(self, root: Path, min_free_mb: int = 0) -> None:
        self.root = root
        self.min_free_mb = min_free_mb

    def check_writable(self) -> None:
        """Raise StorageError unless new evidence can be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as error:
            raise StorageError(f"evidence folder {self.root} is not writable: {error.strerror or error}") from None
        free_mb = shutil.disk_usage(self.root).free / 2**20
        if free_mb < self.min_free_mb:
            raise StorageError(f"evidence folder {self.root} has {free_mb:.0f} MB free, below min_free_mb={self.min_free_mb}")

    def used_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file()) if self.root.is_dir() else 0

    def event_dir(self, camera_id: str, event_id: str, when: datetime) -> Path:
        return self.root / when.strftime("%Y-%m-%d") / camera_id / event_id

    def stored(self, kind: str, path: Path) -> StoredFile:
        return StoredFile(kind, path.relative_to(self.root), sha256_file(path), path.stat().st_size,
                          CONTENT_TYPES.get(path.suffix, "application/octet-stream"))

    def write_snapshots(self, folder: Path, image: np.ndarray, annotated: np.ndarray) -> list[StoredFile]:
        folder.mkdir(parents=True, exist_ok=True)
        files = []
        for kind, picture in ((SNAPSHOT, image), (SNAPSHOT_ANNOTATED, annotated)):
            ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                raise StorageError(f"cannot encode snapshot for {folder}")
            path = folder / FILE_NAMES[kind]
            _atomic_bytes(path, encoded.tobytes())
            files.append(self.stored(kind, path))
        return files

    def finish_clip(self, folder: Path) -> list[StoredFile]:
        """Turn the partial (fragmented) clip into the final, browser-playable one(s)."""
        partial = folder / PARTIAL_CLIP
        if not partial.is_file():
            return []
        with av.open(str(partial)) as clip:
            codec = clip.streams.video[0].codec_context.name
        files = []
        if codec in BROWSER_CODECS:
            _remux_faststart(partial, folder / FILE_NAMES[CLIP])
        else:
            # The camera's own packets stay the evidence master; the review copy is H.264.
            _remux_faststart(partial, folder / FILE_NAMES[CLIP_MASTER])
            files.append(self.stored(CLIP_MASTER, folder / FILE_NAMES[CLIP_MASTER]))
            _transcode_h264(folder / FILE_NAMES[CLIP_MASTER], folder / FILE_NAMES[CLIP])
        files.insert(0, self.stored(CLIP, folder / FILE_NAMES[CLIP]))
        partial.unlink()
        return files

    def write_manifest(self, folder: Path, manifest: dict[str, object], files: list[StoredFile]) -> StoredFile:
        body = {**manifest, "files": [
            {"kind": f.kind, "name": f.path.name, "sha256": f.sha256, "bytes": f.size_bytes, "content_type": f.content_type}
            for f in files
        ]}
        path = folder / FILE_NAMES[MANIFEST]
        _atomic_bytes(path, json.dumps(body, indent=2, ensure_ascii=False, default=str).encode())
        return self.stored(MANIFEST, path)

    def leftover_temporaries(self, folder: Path) -> None:
        for temporary in folder.glob("*.tmp"):
            temporary.unlink(missing_ok=True)
