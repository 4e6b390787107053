"""What this machine's CPU can compute in, as the tests expect the backends to report it."""

import openvino as ov


def openvino_cpu_has_bf16() -> bool:
    """OpenVINO's own capability list: without BF16 in it, OpenVINO computes f32 whatever is asked."""
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
