"""Segmentation: a clause's Chinese into words (jieba, with the lexicon's words weighted up, or the lexicon's
own longest match without jieba), each word into lexicon tokens, dictionary words (their role still open) or
unknown pieces; English words grouped into runs; numbers and classifiers into quantities."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from i2v.paths import data_dir
from i2v.refine import dictionary
from i2v.refine.rules.lexicon import CLASSIFIERS, DEFINITE_RE, LEXICON, NUMERALS, QUANTITY_RE

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
#: Chinese | English word | number | any other script (kana, hangul, Cyrillic...: reported as not understood).
_RUN_RE = re.compile(
    f"([{_HAN}]+)|([A-Za-z\u00c0-\u024f][A-Za-z\u00c0-\u024f'’-]*)|(\\d+)|([^\\W\\dA-Za-z\u00c0-\u024f{_HAN}]+)"
)

#: Longest piece tried when splitting a word neither the lexicon nor the dictionary has whole.
_MAX_PIECE = max(6, *(len(w) for w in LEXICON))

_jieba: Any = None
_jieba_lock = threading.Lock()


def _tokenizer() -> Any:
    """jieba with our lexicon, built once on first use (loading its dictionary takes about half a second).

    False when jieba is not installed: the lexicon's own longest-match segmentation then does the work, a little
    worse on words the lexicon lacks, so that the default refiner still works.
    """
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                try:
                    import jieba
                except ImportError:
                    logging.getLogger(__name__).warning("jieba is not installed; segmenting Chinese by the lexicon")
                    _jieba = False
                    return _jieba
                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.tmp_dir = str(_cache_folder())
                tokenizer.initialize()
                # A high frequency makes jieba prefer our words over its own odd ones ("随风飘", "飘着雪").
                for word in LEXICON:
                    if len(word) > 1:
                        tokenizer.add_word(word, freq=200_000)
                _jieba = tokenizer
    return _jieba


def _cache_folder() -> Path:
    """Where jieba keeps its prefix dictionary (9 MB, loaded with marshal on the next start): i2v's data folder,
    this user's only. jieba's default, the shared temp folder, lets another local user plant a `jieba.cache`
    first, which it would load without a check: a segmenter of their choosing, or a crash."""
    folder = data_dir() / "cache"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _segment(chinese: str) -> tuple[list[str], bool]:
    """jieba's words (True), or the whole run for the lexicon to split when jieba is missing (False)."""
    tokenizer = _tokenizer()
    return (tokenizer.lcut(chinese, HMM=False), True) if tokenizer else ([chinese], False)


@dataclass
class Token:
    kind: str  # a lexicon category, or num / qty / english / unknown / dict
    value: Any
    raw: str
    joined: bool = False  # a later piece of a word jieba gave whole: 面包师 = 面包 + 师 names one thing


def _lexicon_tokens(word: str, guess: bool = True) -> list[Token]:
    """Split a jieba word we lack by forward maximum matching over the lexicon and the dictionary (the
    lexicon first at equal length); what neither knows is unknown."""
    tokens: list[Token] = []
    i = 0
    while i < len(word):
        for size in range(min(_MAX_PIECE, len(word) - i), 0, -1):
            piece = word[i:i + size]
            known = _known(piece) or (_guess(piece) if guess else None)
            if known is not None:
                tokens.append(known)
                i += size
                break
        else:
            if tokens and tokens[-1].kind == "unknown":
                tokens[-1].raw += word[i]
            else:
                tokens.append(Token("unknown", None, word[i]))
            i += 1
    return tokens


def _known(word: str) -> Token | None:
    """The token for a lexicon word or a quantity ("两只", "这个", "三"), else None."""
    if word in LEXICON:
        kind, value = LEXICON[word]
        return Token(kind, value, word)
    quantity = QUANTITY_RE.match(word)
    if quantity:
        number, classifier = quantity.groups()
        amount = "group" if classifier == "群" else NUMERALS.get(number, number)
        if classifier == "对":
            amount = "pair" if number in ("一", "1") else amount
        return Token("qty", amount, word)
    if DEFINITE_RE.match(word):
        return Token("qty", "the", word)
    if word in NUMERALS:
        return Token("num", NUMERALS[word], word)
    return None


def _guess(word: str) -> Token | None:
    """A dictionary word, its role (noun or verb) still open: the reader decides from its neighbours."""
    sense = dictionary.lookup(word)
    return Token("dict", sense, word) if sense is not None else None


_GRAMMAR = frozenset({"loc", "at", "de", "ignore", "toward", "neg", "dir", "and", "with"})


def _classify(word: str, whole_word: bool) -> list[Token]:
    """Tokens for one segment: the lexicon's word; its lexicon pieces when that is plain grammar around one
    content word (坐在 = 坐 + 在, 海上 = 海 + 上: "on the sea", not the dictionary's "maritime"); else the
    dictionary's whole word (火车站 is "train station", not 火车 + 站, "a train standing"); else its pieces,
    lexicon or dictionary; unknown when a piece is unknown."""
    known = _known(word)
    if known is not None:
        return [known]
    pieces = _lexicon_tokens(word, guess=False)
    if all(p.kind != "unknown" for p in pieces) and len([p for p in pieces if p.kind not in _GRAMMAR]) <= 1:
        return pieces
    guess = _guess(word)
    if guess is not None:
        return [guess]
    pieces = _lexicon_tokens(word)
    for piece in pieces[1:]:
        piece.joined = True
    if not whole_word or all(p.kind != "unknown" for p in pieces):
        return pieces
    return [Token("unknown", None, word)]


def _merge_idioms(words: list[str]) -> list[str]:
    """Rejoin jieba's pieces of a dictionary idiom or set phrase ("夕阳" "西下" -> 夕阳西下) before splitting, and
    move a boundary our lexicon's weights pulled too far: "夜" "空中" -> "夜空" "中"."""
    words = list(words)
    for i in range(len(words) - 1):
        first, second = words[i], words[i + 1]
        if (first not in LEXICON and len(second) > 1 and second in LEXICON and second[1:] in LEXICON
                and dictionary.lookup(first + second[0]) is not None):
            words[i], words[i + 1] = first + second[0], second[1:]
    merged: list[str] = []
    i = 0
    while i < len(words):
        for j in range(min(len(words), i + 4), i + 1, -1):
            span = words[i:j]
            joined = "".join(span)
            # Words all in the lexicon are understood already (and need no dictionary loaded).
            if 3 <= len(joined) <= 8 and not all(w in LEXICON for w in span) \
                    and not any(w in LEXICON and LEXICON[w][0] in _GRAMMAR for w in span) \
                    and dictionary.lookup(joined) is not None:
                merged.append(joined)
                i = j
                break
        else:
            merged.append(words[i])
            i += 1
    return merged


def clause_tokens(clause: str) -> list[Token]:
    """Lexicon tokens for a clause: Chinese through jieba, English words grouped into runs, numbers."""
    tokens: list[Token] = []
    for match in _RUN_RE.finditer(clause):
        chinese, english, digits, other = match.groups()
        if chinese:
            words, whole = _segment(chinese)
            for word in _merge_idioms(words) if whole else words:
                for token in _classify(word, whole):
                    if token.kind == "unknown" and tokens and tokens[-1].kind == "unknown":
                        tokens[-1].raw += token.raw
                    else:
                        tokens.append(token)
        elif english:
            if tokens and tokens[-1].kind == "english" and clause[match.start() - 1:match.start()] in (" ", "-"):
                tokens[-1].raw += " " + english
            else:
                tokens.append(Token("english", None, english))
        elif digits:
            tokens.append(Token("num", digits, digits))
        elif other:
            tokens.append(Token("unknown", None, other))
    # Numerals followed by a separate classifier ("3" "只", "两" "只") become one quantity.
    merged: list[Token] = []
    for token in tokens:
        if merged and merged[-1].kind == "num" and token.raw in CLASSIFIERS:
            merged[-1] = Token("qty", "group" if token.raw == "群" else merged[-1].value, merged[-1].raw + token.raw)
        else:
            merged.append(token)
    return [Token("qty", t.value, t.raw) if t.kind == "num" else t for t in merged]
