"""The curated lexicon, read from `lexicon.json` (shipped with the package): Chinese words to English nouns,
actions, adjectives, manners, directions, places and grammar words, and the English words the reader sorts
mixed clauses with. Editing a word means editing the data file, not this code."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class Noun:
    """An English noun with what we need to put an article, a plural and a pronoun around it."""

    en: str
    kind: str = "count"  # count | plural | mass | the | pron
    pos: str = "its"  # possessive pronoun for "turning {pos} head"
    plural: str = ""
    one: str = ""  # singular of a plural-kind noun ("clouds" -> "cloud") for "一片云"
    obj: str = ""  # object form of a pronoun ("she" -> "her")
    part: bool = False  # a body part or garment: "女孩头发" means the girl's hair

    def plural_form(self) -> str:
        if self.plural:
            return self.plural
        if self.kind in ("plural", "mass", "the", "pron"):
            return self.en
        return pluralize(self.en)


@dataclass(frozen=True)
class Verb:
    """An action as an English -ing phrase; `trans` places an object ("looking at {obj}")."""

    ing: str
    trans: str = ""
    still: bool = False  # the action is keeping still: "motionless" must leave the negative prompt


_DATA: dict[str, Any] = json.loads((files(__package__) / "lexicon.json").read_text(encoding="utf-8"))
_ENGLISH = _DATA["english"]


def _nouns(table: str) -> dict[str, Noun]:
    return {word: Noun(**fields) for word, fields in _DATA["nouns"][table].items()}


PEOPLE = _nouns("people")
ANIMALS = _nouns("animals")
OBJECTS = _nouns("objects")
NATURE = _nouns("nature")
BODY = _nouns("body")
#: Words that point at what is in the picture rather than naming it.
REFERENCES = _nouns("references")
ACTIONS: dict[str, Verb] = {word: Verb(**fields) for word, fields in _DATA["actions"].items()}
ADJECTIVES: dict[str, str] = _DATA["adjectives"]
MANNER: dict[str, str] = _DATA["manner"]
#: Lexicon senses that fit some subjects only (waves crash onto a beach, flames flicker): with another subject
#: the dictionary's sense is used ("a cat patting a ball", "a heart throbbing"). Keyed by the subject's head noun.
SUBJECT_SENSES: dict[str, frozenset[str]] = {word: frozenset(heads) for word, heads in _DATA["subject_senses"].items()}
#: Manner words that ask for stillness: "motionless, static" must then leave the negative prompt.
STILL_MANNERS = frozenset(_DATA["still_manners"])
DIRECTIONS: dict[str, str] = _DATA["directions"]
#: A bare direction character only means a direction after 向/往/朝 ("向左"); after a noun it is a place (树上).
DIR_CHARS: dict[str, str] = _DATA["dir_chars"]
LOCATIVES: dict[str, str] = _DATA["locatives"]
ENVIRONMENTS: dict[str, str] = _DATA["environments"]
#: Whole scenes in one verb: "下雨" has no subject to hang on.
EVENTS: dict[str, str] = _DATA["events"]
#: Grammar words by kind: they shape the sentence but are not translated. toward: 向/往/朝; at: 在/于 place the
#: next noun ("在雨中" -> "in the rain"), 从 makes it a source ("从树上" -> "from the tree"); and; with: 用 names
#: what the next action is done with ("用爪子拍打" -> "patting ... with a claw"); neg; de: 的; ignore: particles.
GRAMMAR_WORDS: dict[str, frozenset[str]] = {kind: frozenset(words) for kind, words in _DATA["grammar"].items()}
QUANTITY_WORDS: dict[str, str] = _DATA["quantity_words"]
NUMERALS: dict[str, str] = _DATA["numerals"]
CLASSIFIERS: str = _DATA["classifiers"]
QUANTITY_RE = re.compile(rf"^([一二两三四五六七八九十几数]|\d+)([{CLASSIFIERS}])$")
DEFINITE_RE = re.compile(rf"^[这那]([{CLASSIFIERS}]|些)?$")
#: A direction after a verb (洒进房间, 跃出水面): (alone, before an object).
COMPLEMENTS: dict[str, tuple[str, str]] = {word: (alone, before) for word, (alone, before) in _DATA["complements"].items()}
#: Grammar words after which a dictionary word is a noun: classifiers, 把/被 and aspect markers put an object next.
BEFORE_NOUN = frozenset(CLASSIFIERS) | frozenset(_DATA["before_noun"])
#: Nouns one is on, not in ("on the beach"), and the head words of dictionary nouns that are ("on the rooftop").
ON_NOUNS = frozenset(_DATA["on_nouns"])
ON_HEADS = frozenset(_DATA["on_heads"])

# English side: only used to categorise English words inside mixed clauses and to fill `subject`/`motion`.

EN_VERBS: dict[str, str] = _ENGLISH["verbs"]
EN_MANNERS = frozenset(_ENGLISH["manners"])
EN_PREPOSITIONS = frozenset(_ENGLISH["prepositions"])
NOT_VERBS = frozenset(_ENGLISH["not_verbs"])
DETERMINERS = frozenset(_ENGLISH["determiners"])
NOUN_PLURALS = frozenset(_ENGLISH["noun_plurals"])
_IRREGULAR_PLURALS: dict[str, str] = _ENGLISH["irregular_plurals"]


def pluralize(word: str) -> str:
    head, _, last = word.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        plural = _IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def _english_nouns() -> dict[str, str]:
    """English head nouns (singular and plural) -> possessive pronoun, from the Chinese lexicon's translations."""
    nouns: dict[str, str] = {}
    for table in (PEOPLE, ANIMALS, OBJECTS, NATURE, BODY):
        for noun in table.values():
            for form in (noun.en, noun.plural_form(), noun.one):
                if form:
                    nouns[form.split()[-1].lower()] = noun.pos
    nouns.update(_ENGLISH["more_nouns"])
    return nouns


EN_NOUNS = _english_nouns()
EN_VERB_FORMS: dict[str, str] = {}
for _base, _ing in EN_VERBS.items():
    EN_VERB_FORMS.update({_base: _ing, _ing: _ing, pluralize(_base): _ing})

#: Every Chinese word the lexicon has -> (its kind, its value); the first table that has a word keeps it.
LEXICON: dict[str, tuple[str, Any]] = {}
for _category, _table in (
    ("noun", PEOPLE), ("noun", ANIMALS), ("noun", OBJECTS), ("noun", NATURE), ("noun", BODY), ("noun", REFERENCES),
    ("verb", ACTIONS), ("adj", ADJECTIVES), ("manner", MANNER), ("dir", DIRECTIONS), ("loc", LOCATIVES),
    ("env", ENVIRONMENTS), ("event", EVENTS), ("qty", QUANTITY_WORDS),
):
    for _word, _value in _table.items():
        LEXICON.setdefault(_word, (_category, _value))
for _category in ("toward", "at", "and", "with", "neg", "de", "ignore"):
    for _word in GRAMMAR_WORDS[_category]:
        LEXICON.setdefault(_word, (_category, _word))
