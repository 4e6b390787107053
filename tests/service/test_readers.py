import threading
from pathlib import Path

import av
import pytest

from service.config import CameraConfig
from service.evidence import EvidenceStore
from service.readers import PARTIAL_MP4_OPTIONS, ClipRecording, PacketRing, SourceError, StoredPacket, VideoSource


def camera(source: Path | str, fps: float = 5.0) -> CameraConfig:
    return CameraConfig(id="cam", source=str(source), analysis_fps=fps, realtime=False)


def probe(path: Path) -> tuple[str, float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.codec_context.name, float(container.duration or 0) / 1e6, frames


def test_frames_come_at_the_analysis_rate(make_video, tmp_path):
    video = make_video(tmp_path / "in.mp4", seconds=4, fps=25)
    source = VideoSource(camera(video, fps=5))
    frames = list(source.frames())
    assert len(frames) == 20
    assert [round(f.t, 2) for f in frames[:3]] == [0.0, 0.2, 0.4]
    assert frames[0].image.shape == (360, 640, 3) and frames[0].image.dtype.name == "uint8"
    assert source.frames_read == 100


def test_clip_is_cut_from_packets_with_pre_roll(make_video, tmp_path):
    video = make_video(tmp_path / "in.mp4", seconds=8, fps=25)
    source = VideoSource(camera(video))
    done = threading.Event()
    recording = ClipRecording(tmp_path / "ev" / "clip.partial.mp4", start_t=2.0, stop_t=5.0, on_done=lambda r: done.set())
    for frame in source.frames():
        if abs(frame.t - 4.0) < 1e-6:
            source.record(recording)  # asked late: 2 s of pre-roll come from the ring buffer
    assert done.is_set() and not recording.interrupted and recording.error is None
    files = EvidenceStore(tmp_path).finish_clip(tmp_path / "ev")
    assert [f.kind for f in files] == ["clip"]
    codec, duration, frames = probe(tmp_path / "ev" / "clip.mp4")
    # starts at the keyframe at or before 2.0 s (the test video has one every second), ends at 5.0 s
    assert codec == "h264" and 2.9 <= duration <= 3.2 and 73 <= frames <= 80
    assert not (tmp_path / "ev" / "clip.partial.mp4").exists()


def test_hevc_source_keeps_master_and_gets_h264_review_copy(make_video, tmp_path):
    if "libx265" not in av.codecs_available:
        pytest.skip("PyAV's FFmpeg has no HEVC encoder to make the test clip")
    video = make_video(tmp_path / "in.mp4", seconds=3, fps=25, codec="hevc")
    source = VideoSource(camera(video))
    recording = ClipRecording(tmp_path / "ev" / "clip.partial.mp4", 0.0, 2.0, on_done=lambda r: None)
    source.record(recording)
    list(source.frames())
    files = EvidenceStore(tmp_path).finish_clip(tmp_path / "ev")
    assert sorted(f.kind for f in files) == ["clip", "clip_master"]
    assert probe(tmp_path / "ev" / "clip-master.mp4")[0] == "hevc"
    assert probe(tmp_path / "ev" / "clip.mp4")[0] == "h264"


def test_missing_and_corrupt_files_give_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="video file not found: .*nothing.mp4"):
        list(VideoSource(camera(tmp_path / "nothing.mp4")).frames())
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x01garbage" * 1000)
    with pytest.raises(SourceError, match="cannot open .*corrupt.mp4"):
        list(VideoSource(camera(corrupt)).frames())


def test_unreachable_camera_fails_within_the_open_timeout():
    import time

    unreachable = CameraConfig(id="cam", source="rtsp://127.0.0.1:9/none", open_timeout_s=2, read_timeout_s=2)
    started = time.monotonic()
    with pytest.raises(SourceError, match="cam.*cannot open rtsp://127.0.0.1:9/none"):
        list(VideoSource(unreachable).frames())
    assert time.monotonic() - started < 10


def test_ring_keeps_whole_gops_for_pre_roll():
    ring = PacketRing(seconds=2.0)
    for i in range(100):  # 10 s at 10 packets/s, a keyframe every second
        ring.append(StoredPacket(b"x", i, i, i % 10 == 0, i / 10))
    kept = ring.since(8.5)
    assert kept[0].keyframe and kept[0].t == 8.0 and kept[-1].t == pytest.approx(9.9)
    # asking for older than held gives the oldest whole GOP, never a clip starting mid-GOP
    oldest = ring.since(0.0)
    assert oldest[0].keyframe and oldest[0].t <= 8.0


def test_partial_clip_is_fragmented_so_a_crash_keeps_what_was_written(make_video, tmp_path):
    assert "frag_keyframe" in PARTIAL_MP4_OPTIONS["movflags"]
    video = make_video(tmp_path / "in.mp4", seconds=4, fps=25)
    source = VideoSource(camera(video))
    recording = ClipRecording(tmp_path / "ev" / "clip.partial.mp4", 0.0, 99.0, on_done=lambda r: None)
    source.record(recording)
    frames = source.frames()
    for frame in frames:
        if frame.t >= 3.0:
            break
    # simulate a crash: the writer was never closed; what was flushed must still decode
    recording._container = None  # noqa: SLF001 - drop without closing, like a killed process
    frames.close()
    codec, _, decoded = probe(tmp_path / "ev" / "clip.partial.mp4")
    assert codec == "h264" and decoded >= 25


def test_errors_never_show_camera_passwords():
    camera = CameraConfig(id="cam", source="rtsp://admin:s3cret@127.0.0.1:9/live", open_timeout_s=2, read_timeout_s=2)
    with pytest.raises(SourceError) as error:
        list(VideoSource(camera).frames())
    assert "s3cret" not in str(error.value) and "rtsp://***@127.0.0.1:9/live" in str(error.value)
