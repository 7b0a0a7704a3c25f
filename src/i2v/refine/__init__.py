"""Prompt intelligence: raw (often Chinese) text + the image -> English prompt and motion tags.

`rules` (offline, the default) and `llm` (any OpenAI-compatible endpoint, falling back to rules) implement the
`Refiner` protocol; `none` keeps the user's text as typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from i2v.refine.base import TAGS, RefinedPrompt, Refiner, SettingsHint

if TYPE_CHECKING:
    from PIL import Image

    from i2v.refine.llm import LLMSettings

RefinerKind = Literal["rules", "llm", "none"]
__all__ = ["TAGS", "RefinedPrompt", "Refiner", "RefinerKind", "SettingsHint", "make_refiner", "refine"]


class AsTyped:
    """The user's text, untouched (`--no-refine`)."""

    name = "none"

    def refine(self, text: str, image: Image.Image | None = None) -> RefinedPrompt:
        from i2v.request import DEFAULT_NEGATIVE_PROMPT

        return RefinedPrompt(prompt=text.strip(), negative_prompt=DEFAULT_NEGATIVE_PROMPT, source="user")


def make_refiner(kind: RefinerKind = "rules", llm: LLMSettings | None = None, *, cache: bool = True) -> Refiner:
    from i2v.refine.rules import RuleRefiner

    if kind == "none":
        return AsTyped()
    if kind == "rules":
        return RuleRefiner()
    if kind == "llm":
        from i2v.refine.cache import RefinementCache
        from i2v.refine.llm import LLMRefiner

        return LLMRefiner(llm, fallback=RuleRefiner(), cache=RefinementCache.default() if cache else None)
    raise ValueError(f"refiner must be rules, llm or none, got {kind!r}")


def refine(
    text: str, image: Image.Image | None = None, *, refiner: RefinerKind = "rules", llm: LLMSettings | None = None
) -> RefinedPrompt:
    """Python API: `i2v.refine("猫转头")` -> RefinedPrompt."""
    return make_refiner(refiner, llm).refine(text, image)
