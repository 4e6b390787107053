"""Loading and validating the label file."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.labels import LabelFileError, load_labels

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HEADER = "video,person,start_s,end_s,visibility,notes"


def write(tmp_path: Path, text: str, videos: tuple[str, ...] = ()) -> tuple[Path, Path]:
    videos_dir = tmp_path / "videos"
    videos_dir.mkdir()
    for name in videos:
        (videos_dir / name).write_bytes(b"")
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path, videos_dir


def error_at(errors: list[str], path: Path, line: int) -> str:
    hits = [e for e in errors if e.startswith(f"{path}:{line}: ")]
    assert len(hits) == 1, f"expected one error for line {line}, got {errors}"
    return hits[0]


def test_valid_file_loads_every_video_including_those_without_smoking(tmp_path: Path) -> None:
    path, videos_dir = write(tmp_path, f"""{HEADER}
a.mp4,1,0.0,10.5,clear,"first, with a comma"
a.mp4,1,13.0,16.0,small,
a.mp4,2,1.0,2.0,occluded,second smoker
b.mp4,0,,,,no smoking
""", videos=("a.mp4", "b.mp4", "c.mp4", "labels.csv"))
    labels = load_labels(path, videos_dir)
    assert labels.errors == []
    assert list(labels.videos) == ["a.mp4", "b.mp4"]
    assert labels.videos["b.mp4"] == []
    a = labels.videos["a.mp4"]
    assert [(i.person, i.start_s, i.end_s, i.visibility, i.kind, i.line) for i in a] == [
        (1, 0.0, 10.5, "clear", "smoking", 2), (2, 1.0, 2.0, "occluded", "smoking", 4), (1, 13.0, 16.0, "small", "smoking", 3)]
    assert a[0].notes == "first, with a comma"
    assert labels.videos_with_smoking == ["a.mp4"]
    assert labels.unlabeled_videos == ["c.mp4"]


def test_each_bad_row_is_reported_with_its_line_and_skipped(tmp_path: Path) -> None:
    path, videos_dir = write(tmp_path, f"""{HEADER}
a.mp4,1,0.0,5.0,clear,good
nosuch.mp4,1,0.0,1.0,clear,unknown video
a.mp4,1,-1.0,2.0,clear,negative start
a.mp4,1,9.0,7.0,clear,reversed
a.mp4,1,4.0,6.0,clear,overlaps line 2
a.mp4,1,,,clear,missing times
a.mp4,1,20.0,21.0,blurry,unknown visibility
b.mp4,1,1.0,2.0,,good too
""", videos=("a.mp4", "b.mp4"))
    labels = load_labels(path, videos_dir)
    assert "unknown video 'nosuch.mp4'" in error_at(labels.errors, path, 3)
    assert "start_s is negative" in error_at(labels.errors, path, 4)
    assert "end_s (7) is before start_s (9)" in error_at(labels.errors, path, 5)
    overlap = error_at(labels.errors, path, 6)
    assert "overlaps 0-5 s on line 2" in overlap and "person 1" in overlap
    assert "start_s and end_s missing for person 1" in error_at(labels.errors, path, 7)
    assert "unknown visibility 'blurry'" in error_at(labels.errors, path, 8)
    assert len(labels.errors) == 6 and all(e.endswith("row skipped") for e in labels.errors)
    assert [(i.start_s, i.end_s) for i in labels.videos["a.mp4"]] == [(0.0, 5.0)]
    assert [(i.start_s, i.end_s) for i in labels.videos["b.mp4"]] == [(1.0, 2.0)]
    assert "nosuch.mp4" not in labels.videos


def test_unknown_videos_are_only_checked_when_a_folder_is_given(tmp_path: Path) -> None:
    path, _ = write(tmp_path, f"{HEADER}\nanything.mp4,1,0,1,clear,\n")
    assert load_labels(path).errors == []


def test_line_numbers_follow_notes_that_span_lines(tmp_path: Path) -> None:
    text = f'{HEADER}\na.mp4,1,3,2,clear,"reversed,\nover two lines"\n\na.mp4,1,0,1,clear,"two\nlines"\na.mp4,2,-1,1,clear,negative\n'
    path, _ = write(tmp_path, text)
    labels = load_labels(path)
    assert "is before start_s" in error_at(labels.errors, path, 2)
    assert "negative" in error_at(labels.errors, path, 7)
    [loaded] = labels.videos["a.mp4"]
    assert (loaded.line, loaded.notes) == (5, "two\nlines")


def test_overlap_is_per_person_and_touching_intervals_are_allowed(tmp_path: Path) -> None:
    path, _ = write(tmp_path, f"{HEADER}\na.mp4,1,0,5,clear,\na.mp4,1,5,10,clear,touching\na.mp4,2,2,8,clear,other person\n")
    labels = load_labels(path)
    assert labels.errors == []
    assert len(labels.videos["a.mp4"]) == 3


def test_kind_column_adds_ignore_spans(tmp_path: Path) -> None:
    path, _ = write(tmp_path, f"""{HEADER},kind
a.mp4,1,0,5,clear,,
a.mp4,0,6,9,,undecidable,ignore
a.mp4,,12,13,,undecidable,IGNORE
b.mp4,0,,,,no smoking,
b.mp4,0,1,2,,phone call looks like smoking,ignore
c.mp4,0,,,,,ignore
d.mp4,1,0,1,clear,,vaping
""")
    labels = load_labels(path)
    assert [i.kind for i in labels.videos["a.mp4"]] == ["smoking", "ignore", "ignore"]
    assert [(i.start_s, i.end_s) for i in labels.ignored("a.mp4")] == [(6.0, 9.0), (12.0, 13.0)]
    assert labels.smoking("b.mp4") == [] and len(labels.ignored("b.mp4")) == 1
    assert "start_s and end_s missing for an ignore span" in error_at(labels.errors, path, 7)
    assert "unknown kind 'vaping'" in error_at(labels.errors, path, 8)
    assert labels.videos_with_smoking == ["a.mp4"]


def test_person_zero_with_times_and_contradicting_rows_are_reported(tmp_path: Path) -> None:
    path, _ = write(tmp_path, f"{HEADER}\na.mp4,0,1,2,,\nb.mp4,0,,,,no smoking\nb.mp4,1,1,2,clear,\n")
    labels = load_labels(path)
    assert "person 0 marks a clip without smoking" in error_at(labels.errors, path, 2)
    assert "delete the person 0 row" in error_at(labels.errors, path, 3)
    assert len(labels.smoking("b.mp4")) == 1


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(LabelFileError, match="nope.csv: label file not found"):
        load_labels(missing)


def test_missing_column_names_the_file_and_column(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "video,person,start_s,visibility\na.mp4,1,0,clear\n")
    with pytest.raises(LabelFileError, match=r"labels\.csv:1: header lacks column\(s\) end_s"):
        load_labels(path)


@pytest.mark.skipif(not (SHARED / "videos" / "labels.csv").is_file(), reason=f"shared videos not found at {SHARED / 'videos'}")
def test_real_label_file_loads_cleanly() -> None:
    labels = load_labels(SHARED / "videos" / "labels.csv", SHARED / "videos")
    assert labels.errors == []
    assert len(labels.videos) == 35
    assert len(labels.videos_with_smoking) == 11
    assert labels.unlabeled_videos == []
