"""The offline rule refiner: split the text into clauses, take the camera language out of each (`camera`),
read what is left (`segment`, `parse`) and write the prompt for the target model (`render`, `detailed`)."""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import TYPE_CHECKING

from i2v.refine.base import RefinedPrompt
from i2v.refine.rules.camera import (
    CN_CAMERA_CONTEXT,
    EN_CAMERA_FILLER,
    CameraHit,
    find_cn_camera,
    find_en_camera,
    manner_of,
    with_manner,
)
from i2v.refine.rules.parse import Clause, ClauseReader, Part, Reading, english_fields
from i2v.refine.rules.render import GENERIC_PROMPT, assemble, generic, pronoun_for, render_clause
from i2v.refine.rules.segment import clause_tokens
from i2v.refine.rules.text import CJK_RE

if TYPE_CHECKING:
    from PIL import Image

    from i2v.models.spec import ModelSpec

__all__ = ["GENERIC_PROMPT", "RuleRefiner", "refine_text"]

_STILL_EN = re.compile(r"\b(?:still|motionless|static|frozen|stationary|unmoving|not\s+moving|no\s+motion)\b", re.I)
_STILL_CN = re.compile(r"静止|不动|一动不动|静静")
_SPLIT_RE = re.compile(r"([,;!?\n。、]|\.(?=\s|$))")
_SENTENCE_END = frozenset({".", "!", "?", "。"})


def _tidy_english(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;")
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    return re.sub(r"([,;])(?=\S)", r"\1 ", text)


def _normalize(text: str) -> str:
    """Fullwidth forms to ASCII; emoji, symbols and control characters to spaces."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(" " if unicodedata.category(c)[0] == "C" and c != "\n" or unicodedata.category(c) in ("So", "Sk") else c
                   for c in text)


class RuleRefiner:
    """The offline refiner: lexicon + jieba + regular expressions. Deterministic and a few ms per call.

    It writes for one model (`spec`, the default model's when None): the model's prompt budget decides when the
    prompt is too long to be read whole, and its default negative prompt is the one tailored to the scene."""

    name = "rules"

    def __init__(self, spec: ModelSpec | None = None):
        from i2v.refine import target_spec

        self.spec = target_spec(spec)

    def refine(self, text: str, image: Image.Image | None = None) -> RefinedPrompt:
        try:
            return refine_text(text if isinstance(text, str) else str(text or ""), self.spec)
        except Exception as error:  # the fallback of the fallback: a refiner must never block a job
            logging.getLogger(__name__).exception("rule refiner failed")
            return generic(self.spec, f"rule refiner error ({type(error).__name__}); generic prompt used")


def refine_text(text: str, spec: ModelSpec) -> RefinedPrompt:
    """The reading and the writing, without the refiner's catch-all: a bug here raises (what tests call)."""
    return assemble(read(text), spec)


def read(text: str) -> Reading:
    """Split into clauses, take the camera language out of each, and read what is left."""
    reading = Reading()
    pieces = _SPLIT_RE.split(_normalize(text))
    previous: Clause | None = None
    offset = 0
    for i in range(0, len(pieces), 2):
        raw, delimiter = pieces[i], (pieces[i + 1] if i + 1 < len(pieces) else "")
        base, offset = offset, offset + len(raw) + len(delimiter)
        if not raw.strip():
            continue
        ends_sentence = delimiter in _SENTENCE_END
        has_cjk = bool(CJK_RE.search(raw))
        cn_hits, rest = find_cn_camera(raw) if has_cjk else ([], raw)
        en_hits, rest = find_en_camera(rest)
        for hit in cn_hits + en_hits:
            hit.start += base
        if not has_cjk:
            _read_english(raw, rest, en_hits, ends_sentence, reading)
            previous = None
            continue
        reading.hits += cn_hits + en_hits
        if cn_hits:  # the clause named the camera for its move: a 镜头 left over is not a subject ("镜头仰拍")
            rest = CN_CAMERA_CONTEXT.sub(lambda m: " " * len(m.group()), rest)
        reading.still |= bool(_STILL_EN.search(CJK_RE.sub(" ", rest)) or _STILL_CN.search(rest))
        reader = ClauseReader(clause_tokens(rest))
        clauses = reader.read()
        reading.guessed += reader.guessed
        for n, clause in enumerate(clauses):
            previous = _add_clause(clause, previous, ends_sentence and n == len(clauses) - 1, reading)
    return reading


def _add_clause(clause: Clause, previous: Clause | None, ends_sentence: bool, reading: Reading) -> Clause | None:
    """Render a Chinese clause into the reading; returns the clause later subjectless clauses lean on."""
    reading.dropped += clause.dropped
    reading.still |= clause.still
    if not clause.understood():
        return previous
    body, continues = render_clause(clause, previous)
    if continues and reading.parts:
        reading.parts[-1].text += body
        reading.parts[-1].sentence_end = ends_sentence
    else:
        reading.parts.append(Part(body, ends_sentence))
    pronoun = pronoun_for(clause if clause.subject is not None else previous)
    if clause.subject is not None and not reading.subject:
        reading.subject, reading.motion = clause.subject.render(), clause.motion(pronoun)
    elif clause.verbs and not reading.motion:
        reading.motion = clause.motion(pronoun)
    return clause if clause.subject is not None or previous is None else previous


def _read_english(raw: str, rest: str, hits: list[CameraHit], ends_sentence: bool, reading: Reading) -> None:
    """An English clause is kept as written, unless it is only camera words: those we restate plainly."""
    leftover = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]*", rest.lower()) if w not in EN_CAMERA_FILLER]
    if hits and not leftover:
        manner = manner_of(re.sub(r"slow[-\s]?mo(?:tion)?", " ", raw, flags=re.IGNORECASE))
        reading.hits += [CameraHit(h.tag, with_manner(h.tag, h.phrase, manner), h.start, h.note) for h in hits]
        return
    for hit in hits:
        hit.inline = True
    reading.hits += hits
    if not re.search(r"[A-Za-z]", raw):
        reading.dropped.append(raw.strip())
        return
    kept = _tidy_english(raw)
    reading.still |= bool(_STILL_EN.search(rest))
    if not reading.subject:
        reading.subject, motion = english_fields(kept)
        reading.motion = reading.motion or motion
    reading.parts.append(Part(kept, ends_sentence))
