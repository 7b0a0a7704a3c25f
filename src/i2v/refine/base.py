"""What a refiner returns, the tag vocabulary, and the protocol every refiner implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
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

    num_frames: int | None = Field(default=None, ge=8, le=32)
    fps: int | None = Field(default=None, ge=4, le=30)
    motion_fps: int | None = Field(default=None, ge=4, le=30)
    guidance_scale: float | None = Field(default=None, ge=1, le=20)
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


def settings_hint_for(tags: list[str]) -> SettingsHint | None:
    """Map tempo and camera tags to settings: slow motion wants more frames played slower, and so on."""
    if "slow_motion" in tags:
        return SettingsHint(num_frames=24, fps=8, motion_fps=8, reason="slow_motion: more frames, played at 8 fps")
    if "timelapse" in tags:
        return SettingsHint(num_frames=16, fps=16, motion_fps=16, reason="timelapse: fast motion condition")
    if "fast_motion" in tags:
        return SettingsHint(num_frames=16, fps=16, motion_fps=16, reason="fast_motion: high motion fps")
    if "static_camera" in tags:
        return SettingsHint(guidance_scale=9.0, reason="static_camera: keep the reference guidance")
    if "loop" in tags:
        return SettingsHint(num_frames=16, reason="loop: the validated 16-frame length loops most cleanly")
    return None
