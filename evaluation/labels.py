"""Reads and validates the labeled smoking intervals (``labels.csv``); the format is described in ``evaluation/LABELS.md``.

Bad rows are reported as messages naming the file and line, and skipped; the rest of the file still loads.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

IntervalKind = Literal["smoking", "ignore"]

REQUIRED_COLUMNS = ("video", "person", "start_s", "end_s", "visibility")
OPTIONAL_COLUMNS = ("notes", "kind")
VISIBILITIES = ("clear", "small", "occluded", "")
KINDS: tuple[IntervalKind, ...] = ("smoking", "ignore")
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv"})


class LabelFileError(Exception):
    """The label file as a whole cannot be read (missing, unreadable, or without the required columns)."""


@dataclass(frozen=True)
class LabeledInterval:
    """One continuous smoking interval of one person, or an ``ignore`` span where detections count neither way."""

    video: str
    person: int
    start_s: float
    end_s: float
    visibility: str = "clear"
    notes: str = ""
    kind: IntervalKind = "smoking"
    line: int = 0  # line in the label file where the row starts; 0 when built in code

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class LabelSet:
    """Every labeled video (a clip without smoking maps to an empty list or to its ignore spans only) and the load errors."""

    videos: dict[str, list[LabeledInterval]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    source: str = ""
    unlabeled_videos: list[str] = field(default_factory=list)  # files in the videos folder that no row mentions

    def smoking(self, video: str) -> list[LabeledInterval]:
        return [i for i in self.videos.get(video, []) if i.kind == "smoking"]

    def ignored(self, video: str) -> list[LabeledInterval]:
        return [i for i in self.videos.get(video, []) if i.kind == "ignore"]

    @property
    def videos_with_smoking(self) -> list[str]:
        return [v for v in self.videos if self.smoking(v)]


class _RowError(ValueError):
    pass


def _parse_time(text: str, column: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _RowError(f"{column} {text!r} is not a number of seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _RowError(f"{column} {text!r} is not a finite number of seconds")
    if value < 0:
        raise _RowError(f"{column} is negative ({text}); times are seconds from the start of the clip, >= 0")
    return value


def _parse_person(text: str, kind: IntervalKind) -> int:
    text = text.strip()
    if not text:
        if kind == "ignore":
            return 0
        raise _RowError("person is empty; use 1, 2 ... for smokers, or 0 (with empty times) for a clip without smoking")
    try:
        person = int(text)
    except ValueError:
        raise _RowError(f"person {text!r} is not a whole number; use 1, 2 ... for smokers, 0 for a clip without smoking") from None
    if person < 0:
        raise _RowError(f"person is negative ({person}); use 1, 2 ... for smokers, 0 for a clip without smoking")
    return person


def _parse_row(cells: dict[str, str], known_videos: set[str] | None) -> LabeledInterval | None:
    """One row as an interval; None for a 'no smoking' row (person 0, empty times). Raises _RowError with what to fix."""
    video = cells["video"].strip()
    if not video:
        raise _RowError("video is empty; give the clip's file name")
    if known_videos is not None and video not in known_videos:
        raise _RowError(f"unknown video {video!r}: no such file in the videos folder; fix the name or add the clip")
    kind_text = cells.get("kind", "").strip().lower() or "smoking"
    if kind_text not in KINDS:
        raise _RowError(f"unknown kind {kind_text!r}; use 'smoking' (or leave empty) or 'ignore'")
    kind: IntervalKind = "ignore" if kind_text == "ignore" else "smoking"
    visibility = cells["visibility"].strip().lower()
    if visibility not in VISIBILITIES:
        raise _RowError(f"unknown visibility {visibility!r}; use one of clear, small, occluded, or leave it empty")
    person = _parse_person(cells["person"], kind)
    start = _parse_time(cells["start_s"], "start_s")
    end = _parse_time(cells["end_s"], "end_s")
    notes = cells.get("notes", "").strip()
    if kind == "smoking" and person == 0:
        if start is not None or end is not None:
            raise _RowError("person 0 marks a clip without smoking and must have empty times; "
                            "number the smoker (1, 2 ...) or set kind=ignore")
        return None
    if start is None or end is None:
        missing = " and ".join(c for c, v in (("start_s", start), ("end_s", end)) if v is None)
        what = "an ignore span" if kind == "ignore" else f"person {person}"
        raise _RowError(f"{missing} missing for {what}; give both times in seconds")
    if end < start:
        raise _RowError(f"end_s ({end:g}) is before start_s ({start:g}); swap or correct the times")
    return LabeledInterval(video, person, start, end, visibility, notes, kind)


def _overlaps(a: LabeledInterval, b: LabeledInterval) -> bool:
    # Intervals that only touch at an edge are two intervals, not an overlap.
    return max(a.start_s, b.start_s) < min(a.end_s, b.end_s) or (a.start_s, a.end_s) == (b.start_s, b.end_s)


def list_videos(videos_dir: Path) -> list[str]:
    """File names of the video clips in ``videos_dir`` (by suffix), sorted."""
    return sorted(p.name for p in videos_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def load_labels(path: Path, videos_dir: Path | None = None) -> LabelSet:
    """Load ``path``; with ``videos_dir`` also reject rows naming clips that are not in that folder.

    Raises LabelFileError when the file is missing or lacks a required column; every other problem becomes one message
    in ``LabelSet.errors`` (``"<file>:<line>: <what is wrong and how to fix it>"``) and that row is skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"{path}: label file not found")
    known_videos: set[str] | None = None
    if videos_dir is not None:
        if not Path(videos_dir).is_dir():
            raise LabelFileError(f"{videos_dir}: videos folder not found (needed to check the names in {path})")
        known_videos = set(list_videos(Path(videos_dir)))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(f"{path}: cannot read label file: {exc}") from exc

    labels = LabelSet(source=str(path))
    reader = csv.reader(text.splitlines(keepends=True))
    last_line = 0
    header: list[str] | None = None
    no_smoking_rows: dict[str, int] = {}
    for cells in reader:
        line, last_line = last_line + 1, reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip().lower() for c in cells]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise LabelFileError(f"{path}:{line}: header lacks column(s) {', '.join(missing)}; "
                                     f"expected {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
            unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
            if unknown:
                labels.errors.append(f"{path}:{line}: unknown column(s) {', '.join(unknown)} are ignored; "
                                     f"known columns: {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
            continue
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            labels.errors.append(f"{path}:{line}: {len(cells)} fields but the header has {len(header)}; "
                                 f"quote notes that contain commas; row skipped")
            continue
        row = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
        try:
            interval = _parse_row(row, known_videos)
        except _RowError as exc:
            labels.errors.append(f"{path}:{line}: {exc}; row skipped")
            continue
        video = row["video"].strip()
        if interval is None:
            no_smoking_rows.setdefault(video, line)
            labels.videos.setdefault(video, [])
            continue
        interval = replace(interval, line=line)
        others = labels.videos.setdefault(video, [])
        if interval.kind == "smoking":
            clash = next((o for o in others if o.kind == "smoking" and o.person == interval.person and _overlaps(o, interval)), None)
            if clash is not None:
                labels.errors.append(f"{path}:{line}: person {interval.person} interval {interval.start_s:g}-{interval.end_s:g} s "
                                     f"overlaps {clash.start_s:g}-{clash.end_s:g} s on line {clash.line} of the same video; "
                                     f"merge the two rows or correct the times; row skipped")
                continue
        others.append(interval)
    if header is None:
        raise LabelFileError(f"{path}: label file is empty; expected the header {','.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")

    for video, line in no_smoking_rows.items():
        smoking_lines = [i.line for i in labels.videos[video] if i.kind == "smoking"]
        if smoking_lines:
            labels.errors.append(f"{path}:{line}: video {video!r} is marked as without smoking (person 0) but has smoking rows "
                                 f"on line(s) {', '.join(map(str, smoking_lines))}; delete the person 0 row")
    for intervals in labels.videos.values():
        intervals.sort(key=lambda i: (i.start_s, i.end_s, i.person, i.kind, i.line))
    labels.videos = dict(sorted(labels.videos.items()))
    if known_videos is not None:
        labels.unlabeled_videos = sorted(known_videos - set(labels.videos))
    return labels
