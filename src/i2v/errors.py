"""Errors a user can act on. Every surface (CLI, API, UI) shows their message as-is, never a traceback."""


class I2VError(Exception):
    """Base for errors whose message tells the user what was wrong and what to do."""


class InvalidInputError(I2VError):
    """The request, the image or a setting is unusable as given."""


class ModelNotFoundError(I2VError):
    """The model weights are not where we looked."""


class GenerationCancelled(I2VError):
    """The run was cancelled between two denoising steps; nothing was written."""

    def __init__(self, step: int, total: int):
        super().__init__(f"cancelled after step {step} of {total}; nothing was written")
        self.step = step
        self.total = total


class NonFiniteOutputError(I2VError):
    """The sampler produced NaN/inf values (a known fp16 failure of I2VGen-XL)."""


class OutputWriteError(I2VError):
    """The video or its metadata could not be written (disk full, no permission, bad path)."""
