import json

import numpy as np
import pytest

from detector import Detections, associate
from service.evidence import EvidenceStore, StorageError, annotate, sha256_file


def test_snapshots_and_manifest_hashes_verify(tmp_path):
    store = EvidenceStore(tmp_path / "evidence")
    folder = store.root / "2026-11-02" / "cam" / "ev1"
    image = np.full((120, 160, 3), 80, np.uint8)
    detections = Detections(np.array([[20, 10, 80, 110], [45, 20, 55, 26]]), np.array([0.9, 0.7]), np.array([0, 1]))
    annotated = annotate(image, detections, associate(detections), "cam 2026-11-02 09:00:00 UTC")
    assert annotated.shape == image.shape and not np.array_equal(annotated, image)
    files = store.write_snapshots(folder, image, annotated)
    manifest = store.write_manifest(folder, {"event_id": "ev1"}, files)
    body = json.loads((folder / "manifest.json").read_text())
    assert body["event_id"] == "ev1"
    for entry in body["files"]:
        assert sha256_file(folder / entry["name"]) == entry["sha256"]
    assert sha256_file(store.root / manifest.path) == manifest.sha256
    (folder / "snapshot.jpg").write_bytes(b"tampered")
    assert sha256_file(store.root / files[0].path) != files[0].sha256
    assert not list(folder.glob("*.tmp"))


def test_unwritable_and_full_evidence_folders_are_refused_clearly(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the evidence folder should be")
    with pytest.raises(StorageError, match="not-a-folder/evidence is not writable"):
        EvidenceStore(blocker / "evidence").check_writable()
    with pytest.raises(StorageError, match="MB free, below min_free_mb"):
        EvidenceStore(tmp_path / "evidence", min_free_mb=10**9).check_writable()
    EvidenceStore(tmp_path / "evidence").check_writable()
