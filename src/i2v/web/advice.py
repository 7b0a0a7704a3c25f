"""REST routes of the strategy advisor: judge an uploaded image and recommend settings (`POST /assess`), and
propose the next run for a finished job from a symptom (`POST /jobs/{id}/troubleshoot`), optionally queueing it.

Uploads go through the job service's checks (size, content, model allow-list), as for /plan. Errors are domain
errors, mapped to statuses by api.py's handlers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from i2v.advice_record import AdviceRecord
from i2v.advisor.assess import ImageAssessment, assess
from i2v.advisor.device import probe_device
from i2v.advisor.recommend import Recommendation, advise
from i2v.advisor.troubleshoot import SYMPTOMS, Proposal, propose
from i2v.errors import (
    InvalidInputError,
    JobNotFoundError,
    JobStateError,
    ModelNotFoundError,
)
from i2v.jobs.service import JobService
from i2v.jobs.store import ACTIVE
from i2v.models.registry import spec_for
from i2v.refine import make_refiner
from i2v.refine.base import RefinedPrompt
from i2v.request import MAX_PROMPT_CHARS, default_model, echo
from i2v.web.rest import COMMON, NOT_FOUND, UPLOAD, _error, service_of
from i2v.web.security import require_token
from i2v.web.views import JobView, job_view, public_metadata

#: Every route's statuses but the job database's 503, which only the routes that read jobs list.
router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], responses={k: v for k, v in COMMON.items() if k != 503})

SymptomName = Literal[tuple(SYMPTOMS)]  # type: ignore[valid-type]


class AssessAnswer(BaseModel):
    """The image judged for one model, the refined text (when given), and the settings recommended for both."""

    assessment: ImageAssessment
    refined: RefinedPrompt | None = Field(description="What the refiner made of `text`; null without text")
    recommendation: Recommendation
    request_fields: dict[str, Any] = Field(
        description="The recommended GenerationRequest fields, ready to merge into a request when the user applies them"
    )
    advice: AdviceRecord = Field(
        description="The record to send as the request's `advice` (set recommendation.applied to true when applied), "
        "so the clip's metadata keeps the assessment"
    )


class TroubleshootBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symptom: SymptomName = Field(description="; ".join(f"{name}: {row.label}" for name, row in SYMPTOMS.items()))
    seed: Literal["same", "new"] | None = Field(default=None, description="Override the symptom's choice of seed")
    queue: bool = Field(default=False, description="Submit the proposed run at once, with the job's image")
    llm: bool = Field(
        default=False,
        description="Let the server's configured LLM (I2V_LLM_*) rewrite the prompt for the symptom; any failure keeps the offline edit, with a note",
    )


class TroubleshootAnswer(BaseModel):
    proposal: Proposal
    job: JobView | None = Field(description="The queued run when `queue` was true, else null")


@router.post(
    "/assess", response_model=AssessAnswer, operation_id="assess", responses=UPLOAD,
    summary="Judge an image for a model and recommend a preset and settings, each with a reason (multipart: image + optional text/model)",
)
async def assess_image(
    http: Request,
    image: UploadFile = File(description="The image you will animate. Sent twice, the last `image` part is the one judged, as /plan and /jobs take the last"),
    text: str | None = Form(None, max_length=MAX_PROMPT_CHARS, description="The motion you want, in any language (refined for the tags)"),
    model: str | None = Form(None, max_length=512, description="The model to judge for; default: the server's default model"),
    refiner: Literal["rules", "llm"] = Form("rules", description="llm: also ask the server's configured LLM (vision) to judge the image"),
) -> AssessAnswer:
    service = service_of(http)
    data = await image.read(service.settings.max_upload_bytes + 1)
    return await asyncio.to_thread(_assess, service, data, image.filename or "", text, model, refiner)


def _assess(service: JobService, data: bytes, filename: str, text: str | None, model: str | None, refiner: str) -> AssessAnswer:
    model = model or default_model()
    service.check_model(model)
    try:
        spec = spec_for(model)
    except ModelNotFoundError:
        raise InvalidInputError(f"model {echo(model)} is only on the workers' disks; this server cannot judge for it", field="model") from None
    loaded = service.load_upload(data, filename)
    llm = cache = None
    if refiner == "llm":
        from i2v.refine.cache import RefinementCache  # here and below: only with an LLM (openai, its answer cache)
        from i2v.refine.llm import LLMSettings

        llm, cache = LLMSettings(), RefinementCache.default()
    assessment = assess(loaded.image, spec=spec, llm=llm, cache=cache)
    refined = make_refiner(refiner, llm, spec=spec).refine(text, loaded.image) if text and text.strip() else None  # type: ignore[arg-type]
    device = None
    if service.queue.local_worker:  # the device jobs run on; a Redis pool's devices are the workers'
        device = probe_device()
    recommendation = advise(loaded.image, refined.tags if refined else None, model=model, assessment=assessment, device=device)
    record = AdviceRecord.model_validate({
        "assessment": assessment.summary(),
        "recommendation": {"preset": recommendation.preset, "applied": False, "fields": sorted(recommendation.request_fields())},
    })
    return AssessAnswer(
        assessment=assessment, refined=refined, recommendation=recommendation,
        request_fields=recommendation.request_fields(), advice=record,
    )


def _llm_settings():
    from i2v.refine.llm import LLMSettings

    return LLMSettings()


@router.post(
    "/jobs/{job_id}/troubleshoot", response_model=TroubleshootAnswer, operation_id="troubleshootJob",
    summary="What went wrong? A symptom of a finished job -> the proposed next run (optionally queued)",
    responses={
        **NOT_FOUND, 400: _error("The body nests JSON too deeply to parse"), 409: _error("The job is still queued or running"),
        422: _error("The body is not a JSON object (errors names `body`: not JSON, a list, form data, none), or a field "
                    "is invalid (errors names it: symptom, seed, …), or the job's model is unknown here (`model`)"),
        503: COMMON[503],
        429: {**_error("queue: too many jobs waiting (I2V_QUEUE_LIMIT)"), "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until a slot likely frees"}}},
        507: _error("queue: the server's data folder is full"),
    },
)
def troubleshoot_job(http: Request, job_id: str, body: TroubleshootBody) -> TroubleshootAnswer:
    service = service_of(http)
    job = service.get(job_id)
    if job.state in ACTIVE:
        raise JobStateError(f"job {job.id} is {job.state}; troubleshoot it once it has finished")
    try:  # what ran (the full request and its seed), else what the client asked for
        origin = public_metadata(service, job) if job.state == "succeeded" else {"request": job_view(service, job).request}
    except JobNotFoundError:
        origin = {"request": job_view(service, job).request}
    image_path = service.file(job, "image")
    with Image.open(image_path) as picture:
        size = picture.size
    proposal = propose(origin, body.symptom, seed=body.seed, from_job=job.id, image_size=size, llm=_llm_settings() if body.llm else None)
    queued = None
    if body.queue:
        queued = job_view(service, service.submit(proposal.request, image_path.read_bytes(), image_path.name))
    return TroubleshootAnswer(proposal=proposal, job=queued)
