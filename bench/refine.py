"""How long the offline rule refiner takes: its first use (jieba's tokenizer and CC-CEDICT are built then) and
each call after that, over the phrase table in tests/test_refine_rules.py; then, per target model, how long its
prompts are (words, against the model's word budget) and what a call costs when writing for it.

Each model's spec decides the form: I2VGen-XL's "short" prompt (≤ 60 words, for a 77-token CLIP) or Wan 2.2's
"detailed" paragraph (≤ 120 words); the reading, and so the tags, are the same for both.

The tests count that the tokenizer and the dictionary are built once (test_refine_rules.py); the time itself is
printed here, not asserted: it depends on the machine and on what else is running.

Run: python bench/refine.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from test_refine_dictionary import EVERYDAY, EVERYDAY2
from test_refine_rules import BLIND, TABLE

from i2v.models.registry import plugins
from i2v.refine.rules.refiner import RuleRefiner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="passes over the phrases after the first use")
    args = parser.parse_args()
    texts = [row[0] for row in TABLE + BLIND + EVERYDAY + EVERYDAY2]

    start = time.perf_counter()
    RuleRefiner().refine("猫转头")  # builds jieba's tokenizer
    tokenizer = time.perf_counter() - start
    start = time.perf_counter()
    RuleRefiner().refine("火车穿过隧道")  # reads CC-CEDICT
    dictionary = time.perf_counter() - start
    print(f"first use: jieba tokenizer {tokenizer * 1000:.0f} ms, CC-CEDICT {dictionary * 1000:.0f} ms")

    passes = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for text in texts:
            RuleRefiner().refine(text)
        passes.append((time.perf_counter() - start) / len(texts))
    print(f"after first use: {statistics.median(passes) * 1000:.2f} ms per call (median of {args.repeat} passes over "
          f"{len(texts)} phrases; best {min(passes) * 1000:.2f} ms, worst {max(passes) * 1000:.2f} ms)")
    per_model(texts, args.repeat)


def per_model(texts: list[str], repeat: int) -> None:
    """Per target model: the prompt form, words per prompt (min / median / max) against its budget, prompts over
    the budget, and ms per call (median of `repeat` passes)."""
    print(f"\nper target model, over the same {len(texts)} phrases:")
    print(f"{'model':<36} {'form':<9} {'budget':>6} {'words min/median/max':>21} {'over':>5} {'ms/call':>8}")
    for spec in (plugin.spec for plugin in plugins().values()):
        refiner = RuleRefiner(spec)
        counts = [len(refiner.refine(text).prompt.split()) for text in texts]
        passes = []
        for _ in range(repeat):
            start = time.perf_counter()
            for text in texts:
                refiner.refine(text)
            passes.append((time.perf_counter() - start) / len(texts))
        budget = spec.prompt.words
        over = sum(count > budget for count in counts) if budget else 0
        spread = f"{min(counts)}/{statistics.median(counts):g}/{max(counts)}"
        print(f"{spec.label:<36} {spec.prompt.form:<9} {budget or '-':>6} {spread:>21} {over:>5} "
              f"{statistics.median(passes) * 1000:>8.2f}")


if __name__ == "__main__":
    main()
