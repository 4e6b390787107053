"""The fixtures themselves: real servers that must really serve."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import sqlalchemy as sa
from av.container import InputContainer

from tests.support.fixtures import MakeVideo, StartRtspServer

FPS = 25


def open_rtsp(url: str) -> InputContainer:
    return av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 5))


def frames(container: InputContainer) -> Iterator[av.VideoFrame]:
    yield from container.decode(container.streams.video[0])


@pytest.fixture
def clip(make_video: MakeVideo, tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", seconds=4, fps=FPS, size=(320, 180))


def test_rtsp_server_streams_the_clip_in_real_time(rtsp_server: StartRtspServer, clip: Path) -> None:
    server = rtsp_server(clip)
    arrivals: list[float] = []
    times: list[float] = []
    with open_rtsp(server.url) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 320, 180)
        for frame in frames(container):
            arrivals.append(time.monotonic())
            if frame.time is not None:  # FFmpeg's RTSP client gives the first frame no timestamp
                times.append(frame.time)

    assert len(arrivals) == 4 * FPS
    # The first second comes in a burst: PyAV holds those frames back while it probes the stream.
    steady = arrivals[-1] - arrivals[FPS]
    expected = (len(arrivals) - 1 - FPS) / FPS
    assert 0.8 * expected < steady < 1.5 * expected + 0.5, f"{len(arrivals) - 1 - FPS} frames took {steady:.2f} s, not ~{expected:.2f} s"
    steps = np.diff(times)
    assert np.allclose(steps, 1 / FPS, atol=0.002), f"frame steps {steps.min():.4f}..{steps.max():.4f} s"


def test_rtsp_server_resamples_to_fps(rtsp_server: StartRtspServer, make_video: MakeVideo, tmp_path: Path) -> None:
    server = rtsp_server(make_video(tmp_path / "short.mp4", seconds=1, fps=FPS, size=(160, 96)), fps=10)
    with open_rtsp(server.url) as container:
        times = [frame.time for frame in frames(container)]
    assert 9 <= len(times) <= 11
    assert np.allclose(np.diff([t for t in times if t is not None]), 0.1, atol=0.002)


def test_rtsp_server_loops(rtsp_server: StartRtspServer, make_video: MakeVideo, tmp_path: Path) -> None:
    server = rtsp_server(make_video(tmp_path / "short.mp4", seconds=1, fps=FPS, size=(160, 96)), loop=True)
    with open_rtsp(server.url) as container:
        times = [frame.time for frame, _ in zip(frames(container), range(int(2.5 * FPS)), strict=False)]
    assert len(times) == int(2.5 * FPS)
    assert np.allclose(np.diff([t for t in times if t is not None]), 1 / FPS, atol=0.002), "timestamps jump where the file restarts"


def test_stop_breaks_the_stream_and_restart_serves_the_same_url(rtsp_server: StartRtspServer, clip: Path) -> None:
    server = rtsp_server(clip, loop=True)
    url = server.url
    with open_rtsp(url) as container:
        received = frames(container)
        for _ in range(5):
            next(received)
        server.stop()
        late = 0
        deadline = time.monotonic() + 15
        # FFmpeg usually reports the cut-off packet as invalid data; a clean end of stream would do as well.
        with pytest.raises((av.error.FFmpegError, StopIteration)):
            while time.monotonic() < deadline:
                next(received)
                late += 1
            pytest.fail("the stream still flows 15 s after the server was killed")
    assert late < 2 * FPS, f"{late} frames arrived after the server was killed"
    with pytest.raises(av.error.FFmpegError):
        open_rtsp(url)

    server.restart()
    assert server.url == url
    with open_rtsp(url) as container:
        assert sum(1 for _, _ in zip(range(10), frames(container), strict=False)) == 10


@pytest.mark.parametrize("codec, name", [("hevc", "clip.mp4"), ("mpeg4", "clip.avi")])
def test_rtsp_server_transcodes_to_h264(rtsp_server: StartRtspServer, make_video: MakeVideo, tmp_path: Path, codec: str, name: str) -> None:
    server = rtsp_server(make_video(tmp_path / name, seconds=1, fps=FPS, size=(160, 96), codec=codec))
    with open_rtsp(server.url) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in frames(container)) == FPS


def test_make_video_writes_distinct_frames(make_video: MakeVideo, tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", seconds=1, fps=10, size=(64, 48))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        images = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 64, 48)
    assert len(images) == 10
    assert all(np.abs(a.astype(int) - b).mean() > 0.5 for a, b in zip(images, images[1:], strict=False))


def test_postgres_answers(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            assert conn.execute(sa.text("select current_database()")).scalar_one() == "smokewatch_test"
    finally:
        engine.dispose()


def test_database_url_is_an_empty_writable_database(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(sa.text("create table t (x integer)"))
            conn.execute(sa.text("insert into t values (42)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("select x from t")).scalar_one() == 42
    finally:
        engine.dispose()
