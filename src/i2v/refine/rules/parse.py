"""The clause parser: a clause's tokens read left to right into what it says in English pieces (the subject
as a noun phrase, its actions with their manners, directions and objects, places, events), a run-on clause
("猫转头狗跑") into several; and the fields of an all-English clause."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from i2v.refine import dictionary
from i2v.refine.rules.camera import EN_CAMERA_FILLER, CameraHit
from i2v.refine.rules.lexicon import (
    BEFORE_NOUN,
    COMPLEMENTS,
    DETERMINERS,
    DIR_CHARS,
    EN_MANNERS,
    EN_NOUNS,
    EN_PREPOSITIONS,
    EN_VERB_FORMS,
    NOT_VERBS,
    NOUN_PLURALS,
    ON_HEADS,
    ON_NOUNS,
    REFERENCES,
    STILL_MANNERS,
    SUBJECT_SENSES,
    Noun,
    Verb,
)
from i2v.refine.rules.segment import Token

_VAGUE_QUANTITIES = frozenset({"many", "countless", "several", "group", "pair"})


def _article(words: str) -> str:
    first = words.split()[0].lower() if words.split() else ""
    vowel = first[:1] in "aeiou" and not first.startswith(("uni", "use", "one", "eu"))
    return f"{'an' if vowel or first.startswith('hour') else 'a'} {words}"


@dataclass
class NounPhrase:
    """A noun with its quantity, adjectives, possessor and coordinated nouns, rendered on demand."""

    noun: Noun
    adjs: list[str] = field(default_factory=list)
    qty: str | None = None
    owner: NounPhrase | None = None
    others: list[NounPhrase] = field(default_factory=list)
    english: bool = False  # typed in English inside a Chinese clause: keep the words as written

    def _bare(self, plural: bool) -> str:
        word = self.noun.plural_form() if plural else self.noun.en
        return " ".join([*self.adjs, word])

    def _single(self) -> str:
        noun, qty = self.noun, self.qty
        plural = noun.kind == "plural" or qty not in (None, "one", "the")
        if self.owner is not None:
            return f"{self.owner.possessive()} {self._bare(False)}"
        if noun.kind == "pron":
            return noun.en
        if self.english and (qty is None or self._bare(False).split()[0].lower() in DETERMINERS):
            return self._bare(False)
        if qty == "the":
            return f"the {self._bare(plural=noun.kind == 'plural')}"
        if qty in ("group", "pair"):
            return f"a {qty} of {self._bare(plural=not self.english)}"
        if plural and qty not in (None, "one"):
            return f"{qty} {self._bare(plural=not self.english)}"
        if noun.kind == "plural" and qty == "one" and noun.one:
            return _article(" ".join([*self.adjs, noun.one]))
        if noun.kind == "the":
            return f"the {self._bare(False)}"
        if noun.kind in ("plural", "mass"):
            return self._bare(False)
        return _article(self._bare(False))

    def render(self) -> str:
        return _join_and([self._single(), *(other.render() for other in self.others)])

    def definite(self) -> str:
        """The noun as something already in the picture: "toward the sky", "in the rain"."""
        if self.noun.kind == "pron":
            return self.noun.obj or self.noun.en
        if self.owner is not None or self.english or self.others or self.qty in _VAGUE_QUANTITIES:
            return self.render()
        if self.qty not in (None, "one", "the"):  # a number: "between the two trees"
            return f"the {self.qty} {self._bare(True)}"
        return f"the {self._bare(self.noun.kind == 'plural')}"

    def as_object(self) -> str:
        return self.noun.obj if self.noun.kind == "pron" and self.noun.obj else self.render()

    def possessive(self) -> str:
        if self.noun.kind == "pron":
            return self.noun.pos
        text = self.render()
        plural = self.noun.kind == "plural" or self.qty not in (None, "one", "the")
        return f"{text}'" if plural and text.endswith("s") else f"{text}'s"

    def pronoun(self) -> str:
        if self.others or self.qty not in (None, "one", "the") or self.noun.kind == "plural":
            return "their"
        return self.noun.pos


@dataclass
class VerbUse:
    verb: Verb
    manners: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    obj: NounPhrase | None = None
    negated: bool = False
    english: str = ""  # an English verb phrase typed inside a Chinese clause

    def render(self, pos: str) -> str:
        if self.english:
            text = self.english
        elif self.obj is not None and self.verb.trans:
            text = self.verb.trans.format(pos=pos, obj=self.obj.as_object())
        elif self.obj is not None:
            text = f"{self.verb.ing.format(pos=pos)} {self.obj.as_object()}"
        else:
            text = self.verb.ing.format(pos=pos)
        if self.negated:
            text = f"not {text}"
        return " ".join([text, *dict.fromkeys(self.manners), *dict.fromkeys(self.dirs)])


@dataclass
class Clause:
    """What one clause said, in English pieces."""

    subject: NounPhrase | None = None
    verbs: list[VerbUse] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # manners/directions/adjectives with no verb to attach to
    dropped: list[str] = field(default_factory=list)
    still: bool = False

    def motion(self, pos: str) -> str:
        return _join_and([verb.render(pos) for verb in self.verbs])

    def understood(self) -> bool:
        return bool(self.subject or self.verbs or self.envs or self.events or self.loose)


def _join_and(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _english_chunk(text: str) -> Token:
    """Categorise an English run inside a Chinese clause by its first word."""
    words = text.split()
    first = words[0].lower()
    if _is_verb(first):
        return Token("english_verb", " ".join([EN_VERB_FORMS.get(first, words[0]), *words[1:]]), text)
    if first in EN_MANNERS or (first.endswith("ly") and len(first) > 4):
        return Token("english_manner", text, text)
    if first in EN_PREPOSITIONS:
        # What a camera phrase left behind ("zoom in on 一只羊" -> "on") says nothing on its own.
        rest = {w.lower() for w in words} - EN_PREPOSITIONS - EN_CAMERA_FILLER
        return Token("english_env", text, text) if rest else Token("ignore", text, text)
    return Token("english_noun", text, text)


def _guessed_noun(sense: dictionary.Sense) -> Noun:
    last = sense.noun.split()[-1]
    plural = (last in NOUN_PLURALS or " and " in sense.noun
              or (last.endswith("s") and not last.endswith(("ss", "us", "is", "ics"))))
    if sense.noun.startswith("the "):
        return Noun(sense.noun[4:], "the")
    return Noun(sense.noun, "plural" if plural else "count", "their" if sense.person or plural else "its")


def _role(sense: dictionary.Sense, before: Token | None, after: Token | None, joined: bool = False) -> str:
    """noun, verb or adj for a dictionary word, from its neighbours: after 在/这个/a verb it is a noun (a place,
    an object), after a subject, a place or a manner it is the action; else the dictionary's first sense."""
    if sense.noun and sense.primary == "noun" and after is not None and after.kind == "de" and not sense.person:
        return "adj"  # 潮湿的街道 "a damp street", 蒲公英的种子 "dandelion seeds": a modifier, not an owner
    if not sense.verb or not sense.noun:
        return "verb" if sense.verb else "noun"
    if after is not None and after.kind == "loc":
        return "noun"
    if before is None:
        return sense.primary
    if (before.kind in ("at", "toward", "qty", "adj", "de", "verb", "english_verb") or before.raw in BEFORE_NOUN
            or (before.kind == "noun" and joined)):
        return "noun"
    if before.kind in ("noun", "english_noun", "loc", "env", "manner", "english_manner", "dir", "ignore", "neg"):
        return "verb"
    return sense.primary


def _compound(modifier: Noun, head: Noun) -> Noun:
    """Two nouns side by side are one thing named by the second: 窗户玻璃 "window glass", 熊猫宝宝 "panda baby"."""
    first = modifier.one or modifier.en if modifier.kind == "plural" else modifier.en
    return Noun(f"{first} {head.en}", head.kind, head.pos, plural=f"{first} {head.plural_form()}",
                one=f"{first} {head.one}" if head.one else "", part=head.part)


def _resolve_guesses(tokens: list[Token]) -> tuple[list[Token], list[tuple[str, str]]]:
    """Dictionary words become nouns, verbs or adjectives by their place in the clause; a direction after a verb
    joins it; nouns side by side join. Also returns what the dictionary translated, for `notes`."""
    out: list[Token] = []
    guessed: list[tuple[str, str]] = []
    for i, token in enumerate(tokens):
        before = out[-1] if out else None
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        across = token.raw == "过" and after is not None and after.kind in ("noun", "dict", "qty", "adj")
        if (token.kind == "dict" and token.raw in COMPLEMENTS or across) and before is not None \
                and before.kind == "verb":
            alone, prep = COMPLEMENTS.get(token.raw, ("past", "past"))
            ing = before.value.ing
            out[-1] = Token("verb", Verb(f"{ing} {alone}", f"{ing} {prep} {{obj}}"), before.raw + token.raw)
            guessed.append((token.raw, prep))
            continue
        if token.kind == "dict" and token.raw in COMPLEMENTS and before is None:
            continue  # 进 left over where a camera phrase was cut out ("镜头向前推进")
        if token.kind == "dict":
            sense = token.value
            role = _role(sense, before, after, token.joined)
            if role == "verb":
                token = Token("verb", Verb(*dictionary.verb_forms(sense.verb)), token.raw)
                guessed.append((token.raw, f"to {sense.verb}"))
            elif role == "adj":
                token = Token("adj", sense.noun, token.raw)
                guessed.append((token.raw, sense.noun))
            else:
                token = Token("noun", _guessed_noun(sense), token.raw)
                guessed.append((token.raw, sense.noun))
        if (token.kind == "noun" and before is not None and before.kind == "noun" and not token.value.part
                and "pron" not in (token.value.kind, before.value.kind)
                and not {token.raw, before.raw} & set(REFERENCES)):
            out[-1] = Token("noun", _compound(before.value, token.value), before.raw + token.raw)
            continue
        out.append(token)
    return out, guessed


class ClauseReader:
    """Reads one clause's tokens left to right; a run-on clause ("猫转头狗跑") comes back as several."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.guessed = _resolve_guesses(
            [_english_chunk(t.raw) if t.kind == "english" else t for t in tokens])
        self.i = 0
        self.clause = Clause()
        self.done: list[Clause] = []
        self.pending_manners: list[str] = []
        self.pending_dirs: list[str] = []
        self.negate = False
        self.at = ""  # the 在/从 word waiting for its noun
        self.toward = False
        self.instrument = False  # after 用: the next noun is what the next action is done with
        self.after_de = False  # "骑自行车的男孩": the noun after 的 is who does the verbs before it
        self.last_was_verb = False

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def starts_noun_phrase(self, offset: int = 0) -> bool:
        """A quantity or adjectives (with optional 的) followed by a noun."""
        j = self.i + offset
        while j < len(self.tokens) and self.tokens[j].kind in ("qty", "adj", "de"):
            j += 1
        return j < len(self.tokens) and self.tokens[j].kind in ("noun", "english_noun")

    def noun_phrase(self, relative: bool = False) -> NounPhrase:
        qty: str | None = None
        adjs: list[str] = []
        while (token := self.peek()) is not None and token.kind in ("qty", "adj", "de"):
            if token.kind == "qty":
                qty = token.value
            elif token.kind == "adj":
                adjs.append(token.value)
            self.i += 1
        token = self.tokens[self.i]
        self.i += 1
        if token.kind == "english_noun":
            noun = Noun(token.raw, pos=EN_NOUNS.get(token.raw.split()[-1].lower(), "its"))
            phrase = NounPhrase(noun, adjs, qty, english=True)
        else:
            phrase = NounPhrase(token.value, adjs, qty)
        while True:
            nxt = self.peek()
            if nxt is not None and nxt.kind == "de" and self.starts_noun_phrase(1) and not relative:
                self.i += 1
                owner, phrase = phrase, self.noun_phrase()
                phrase.owner = owner
                return phrase
            if nxt is not None and nxt.kind == "noun" and nxt.value.part:
                owner, phrase = phrase, self.noun_phrase()
                phrase.owner = owner
                return phrase
            if nxt is not None and nxt.kind == "and" and self.starts_noun_phrase(1):
                self.i += 1
                phrase.others.append(self.noun_phrase())
                continue
            return phrase

    def sense_for_subject(self, token: Token) -> Verb:
        """The lexicon's verb, or the dictionary's where the lexicon's sense does not fit the subject."""
        subject = self.clause.subject
        fits = SUBJECT_SENSES.get(token.raw)
        if fits is None or subject is None or subject.noun.en.split()[-1] in fits:
            return token.value
        sense = dictionary.lookup(token.raw)
        if sense is None or not sense.verb:
            return token.value
        self.guessed.append((token.raw, f"to {sense.verb}"))
        return Verb(*dictionary.verb_forms(sense.verb))

    def attach(self, bucket: str, text: str) -> None:
        """Manners and directions belong to the verb just before them, or else to the next verb."""
        if self.last_was_verb and self.clause.verbs:
            getattr(self.clause.verbs[-1], bucket).append(text)
        else:
            (self.pending_manners if bucket == "manners" else self.pending_dirs).append(text)

    def place_noun(self, phrase: NounPhrase) -> None:
        at, self.at = self.at, ""
        if self.instrument:
            self.instrument = False
            subject = self.clause.subject
            owner = subject.pronoun() if subject is not None and phrase.noun.part and phrase.owner is None else ""
            self.attach("manners", f"with {owner} {phrase._bare(False)}" if owner else f"with {phrase.as_object()}")
            return
        locative = self.peek()
        if locative is not None and locative.kind == "loc":
            self.i += 1
            self.clause.envs.append(f"{'from' if at == '从' else locative.value} {phrase.definite()}")
            return
        if self.toward:
            self.toward = False
            self.attach("dirs", f"toward {phrase.definite()}")
            return
        if at:
            self.clause.envs.append(f"{'from' if at == '从' else _default_preposition(phrase)} {phrase.definite()}")
            return
        after_de, self.after_de = self.after_de, False
        if self.starts_new_clause(after_de):
            self.finish()
        clause = self.clause
        if after_de and clause.subject is None and clause.verbs:
            clause.subject = phrase
            return
        if not clause.verbs:
            if clause.subject is None:
                clause.subject = phrase
            else:
                clause.subject.others.append(phrase)
            return
        last = clause.verbs[-1]
        if clause.subject is None and not last.verb.trans and not last.english:
            clause.subject = phrase
        elif last.obj is None:
            last.obj = phrase
        else:
            last.obj.others.append(phrase)

    def starts_new_clause(self, after_de: bool) -> bool:
        """"猫转头狗跑": a noun after a complete subject + intransitive verb starts a new clause."""
        verbs = self.clause.verbs
        return (self.clause.subject is not None and bool(verbs) and not after_de and not verbs[-1].verb.trans
                and not verbs[-1].english and verbs[-1].obj is None)

    def finish(self) -> None:
        """Close the current clause: manners and directions still waiting go to its last verb."""
        clause = self.clause
        if clause.verbs:
            clause.verbs[-1].manners += self.pending_manners
            clause.verbs[-1].dirs += self.pending_dirs
        else:
            clause.loose += self.pending_manners + self.pending_dirs
        self.pending_manners, self.pending_dirs = [], []
        self.done.append(clause)
        self.clause = Clause()

    def read(self) -> list[Clause]:
        while (token := self.peek()) is not None:
            clause, kind = self.clause, token.kind
            if kind in ("noun", "english_noun") or (kind in ("qty", "adj") and self.starts_noun_phrase()):
                self.place_noun(self.noun_phrase(relative=bool(clause.verbs) and clause.subject is None))
                self.last_was_verb = False
                continue
            self.i += 1
            if kind in ("verb", "english_verb"):
                english = token.value if kind == "english_verb" else ""
                verb = Verb(english) if english else self.sense_for_subject(token)
                use = VerbUse(verb, self.pending_manners, self.pending_dirs, negated=self.negate, english=english)
                if kind == "verb" and (token.value.still or (self.negate and token.raw in ("动", "移动"))):
                    clause.still = True
                clause.verbs.append(use)
                self.pending_manners, self.pending_dirs, self.negate = [], [], False
                self.at = ""
                self.last_was_verb = True
                continue
            if kind in ("manner", "english_manner"):
                clause.still |= token.value in STILL_MANNERS
                self.attach("manners", token.value)
            elif kind == "dir":
                self.attach("dirs", token.value)
            elif kind == "toward":
                nxt = self.peek()
                if nxt is not None and nxt.raw in DIR_CHARS:
                    self.i += 1
                    self.attach("dirs", DIR_CHARS[nxt.raw])
                else:
                    self.toward = True
                continue
            elif kind in ("env", "english_env"):
                clause.envs.append(token.value)
            elif kind == "event":
                clause.events.append(token.value)
            elif kind == "at":
                self.at = token.raw
                continue
            elif kind == "neg":
                self.negate = True
                continue
            elif kind == "adj":
                if clause.subject is not None and not clause.verbs:
                    clause.subject.adjs.append(token.value)
                else:
                    clause.loose.append(token.value)
            elif kind == "de":
                self.after_de = True
                continue
            elif kind == "with":
                self.instrument = True
            elif kind == "unknown":
                clause.dropped.append(token.raw)
            self.last_was_verb = self.last_was_verb and kind in ("ignore", "de", "loc")
        self.finish()
        return self.done


def _default_preposition(phrase: NounPhrase) -> str:
    on = phrase.noun.en in ON_NOUNS or phrase.noun.en.split()[-1] in ON_HEADS
    return "on" if on else "in"


def _is_verb(word: str) -> bool:
    return word in EN_VERB_FORMS or (word.endswith("ing") and word not in NOT_VERBS and word not in EN_NOUNS)


def english_fields(text: str) -> tuple[str, str]:
    """(subject, motion) of an English clause: the short noun phrase before the first verb, else the first known
    noun with its article; the motion runs from the first verb."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", text)
    lower = [w.lower() for w in words]
    verb = next((i for i, w in enumerate(lower) if _is_verb(w)), -1)
    motion = " ".join(words[verb:verb + 6]) if verb >= 0 else ""
    stops = EN_PREPOSITIONS | EN_CAMERA_FILLER | {"of", "to"}
    if 0 < verb <= 4 and not (set(lower[:verb]) & (stops - DETERMINERS)):
        return " ".join(words[:verb]), motion
    noun = next((i for i, w in enumerate(lower) if w in EN_NOUNS), -1)
    if noun < 0:
        return "", motion
    start = noun
    if noun >= 1 and lower[noun - 1] in DETERMINERS:
        start = noun - 1
    elif noun >= 2 and lower[noun - 2] in DETERMINERS and lower[noun - 1] not in stops and not _is_verb(lower[noun - 1]):
        start = noun - 2
    return " ".join(words[start:noun + 1]), motion


@dataclass
class Part:
    """One clause of the output sentence."""

    text: str
    sentence_end: bool  # the user ended a sentence after this clause


@dataclass
class Reading:
    """Everything gathered from the clauses, ready to assemble."""

    parts: list[Part] = field(default_factory=list)
    hits: list[CameraHit] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    guessed: list[tuple[str, str]] = field(default_factory=list)  # ("隧道", "tunnel"): what the dictionary translated
    still: bool = False
    subject: str = ""
    motion: str = ""
