"""The short form: the clauses of a reading joined into one English prompt, the camera phrases appended ("...,
camera panning to the left, slow motion"), checked against the target model's prompt budget, with its negative
prompt, tags, settings hint and notes; the detailed form where the model's spec asks for it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from i2v.refine.base import CAMERA_TAGS, TEMPO_TAGS, RefinedPrompt, not_understood, settings_hint_for
from i2v.refine.rules.camera import CAMERA_PHRASES, MOVING_TAGS
from i2v.refine.rules.detailed import detailed
from i2v.refine.rules.parse import Clause, Reading
from i2v.refine.rules.text import CJK_RE

if TYPE_CHECKING:
    from i2v.models.spec import ModelSpec

GENERIC_PROMPT = "The scene comes alive with subtle natural motion."


def generic(spec: ModelSpec, note: str, dropped: list[str] | None = None) -> RefinedPrompt:
    """The prompt when nothing could be read (or the refiner failed): generic, honest about it in `notes`."""
    notes = [note, not_understood(dropped)] if dropped else [note]
    prompt = detailed(GENERIC_PROMPT, [], False, spec)[0] if spec.prompt.form == "detailed" else GENERIC_PROMPT
    return RefinedPrompt(prompt=prompt, negative_prompt=spec.negative_prompt or "", source="rules", notes=notes,
                         dropped=dropped or [])


def pronoun_for(clause: Clause | None) -> str:
    return clause.subject.pronoun() if clause is not None and clause.subject is not None else "their"


def render_clause(clause: Clause, previous: Clause | None) -> tuple[str, bool]:
    """English for one clause, and whether it continues the previous one ("A girl turning her head and smiling")."""
    continues = clause.subject is None and previous is not None and previous.subject is not None
    pieces: list[str] = []
    if clause.subject is not None:
        pieces.append(clause.subject.render())
    if clause.verbs:
        pieces.append(clause.motion(pronoun_for(clause if clause.subject is not None else previous)))
    pieces += clause.loose + list(dict.fromkeys(clause.envs))
    body = " ".join(p for p in pieces if p)
    if clause.events:
        body = ", ".join(p for p in [body, *clause.events] if p)
    if continues:
        return (" and " if clause.verbs else " ") + body, True
    return body, False


def _tag_group(tag: str | None) -> int:
    """Camera moves first, then tempo, then looping: "..., camera panning to the left, slow motion, seamless loop"."""
    return 0 if tag is None or tag in CAMERA_TAGS else 1 if tag in TEMPO_TAGS else 2


def assemble(reading: Reading, spec: ModelSpec) -> RefinedPrompt:
    """The reading as one RefinedPrompt for `spec`'s model: its form, budget and negative prompt decide the rest."""
    hits = sorted(reading.hits, key=lambda h: (_tag_group(h.tag), h.start))
    tags = list(dict.fromkeys(h.tag for h in hits if h.tag))
    said = [h.phrase for h in hits if not h.inline]
    notes = list(dict.fromkeys(h.note for h in hits if h.note))
    camera = list(dict.fromkeys(h.phrase if not h.inline else CAMERA_PHRASES.get(h.tag or "", h.phrase) for h in hits))
    if {"pan_left", "pan_right"} <= set(tags) or ("static_camera" in tags and MOVING_TAGS & set(tags)):
        notes.append(f"conflicting camera instructions: {', '.join(tags)}")
    dropped = [d for d in dict.fromkeys(d.strip() for d in reading.dropped) if d]
    looked_up: dict[str, str] = {}
    for word, english in reading.guessed:
        looked_up.setdefault(word, english)
    if looked_up:
        notes.append(f"from the dictionary: {', '.join(f'{w} = {e}' for w, e in looked_up.items())}")
    if dropped:
        notes.append(not_understood(dropped))
    generic_body = not reading.parts and not said
    if generic_body:
        if not tags:
            return generic(spec, "nothing in the text could be understood; generic prompt used", dropped)
        said = [GENERIC_PROMPT.rstrip(".")]

    prompt = ""
    for i, part in enumerate(reading.parts):
        capitalize = i == 0 or reading.parts[i - 1].sentence_end
        prompt += (part.text[:1].upper() + part.text[1:]) if capitalize else part.text
        if i < len(reading.parts) - 1:
            prompt += ". " if part.sentence_end else ", "
    body = GENERIC_PROMPT if generic_body else prompt
    if said:
        tail = ", ".join(dict.fromkeys(said))
        prompt = f"{prompt.rstrip('.!? ')}, {tail}" if prompt else tail[:1].upper() + tail[1:]
    prompt = re.sub(r"\s+", " ", CJK_RE.sub(" ", prompt)).strip(" ,;")
    if prompt[-1:] not in (".", "!", "?"):
        prompt += "."
    words, budget = len(prompt.split()), spec.prompt
    if budget.form == "detailed":
        prompt, cut = detailed(body, hits, reading.still, spec)
        if cut:
            notes.append(
                f"the text does not fit {spec.label}'s {budget.words}-word prompt budget beside its camera and "
                "tempo sentences: its end was cut (edit the prompt to choose what stays)"
            )
    elif budget.words and (words > budget.words or len(prompt) > budget.words * 7):
        read = f"reads {budget.tokens} tokens" if budget.tokens else f"is written for at most {budget.words} words"
        notes.append(f"prompt is {words} words / {len(prompt)} characters: {spec.label} {read}, so the end may be cut off")

    negative = spec.negative_prompt or ""
    if reading.still and negative:
        terms = [t.strip() for t in negative.split(",")]
        negative = ", ".join(t for t in terms if t.lower() not in ("motionless", "static"))
    return RefinedPrompt(
        prompt=prompt if len(prompt) > 1 else GENERIC_PROMPT, negative_prompt=negative, tags=tags,
        subject=reading.subject, motion=reading.motion, camera=", ".join(camera), source="rules", notes=notes,
        settings_hint=settings_hint_for(tags, spec), dropped=dropped, from_dictionary=looked_up,
    )
