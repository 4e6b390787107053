"""Finds people smoking in frames. Knows nothing of cameras, databases or HTTP."""

from detector.backends import ModelLoadError
from detector.detections import CIGARETTE, PERSON, Detections
from detector.model import (
    SHIPPED_IMGSZ,
    Detector,
    DetectorSettings,
    SecondLookSettings,
    exported_model_path,
    shipped_model_path,
)
from detector.smoking import AssociationSettings, FrameEvidence, SmokingEvidence, associate
from detector.tracking import PersonTracker, TrackerSettings

__all__ = [
    "CIGARETTE", "PERSON", "SHIPPED_IMGSZ", "AssociationSettings", "Detections", "Detector", "DetectorSettings", "FrameEvidence",
    "ModelLoadError", "PersonTracker", "SecondLookSettings", "SmokingEvidence", "TrackerSettings", "associate",
    "exported_model_path", "shipped_model_path",
]
