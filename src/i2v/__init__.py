"""i2v: image-to-video with I2VGen-XL.

    from i2v import GenerationRequest, generate
    result = generate(GenerationRequest(image="cat.png", prompt="a cat turning its head"))
    result.save("cat.mp4")
"""

from i2v.errors import GenerationCancelled, I2VError, InvalidInputError, ModelNotFoundError
from i2v.generation import GenerationResult, generate
from i2v.request import GenerationRequest

__all__ = [
    "GenerationCancelled",
    "GenerationRequest",
    "GenerationResult",
    "I2VError",
    "InvalidInputError",
    "ModelNotFoundError",
    "generate",
]
__version__ = "0.1.0"
