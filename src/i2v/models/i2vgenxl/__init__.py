"""I2VGen-XL (ali-vilab/i2vgen-xl): our sampler, its backend, its spec and cost model, its tiny builder."""

from i2v.models.base import KnownModel, ModelPlugin
from i2v.models.i2vgenxl.spec import SPEC

PLUGIN = ModelPlugin(
    spec=SPEC,
    backend="i2v.models.i2vgenxl.backend:I2VGenXLBackend",
    cost="i2v.models.i2vgenxl.cost:COST",
    known=(
        KnownModel(
            "ali-vilab/i2vgen-xl", "I2VGen-XL, 1.4 B-parameter 3D UNet, 1280×704 training size", "about 6 GB (fp16)",
            variant="fp16",
        ),
    ),
    # The reference pipeline's class name, and our sampler's (a folder saved by it).
    pipeline_classes=("I2VGenXLPipeline", "I2VGenXLSampler"),
    tiny="i2v.models.i2vgenxl.tiny:make_tiny_model",
)
