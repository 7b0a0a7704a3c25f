"""The advisor's part in a request (`GenerationRequest.advice`): what the assessment found, which recommendation
was applied, the troubleshooting chain a run came from. Recorded with the job and the clip, never acted on.

Plain bounded records on the ground floor, beside `request.py`, which carries one: the advisor fills them in
(advisor/recommend.py, advisor/troubleshoot.py) and the request validates them at every edge, without the
request importing the advisor.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from i2v.limits import MAX_PROMPT_CHARS, echo

#: The troubleshooter's symptoms, in its table's order: a record names one of these. advisor.troubleshoot.SYMPTOMS
#: has one row for each (tests/test_troubleshoot.py holds the two together).
SYMPTOM_NAMES = (
    "stiff", "flicker", "prompt_ignored", "wrong_camera", "too_slow", "subject_changed", "out_of_memory",
    "too_little_motion", "blurry",
)
#: The advice record is stored with the job and returned in every history listing: its JSON is capped at this.
MAX_ADVICE_CHARS = 32_000
#: A request field's name, a warning code: short snake_case words.
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
#: A setting's value before or after a change: a prompt at most, as long as the request takes one.
Value = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | int | float | bool | None


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssessmentSummary(_Record):
    """What the advisor's image assessment found, as a clip's metadata keeps it."""

    source: str = Field(max_length=200, pattern=r"^(offline|llm:[^\x00-\x1f]+)$", description="offline, or llm:PRESET/MODEL")
    suitability: int = Field(ge=1, le=5)
    subject: str | None = Field(default=None, max_length=200)
    warnings: list[Name] = Field(default_factory=list, max_length=32, description="Warning codes (small, blurred, text, …)")


class RecommendationRecord(_Record):
    """Whether the advisor's recommended settings were applied, and which."""

    preset: Literal["fast", "standard", "quality"]
    applied: bool
    fields: list[Name] = Field(default_factory=list, max_length=32, description="The settings taken from it")


class Change(_Record):
    field: Name = Field(description="A request field, or prompt / negative_prompt / seed")
    before: Value = None
    after: Value = None
    reason: str = Field(max_length=500)


class TroubleshootStep(_Record):
    """One "what went wrong?" answer: the run it came from, the symptom, and what was changed."""

    from_job: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$", description="The job id the run came from")
    from_clip: str | None = Field(
        default=None, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$", description="Or the clip's metadata file name"
    )
    symptom: str = Field(description="A symptom the troubleshooter knows (advisor.troubleshoot.SYMPTOMS)")
    seed: Literal["same", "new"]
    changes: list[Change] = Field(default_factory=list, max_length=16)

    @field_validator("symptom")
    @classmethod
    def _known_symptom(cls, value: str) -> str:
        if value not in SYMPTOM_NAMES:
            raise ValueError(f"symptom must be one of {', '.join(SYMPTOM_NAMES)}, got {echo(value)}")
        return value


class AdviceRecord(_Record):
    """The advisor's part in a request, passed through unchanged into the clip's metadata (so bounded: it is
    stored with the job and listed in its history)."""

    assessment: AssessmentSummary | None = None
    recommendation: RecommendationRecord | None = None
    troubleshooting: list[TroubleshootStep] = Field(
        default_factory=list, max_length=32, description="The chain of runs this one came from, oldest first"
    )

    @model_validator(mode="after")
    def _bounded(self) -> AdviceRecord:
        if len(self.model_dump_json()) > MAX_ADVICE_CHARS:
            raise ValueError(f"the advice record is over {MAX_ADVICE_CHARS} characters of JSON")
        return self

    def with_step(self, step: TroubleshootStep) -> AdviceRecord:
        """This record with `step` at the end of the chain, dropping the oldest steps while it is over the bounds."""
        chain = [*self.troubleshooting, step]
        while True:
            candidate = self.model_copy(update={"troubleshooting": chain[-32:]})
            if len(candidate.model_dump_json()) <= MAX_ADVICE_CHARS or len(chain) == 1:
                return AdviceRecord.model_validate(candidate.model_dump())
            chain = chain[1:]
