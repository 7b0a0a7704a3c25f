"""i2v: image-to-video with diffusion models (the default one named by i2v.models.registry) behind one interface.

    from i2v import GenerationRequest, generate
    result = generate(GenerationRequest(image="cat.png", prompt="a cat turning its head"))
    result.save("cat.mp4")

    i2v.refine("猫转头").prompt    # "A cat turning its head."
"""

from i2v.errors import (
    GenerationCancelled,
    I2VError,
    InvalidInputError,
    ModelNotFoundError,
)
from i2v.models.base import Hooks
from i2v.refine import RefinedPrompt
from i2v.refine import (
    refine as refine,  # `i2v.refine("猫转头")`; the subpackage stays importable by its full name
)
from i2v.request import GenerationRequest

__all__ = [
    "GenerationCancelled",
    "GenerationRequest",
    "GenerationResult",
    "Hooks",
    "I2VError",
    "InvalidInputError",
    "ModelNotFoundError",
    "RefinedPrompt",
    "generate",
    "refine",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`generate` and `GenerationResult` on first use: the Python API pulls in numpy, Pillow and PyAV, which
    importing any part of i2v (the CLI's quick commands: `i2v models list`, `i2v plan`) must not pay for."""
    if name in ("GenerationResult", "generate"):
        from i2v import generation

        return getattr(generation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
