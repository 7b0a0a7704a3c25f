"""The detailed form, for a model whose text encoder reads hundreds of tokens and follows 80-120-word prompts
(Wan 2.2): the short form's reading written out as a structured paragraph: the subject and its action, the
manner and tempo of the motion (from the tempo tags), the camera (from the camera tags; "the camera stays still"
when none was asked for), then a sentence keeping the look of the image, within the spec's word budget."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from i2v.refine.base import CAMERA_TAGS
from i2v.refine.rules.camera import MOVING_TAGS, CameraHit
from i2v.refine.rules.text import CJK_RE

if TYPE_CHECKING:
    from i2v.models.spec import ModelSpec

#: Each camera tag as a sentence; {manner} is the user's adverb ("slowly") or nothing. The words of the short
#: form's phrase survive ("camera panning to the left" -> "the camera pans to the left"); nothing is placed in
#: the scene that the image does not hold ("the subject" is whatever the image shows).
DETAILED_CAMERA: dict[str, str] = {
    "pan_left": "The camera {manner}pans to the left across the scene",
    "pan_right": "The camera {manner}pans to the right across the scene",
    "tilt_up": "The camera {manner}tilts up",
    "tilt_down": "The camera {manner}tilts down",
    "zoom_in": "The camera {manner}zooms in, tightening the frame on the subject",
    "zoom_out": "The camera {manner}zooms out, widening the frame around the subject",
    "dolly_in": "The camera {manner}pushes in toward the subject",
    "dolly_out": "The camera {manner}pulls back from the subject, widening the view",
    "orbit_left": "The camera {manner}orbits to the left around the subject",
    "orbit_right": "The camera {manner}orbits to the right around the subject",
    "static_camera": "The camera is static and stays completely still, locked in place",
    "handheld": "The camera is handheld, with a slight, natural shake",
}
#: Camera language without a tag (`CameraHit.tag` None), as a sentence.
DETAILED_SHOTS: dict[str, str] = {
    "tracking shot": "It is a tracking shot, the camera following the subject as it moves",
    "aerial shot": "It is an aerial shot, seen from above",
    "close-up": "It is a close-up",
    "wide shot": "It is a wide shot",
    "first-person view": "It is seen from a first-person view",
    "camera panning": "The camera pans across the scene",
}
DETAILED_TEMPO: dict[str, str] = {
    "slow_motion": "Everything moves in slow motion, each movement drawn out, smooth and fluid",
    "fast_motion": "The action plays in fast motion, sped up, with brisk, quick movement",
    "timelapse": "It is a time-lapse: time passes quickly and the movement flows on steadily",
    "loop": "It is a seamless loop: the motion returns to where it began, so the last frame flows back into the first",
}
#: No tempo tag: a tempo sentence that claims no speed the user did not ask for.
DETAILED_NATURAL = "The movement is smooth and natural and carries on through the whole clip"
#: The user asked for stillness ("一动不动", "a still lake"): nothing is set moving that they did not name.
DETAILED_STILL = "Only what is described moves; the rest of the scene holds still"
DETAILED_NO_CAMERA = "The camera stays still, holding the framing of the image"
DETAILED_LOOK = ("The lighting, colors and style stay as they are in the image, and the subject keeps the same "
                 "appearance throughout, in one continuous shot without cuts")
_CAMERA_MANNER = re.compile(r"^camera (\w+ly) ")


def _camera_sentence(hit: CameraHit) -> str:
    if hit.tag in DETAILED_CAMERA:
        manner = _CAMERA_MANNER.match(hit.phrase)
        text = DETAILED_CAMERA[hit.tag].format(manner=f"{manner.group(1)} " if manner else "")
        if hit.tag in MOVING_TAGS:  # a comma first after an aside: "zooms in, tightening the frame, in one ..."
            move = " in one continuous move" if manner else " in one smooth, continuous move"
            text += ("," if "," in text else "") + move
        return text
    return DETAILED_SHOTS.get(hit.phrase, f"Camera: {hit.phrase}")


def _sentence(text: str) -> str:
    text = re.sub(r"\s+", " ", CJK_RE.sub(" ", text)).strip(" ,;")
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in (".", "!", "?") else text + "."


def detailed(body: str, hits: list[CameraHit], still: bool, spec: ModelSpec) -> tuple[str, bool]:
    """The structured prompt for a "detailed" spec, and whether the user's own text had to be cut to fit the
    spec's word budget.

    Order: the subject and its action (the short form's text without its camera tail), the manner and tempo, the
    camera, the look of the image. The sentences that claim nothing the tags say ("the camera stays still", the
    look of the image) go first when the budget is tight; those that carry a tag always stay."""
    tagged = [h for h in hits if h.tag is None or h.tag in CAMERA_TAGS]
    camera = list(dict.fromkeys(_camera_sentence(h) for h in tagged)) or [DETAILED_NO_CAMERA]
    tempo = list(dict.fromkeys(DETAILED_TEMPO[h.tag] for h in hits if h.tag in DETAILED_TEMPO))
    manner = tempo or [DETAILED_STILL if still else DETAILED_NATURAL]
    body = _sentence(body)
    # Without a subject ("镜头慢慢推近") the camera move is what the clip is about: it leads.
    order = [body, *manner, *camera] if body else [*camera, *manner]
    sentences = [s for s in (_sentence(s) for s in [*order, DETAILED_LOOK]) if s]
    limit = spec.prompt.words

    def count(items: list[str]) -> int:
        return sum(len(s.split()) for s in items)

    for drop in (None, DETAILED_LOOK, DETAILED_NO_CAMERA, DETAILED_NATURAL, DETAILED_STILL):
        if drop is not None:
            sentences = [s for s in sentences if s != _sentence(drop)]
        if not limit or count(sentences) <= limit:
            return " ".join(sentences), False
    # The user's own text is over the budget: keep its start and every tag's sentence.
    room = limit - count([s for s in sentences if s != body])
    if body and room > 0:
        kept = " ".join(body.split()[:room]).rstrip(",;:.!?") + "."
        return " ".join(kept if s == body else s for s in sentences), True
    words = " ".join(sentences).split()[:limit]  # the tags' sentences alone are over it: a pathological text
    return " ".join(words).rstrip(",;:") + ("" if words[-1][-1:] in ".!?" else "."), True
