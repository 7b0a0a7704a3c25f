"""How long the offline rule refiner takes: its first use (jieba's tokenizer and CC-CEDICT are built then) and
each call after that, over the phrase table in tests/test_refine_rules.py.

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

from i2v.refine.rules import RuleRefiner


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


if __name__ == "__main__":
    main()
