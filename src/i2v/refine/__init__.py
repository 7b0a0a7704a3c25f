"""Prompt intelligence: raw (often Chinese) text + the image -> English prompt and motion tags.

`rules` (offline, the default) and `llm` (any OpenAI-compatible endpoint, falling back to rules) implement the
`Refiner` protocol; `none` keeps the user's text as typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from i2v.refine.base import TAGS, RefinedPrompt, Refiner, SettingsHint

if TYPE_CHECKING:
    from PIL import Image

    from i2v.models.spec import ModelSpec
    from i2v.refine.llm import LLMSettings

RefinerKind = Literal["rules", "llm", "none"]
__all__ = ["TAGS", "RefinedPrompt", "Refiner", "RefinerKind", "SettingsHint", "make_refiner", "refine"]


def target_spec(spec: ModelSpec | None) -> ModelSpec:
    """The model a refiner writes for: its prompt budget and default negative prompt (the default model's when
    none is named)."""
    if spec is not None:
        return spec
    from i2v.models.registry import spec_for
    from i2v.request import default_model

    return spec_for(default_model())


class AsTyped:
    """The user's text, untouched (`--no-refine`)."""

    name = "none"

    def __init__(self, spec: ModelSpec | None = None):
        self.spec = target_spec(spec)

    def refine(self, text: str, image: Image.Image | None = None) -> RefinedPrompt:
        return RefinedPrompt(prompt=text.strip(), negative_prompt=self.spec.negative_prompt or "", source="user")


def make_refiner(
    kind: RefinerKind = "rules", llm: LLMSettings | None = None, *, cache: bool = True, spec: ModelSpec | None = None
) -> Refiner:
    """A refiner writing for `spec`'s model (its prompt budget, its negative prompt)."""
    from i2v.refine.rules.refiner import RuleRefiner

    spec = target_spec(spec)
    if kind == "none":
        return AsTyped(spec)
    if kind == "rules":
        return RuleRefiner(spec)
    if kind == "llm":
        from i2v.refine.cache import RefinementCache
        from i2v.refine.llm import LLMRefiner

        return LLMRefiner(llm, fallback=RuleRefiner(spec), cache=RefinementCache.default() if cache else None, spec=spec)
    raise ValueError(f"refiner must be rules, llm or none, got {kind!r}")


def refine(
    text: str,
    image: Image.Image | None = None,
    *,
    refiner: RefinerKind = "rules",
    llm: LLMSettings | None = None,
    model: str | None = None,
) -> RefinedPrompt:
    """Python API: `i2v.refine("猫转头")` -> RefinedPrompt, written for `model` (the default model when None)."""
    from i2v.models.registry import spec_for

    return make_refiner(refiner, llm, spec=spec_for(model) if model else None).refine(text, image)
