"""Real servers as pytest fixtures: an RTSP camera, PostgreSQL, and synthetic video clips."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn, Protocol

import av
import numpy as np
import psycopg
import pytest
from av.video.stream import VideoStream
from psycopg import sql
from sqlalchemy.engine import make_url

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SCRIPT = Path(__file__).with_name("rtsp_server.py")
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def _unavailable(reason: str) -> NoReturn:
    # .ci/run installs everything these fixtures need, so in CI a missing piece is a broken image, not a skip.
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} [CI=true, so this fails instead of skipping]", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll until ``predicate`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def _die_with_parent() -> None:
    """preexec_fn: if pytest itself is killed (SIGKILL, so no finalizers), the server goes with it."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Each server leads its own process group, so its ffmpeg children die with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    _kill_group(proc, sig)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
    _kill_group(proc, signal.SIGKILL)  # children that outlived a clean exit


# --- RTSP camera -------------------------------------------------------------------------------


@functools.cache
def _rtsp_unavailable() -> str | None:
    """Why the RTSP server cannot run here, or None."""
    check = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run: {exc}"
    if result.returncode != 0:
        error = (result.stderr.strip().splitlines() or ["?"])[-1]
        return f"{SYSTEM_PYTHON} cannot import GstRtspServer ({error}); apt-get install python3-gi gir1.2-gst-rtsp-server-1.0"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed (apt-get install ffmpeg); the RTSP server needs it to decode the file"
    return None


@dataclass
class RtspServerHandle:
    """A camera serving one file at `url`; `stop()` kills it mid-stream, `restart()` brings it back on the same url."""

    video: Path
    port: int
    log_path: Path
    loop: bool = False
    fps: float | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"RTSP server already running at {self.url}")
        command = [SYSTEM_PYTHON, str(RTSP_SCRIPT), str(self.video), "--port", str(self.port)]
        command += ["--loop"] if self.loop else []
        command += ["--fps", str(self.fps)] if self.fps else []
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            offset = log.tell()
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
            )
        process = self.process

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"RTSP server exited with {process.returncode}:\n{self.log_tail()}")
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return b"READY\n" in log.read()

        try:
            wait_for(ready, READY_TIMEOUT_S, f"the RTSP server at {self.url}\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the server (SIGKILL, like a camera losing power); its clients see the stream break."""
        if self.process is not None:
            _stop_process(self.process, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Shut down cleanly (SIGTERM), then make sure nothing is left."""
        if self.process is not None:
            _stop_process(self.process, signal.SIGTERM)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class StartRtspServer(Protocol):
    def __call__(self, video: Path, loop: bool = False, fps: float | None = None) -> RtspServerHandle: ...


@pytest.fixture
def rtsp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRtspServer]:
    """`start(video, loop=False, fps=None) -> RtspServerHandle`; every server is shut down after the test."""
    reason = _rtsp_unavailable()
    if reason:
        _unavailable(reason)
    handles: list[RtspServerHandle] = []
    logs = tmp_path_factory.mktemp("rtsp")

    def start(video: Path, loop: bool = False, fps: float | None = None) -> RtspServerHandle:
        handle = RtspServerHandle(Path(video), free_port(), logs / f"server{len(handles)}.log", loop, fps)
        handles.append(handle)
        handle.start()
        return handle

    yield start
    for handle in handles:
        handle.close()


# --- PostgreSQL --------------------------------------------------------------------------------


def _postgres_bindir() -> Path | None:
    def version(initdb: str) -> tuple[int, ...]:
        parts = Path(initdb).parts[-3].split(".")
        return tuple(int(p) for p in parts if p.isdigit())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _postgres_os_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run PostgreSQL as when we are root (it refuses to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"], check=True, timeout=30)
        return pwd.getpwnam("postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session; yields the SQLAlchemy URL of its empty `smokewatch_test` database."""
    bindir = _postgres_bindir()
    if bindir is None:
        _unavailable("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    user = _postgres_os_user()
    root = Path(tempfile.mkdtemp(prefix="smokewatch-pg-"))  # not under pytest's basetemp, which only root may enter
    data, log = root / "data", root / "server.log"
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)

    def run(program: str, *args: str) -> None:
        subprocess.run(
            [str(bindir / program), *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )

    port = free_port()
    server_options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "smokewatch", "-E", "UTF8", "--no-locale", "--no-sync")
        run("pg_ctl", "-D", str(data), "-l", str(log), "-o", server_options, "-w", "-t", "30", "start")
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text(errors="replace") if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot start PostgreSQL: {exc.cmd}\n{exc.stdout}\n{exc.stderr}\n{server_log}") from exc
    try:
        with _admin_connection(port, "smokewatch") as conn:
            conn.execute("CREATE DATABASE smokewatch_test")
        yield f"postgresql+psycopg://smokewatch@127.0.0.1:{port}/smokewatch_test"
    finally:
        try:
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop")
        except subprocess.SubprocessError:
            run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _admin_connection(port: int | None, user: str | None) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="postgres", autocommit=True, connect_timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test: a SQLite file, then a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/smokewatch.db"
        return
    server = make_url(request.getfixturevalue("postgres_url"))
    name = f"smokewatch_{uuid.uuid4().hex[:12]}"
    with _admin_connection(server.port, server.username) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield server.set(database=name).render_as_string(hide_password=False)
    with _admin_connection(server.port, server.username) as conn:
        # FORCE: a test that forgot to dispose of its engine must not block the drop.
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- synthetic video ---------------------------------------------------------------------------

# mpeg4 is MPEG-4 Part 2, as in the team's older .avi clips.
ENCODERS = {"h264": "libx264", "hevc": "libx265", "mpeg4": "mpeg4"}
ENCODER_OPTIONS = {"h264": {"preset": "ultrafast"}, "hevc": {"preset": "ultrafast", "x265-params": "log-level=error"}}


def make_video(path: Path, seconds: float = 3, fps: int = 25, size: tuple[int, int] = (640, 360), codec: str = "h264") -> Path:
    """Encode a clip of a rectangle moving over a gradient, so every frame differs.

    codec: "h264", "hevc" or "mpeg4"; the container follows the suffix (.mp4, .mkv, .avi; hevc does not go in .avi).
    """
    encoder = ENCODERS[codec]
    if encoder not in av.codecs_available:
        pytest.skip(f"PyAV's FFmpeg has no {encoder} encoder")
    width, height = size
    frames = max(1, round(seconds * fps))
    ramp_x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    ramp_y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    background = np.stack(np.broadcast_arrays(ramp_x, ramp_y, (ramp_x + ramp_y) / 2), axis=-1).astype(np.uint8)
    box_w, box_h = max(2, width // 8), max(2, height // 4)

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=fps, options=ENCODER_OPTIONS.get(codec, {}))
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = fps
        for i in range(frames):
            image = background.copy()
            x = (width - box_w) * i // max(1, frames - 1)
            y = (height - box_h) // 2
            image[y : y + box_h, x : x + box_w] = (255, 255, 255)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


MakeVideo = Callable[..., Path]


@pytest.fixture(name="make_video")
def make_video_fixture() -> MakeVideo:
    return make_video


# --- the team's real footage -------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    shared = Path(__file__).resolve().parents[2].parent / "shared"
    if not shared.is_dir():
        pytest.skip(f"{shared} not found: the team's datasets, weights and footage are only available inside its workspace")
    return shared


@pytest.fixture(scope="session")
def shared_videos(shared_dir: Path) -> Path:
    videos = shared_dir / "videos"
    if not videos.is_dir():
        pytest.skip("../shared/videos not found: real footage is only available inside the team's workspace")
    return videos


# --- a webhook receiver for alerts ---------------------------------------------------------------


class Receiver:
    """An HTTP server that records every POST and answers from a plan: status codes, or "hang" until released."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.plan: list[int | str] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                url = urllib.parse.urlsplit(self.path)
                receiver.requests.append({"path": url.path, "query": urllib.parse.parse_qs(url.query), "body": body})
                action = receiver.plan.pop(0) if receiver.plan else 200
                if action == "hang":
                    receiver.release.wait(10)
                    action = 200
                answer = json.dumps({"errcode": 0, "errmsg": "ok"}).encode()
                self.send_response(int(action))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
