"""system0.interfaces: model interfaces, the inference engine, stream operators, hooks.

torch and jax are imported only when a ``TorchModelInterface`` or ``JaxModelInterface`` is
constructed, so importing this package works on the light install.
"""

from system0.interfaces.data_pipeline import Stream
from system0.interfaces.inference_engine import InferenceEngine, InferenceResult, InvalidRequest
from system0.interfaces.jax_model import JaxModelInterface
from system0.interfaces.model_interface import (
    AIModelInterface,
    ModelInfo,
    NumpyModelInterface,
    TensorSpec,
)
from system0.interfaces.monitoring_hook import AIMonitoring, InferenceEvent
from system0.interfaces.torch_model import TorchModelInterface

__all__ = [
    "AIModelInterface",
    "AIMonitoring",
    "InferenceEngine",
    "InferenceEvent",
    "InferenceResult",
    "InvalidRequest",
    "JaxModelInterface",
    "ModelInfo",
    "NumpyModelInterface",
    "Stream",
    "TensorSpec",
    "TorchModelInterface",
]
