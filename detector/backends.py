"""Inference backends: the same exported network run by PyTorch, ONNX Runtime or OpenVINO.

Each backend takes a letterboxed uint8 BGR batch ``(batch, height, width, 3)`` and returns
the raw head output ``(batch, 4 + classes, anchors)``. PyTorch and ONNX Runtime convert it
with ``to_tensor``; OpenVINO does the same conversion inside its compiled graph, where it
costs almost nothing. Letterboxing and decoding live in ``detector.model``, shared by all.
"""

from __future__ import annotations

import ast
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import yaml

BackendName = Literal["pytorch", "onnx", "openvino"]
Precision = Literal["f32", "bf16"]


class ModelLoadError(RuntimeError):
    """A model file is missing, corrupt or of a format no backend reads."""


class Backend(Protocol):
    name: BackendName
    names: dict[int, str]
    fixed_size: tuple[int, int] | None  # (h, w) for static exports, None when any multiple of 32 works
    max_batch: int | None  # images per call a static export takes; None: any number
    precision: str  # the arithmetic it computes in on this CPU: "f32", "bf16" or "f16"

    def infer(self, images: np.ndarray) -> np.ndarray: ...


def to_tensor(images: np.ndarray) -> np.ndarray:
    """uint8 BGR NHWC images to the network's RGB NCHW float32 batch in 0..1 (OpenCV's C++ path: 4x numpy's)."""
    return cv2.dnn.blobFromImages(list(images), 1 / 255.0, swapRB=True)


def backend_for_path(path: Path) -> BackendName:
    if path.suffix == ".pt":
        return "pytorch"
    if path.suffix == ".onnx":
        return "onnx"
    if path.is_dir() or path.suffix == ".xml":
        return "openvino"
    raise ModelLoadError(f"{path}: unsupported model format; expected a .pt, a .onnx, or an OpenVINO folder / .xml")


class TorchBackend:
    name: BackendName = "pytorch"
    precision = "f32"

    def __init__(self, path: Path, threads: int) -> None:
        import torch
        from ultralytics.nn.tasks import load_checkpoint

        try:
            model, _ = load_checkpoint(str(path), device=torch.device("cpu"), fuse=True)
        except Exception as error:  # pickle, zip and ultralytics errors all mean "not a usable checkpoint"
            raise ModelLoadError(f"{path}: cannot load as an ultralytics PyTorch checkpoint ({error})") from error
        self._torch, self._model, self.threads = torch, model, threads
        self.names = {int(k): str(v) for k, v in dict(model.names).items()}
        self.fixed_size: tuple[int, int] | None = None
        self.max_batch: int | None = None

    def infer(self, images: np.ndarray) -> np.ndarray:
        # ultralytics lowers torch to one thread on small machines; set ours before every call.
        self._torch.set_num_threads(self.threads)
        with self._torch.inference_mode():
            output = self._model(self._torch.from_numpy(to_tensor(images)))
        return (output[0] if isinstance(output, tuple | list) else output).numpy()


class OnnxBackend:
    name: BackendName = "onnx"
    precision = "f32"

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ModelLoadError(f"{path}: cannot load as an ONNX model ({error})") from error
        meta = self._session.get_modelmeta().custom_metadata_map
        self.names = _names_from_metadata(meta.get("names"), path)
        self._input = self._session.get_inputs()[0]
        shape = self._input.shape
        self.fixed_size = (shape[2], shape[3]) if all(isinstance(s, int) for s in shape[2:]) else None
        self.max_batch = shape[0] if isinstance(shape[0], int) else None

    def infer(self, images: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input.name: to_tensor(images)})[0]


class OpenVinoBackend:
    """OpenVINO on CPU, with one static-shaped compiled model per input shape.

    The CPU plugin pays about 3 ms on every shape change of a dynamic model, and the
    detector alternates shapes (full frame, person crops); a static model per shape runs
    the same mix 1.7x faster. Compiling one takes about 0.2 s, so they are kept (LRU).
    Each compiled model takes the uint8 BGR images as they are: the colour swap, the
    conversion to float and the scaling run inside the graph (``to_tensor`` in Python
    cost 0.5 to 1.5 ms per 512x288 frame). Several threads may call ``infer`` at once.
    """

    name: BackendName = "openvino"
    max_compiled_shapes = 16  # input sizes x batch sizes (power-of-two batches up to DetectorSettings.max_batch)

    def __init__(self, path: Path, threads: int, precision: Precision) -> None:
        import openvino as ov

        xml = path if path.suffix == ".xml" else next(iter(sorted(path.glob("*.xml"))), None)
        if xml is None or not xml.is_file():
            raise ModelLoadError(f"{path}: no OpenVINO .xml model in this folder")
        self._ov, self._core = ov, ov.Core()
        # bf16 only where the CPU computes it natively (BF16 in OpenVINO's capability list: AVX-512 BF16
        # or AMX). OpenVINO 2026 also honours the bf16 hint on AVX-512 CPUs without it, emulated, where
        # a frame took 3x as long as f32 (Intel Xeon with AVX-512 but no BF16, session 35).
        native_bf16 = "BF16" in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        self._config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": ov.Type.bf16 if precision == "bf16" and native_bf16 else ov.Type.f32,
        }
        try:
            self._model = self._core.read_model(str(xml))
            shape = self._model.input(0).get_partial_shape()
            self._compiled: OrderedDict[tuple[int, ...], Any] = OrderedDict()
            self._lock, self._local = threading.Lock(), threading.local()
            self.fixed_size = (shape[2].get_length(), shape[3].get_length()) if shape[2].is_static and shape[3].is_static else None
            self.max_batch: int | None = None  # each compiled model is reshaped to its batch
            # Compile once now so a corrupt model fails here, naming the file, not at the first frame.
            self._request_for((1, *(self.fixed_size or (320, 320)), 3))
            # What the compiled model computes in, as OpenVINO reports it.
            hint = next(iter(self._compiled.values())).get_property("INFERENCE_PRECISION_HINT")
            self.precision: str = hint.get_type_name()
        except Exception as error:
            raise ModelLoadError(f"{xml}: cannot load as an OpenVINO model ({error})") from error
        metadata = xml.parent / "metadata.yaml"
        names = yaml.safe_load(metadata.read_text()).get("names") if metadata.is_file() else None
        self.names = _names_from_metadata(names, path)

    def _request_for(self, shape: tuple[int, ...]) -> Any:
        # An infer request serves one thread at a time: each calling thread (the service's
        # analysis threads) keeps its own, on compiled models shared by all.
        requests: OrderedDict[tuple[int, ...], Any] | None = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = OrderedDict()
        request = requests.get(shape)
        if request is None:
            with self._lock:
                compiled = self._compiled.get(shape)
                if compiled is None:
                    compiled = self._compiled[shape] = self._core.compile_model(self._static_model(shape), "CPU", self._config)
                    if len(self._compiled) > self.max_compiled_shapes:
                        self._compiled.popitem(last=False)
            request = requests[shape] = compiled.create_infer_request()
            if len(requests) > self.max_compiled_shapes:
                requests.popitem(last=False)
        requests.move_to_end(shape)
        return request

    def _static_model(self, shape: tuple[int, ...]) -> Any:
        """The network for one (batch, height, width, 3) uint8 BGR input shape."""
        from openvino.preprocess import ColorFormat, PrePostProcessor

        batch, height, width, _ = shape
        model = self._model.clone()
        model.reshape({0: self._ov.PartialShape([batch, 3, height, width])})
        steps = PrePostProcessor(model)
        steps.input().tensor().set_element_type(self._ov.Type.u8).set_layout(self._ov.Layout("NHWC")) \
            .set_color_format(ColorFormat.BGR)
        steps.input().model().set_layout(self._ov.Layout("NCHW"))
        steps.input().preprocess().convert_element_type(self._ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
        return steps.build()

    def infer(self, images: np.ndarray) -> np.ndarray:
        request = self._request_for(images.shape)
        request.infer({0: images})
        return request.get_output_tensor(0).data.copy()


def _names_from_metadata(names: object, path: Path) -> dict[int, str]:
    if isinstance(names, str):
        names = ast.literal_eval(names)
    if not isinstance(names, dict) or not names:
        raise ModelLoadError(f"{path}: model has no class names in its metadata (export it with ultralytics)")
    return {int(k): str(v) for k, v in names.items()}


def open_backend(path: Path, backend: BackendName | None = None, threads: int = 2,
                 precision: Precision = "f32") -> Backend:
    """Load ``path`` with the named backend (or the one its format implies)."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    kind = backend or backend_for_path(path)
    if kind != backend_for_path(path):
        raise ModelLoadError(f"{path}: is a {backend_for_path(path)} model, not {kind}")
    if kind == "pytorch":
        return TorchBackend(path, threads)
    if kind == "onnx":
        return OnnxBackend(path, threads)
    return OpenVinoBackend(path, threads, precision)
