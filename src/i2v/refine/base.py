"""What a refiner returns, the tag vocabulary, and the protocol every refiner implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from i2v.models.spec import ModelSpec
    from PIL import Image

Tag = Literal[
    "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "dolly_in", "dolly_out",
    "orbit_left", "orbit_right", "static_camera", "handheld", "slow_motion", "fast_motion", "timelapse", "loop",
]
TAGS: tuple[str, ...] = get_args(Tag)
CAMERA_TAGS = frozenset(TAGS[:12])
TEMPO_TAGS = frozenset({"slow_motion", "fast_motion", "timelapse"})


class SettingsHint(BaseModel):
    """Settings the tags suggest; the user's explicit settings always win."""

    model_config = ConfigDict(extra="forbid")

    num_frames: int | None = None
    fps: int | None = None
    motion_fps: int | None = None
    guidance_scale: float | None = None
    reason: str = ""


class RefinedPrompt(BaseModel):
    """The English prompt the video model reads, with the structure we derived it from."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    negative_prompt: str = ""
    tags: list[Tag] = Field(default_factory=list)
    subject: str = ""
    motion: str = ""
    camera: str = ""
    source: str = Field(description="rules, llm:<preset>/<model>, or user")
    notes: list[str] = Field(default_factory=list)
    settings_hint: SettingsHint | None = None
    dropped: list[str] = Field(
        default_factory=list,
        description="Words of the user's text that are not in the prompt: shown beside it so the user can edit",
    )
    from_dictionary: dict[str, str] = Field(
        default_factory=dict,
        description="Words the offline refiner's lexicon lacks, with the dictionary's English that the prompt uses",
    )


def not_understood(words: list[str]) -> str:
    """One line naming the words a prompt leaves out, worded for the user who can still edit the prompt."""
    return f"not understood (edit the prompt if they matter): {', '.join(words)}"


class Refiner(Protocol):
    """Turns raw user text (+ the image) into a RefinedPrompt. Must never raise for ordinary input."""

    name: str

    def refine(self, text: str, image: Image.Image | None = None) -> RefinedPrompt: ...


def settings_hint_for(tags: list[str], spec: ModelSpec) -> SettingsHint | None:
    """Tempo and camera tags to settings, within the target model's own rules: slow motion wants more frames
    played slower, fast motion or a time-lapse the fastest motion conditioning the model was trained with, a loop
    the length the model was validated at."""
    frames, fps, motion = spec.frames, spec.fps, spec.motion_fps
    if "slow_motion" in tags:
        more = frames.nearest(round(frames.default * 1.5))[-1]
        slower = max(fps.min, fps.default // 2)
        return SettingsHint(
            num_frames=more, fps=slower, motion_fps=motion.trained[0] if motion else None,
            reason=f"slow_motion: more frames ({more}), played at {slower} fps",
        )
    for tag in ("timelapse", "fast_motion"):
        if tag in tags:
            return SettingsHint(
                num_frames=frames.default, fps=fps.default, motion_fps=motion.trained[1] if motion else None,
                reason=f"{tag}: the model's default length and rate" + (", the fastest motion condition" if motion else ""),
            )
    if "static_camera" in tags and spec.guidance is not None:
        return SettingsHint(guidance_scale=spec.guidance.default, reason="static_camera: keep the model's default guidance")
    if "loop" in tags:
        length = frames.validated or frames.default
        return SettingsHint(num_frames=length, reason=f"loop: the {length}-frame length the model was validated at loops most cleanly")
    return None
