"""Errors a user can act on. Every surface (CLI, API, UI) shows their message as-is, never a traceback.

Each class carries a stable machine-readable `code`; the web layer maps classes to HTTP statuses, so domain
code never names a status.
"""

from __future__ import annotations

#: The code of running out of device memory on every rung (`advisor.recovery.MemoryExhaustedError`, which needs
#: torch): named here so a client acts on it without importing the advisor.
MEMORY_EXHAUSTED = "memory_exhausted"


class I2VError(Exception):
    """Base for errors whose message tells the user what was wrong and what to do."""

    code = "error"


class InvalidInputError(I2VError):
    """The request, the image or a setting is unusable as given.

    `field` names the part of the request at fault (``image``, ``num_frames``, ``request`` …) where one is known;
    `problems` lists (field, message) pairs when several fields are wrong at once.
    """

    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, problems: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.field = field
        self.problems = problems or ([(field, message)] if field else [])


class UploadTooLargeError(InvalidInputError):
    """More bytes than `I2V_MAX_UPLOAD_BYTES` were sent."""

    code = "upload_too_large"


class ModelNotAllowedError(InvalidInputError):
    """A client named a model this server does not offer."""

    code = "model_not_allowed"


class ModelNotServedError(InvalidInputError):
    """No live worker holds the model a job asks for."""

    code = "model_not_served"


class ModelNotFoundError(I2VError):
    """The model weights are not where we looked."""

    code = "model_not_found"


class JobNotFoundError(I2VError):
    """No job with that id (never existed, or deleted)."""

    code = "job_not_found"


class NoPreviewError(JobNotFoundError):
    """The job exists but has no live preview (yet): it has not reached its first preview, or its model makes none."""

    code = "no_preview"


class JobStateError(I2VError):
    """The job is in a state where this action does not apply (cancel a finished job, delete a running one)."""

    code = "job_state"


class QueueFullError(I2VError):
    """Back-pressure: too many jobs are waiting. `retry_after` is a best guess in seconds."""

    code = "queue_full"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class StorageFullError(I2VError):
    """The data folder has no room for the upload or the output."""

    code = "storage_full"


class StoreUnavailableError(I2VError):
    """The job database cannot be read (corrupt, locked, gone)."""

    code = "store_unavailable"


class GenerationCancelled(I2VError):
    """The run was cancelled between two denoising steps; nothing was written."""

    code = "cancelled"

    def __init__(self, step: int, total: int):
        super().__init__(f"cancelled after step {step} of {total}; nothing was written")
        self.step = step
        self.total = total


class NonFiniteOutputError(I2VError):
    """The sampler produced NaN/inf values (a known fp16 failure of video diffusion models)."""

    code = "non_finite_output"


class OutputWriteError(I2VError):
    """The video or its metadata could not be written (disk full, no permission, bad path)."""

    code = "output_write"
