"""Prompt -> plan: the objects (with counts and colours), the relations between them, and the
scene, parsed by a small grammar over a fixed vocabulary.

    "two red apples to the left of a cup on a wooden table"
    -> objects: apple x2 (red), cup x1; relations: apple left_of cup; scene: table (wooden)

The grammar: a prompt is object phrases joined by relation phrases ("to the left of",
"above", "on", "next to"...) or by "and" / "with" / ",". An object phrase is an optional
count ("a", "two", "3"), optional attributes (a colour; any other adjective is kept as an
attribute) and a noun phrase (its last word is the head, "coffee mug" stays whole). A phrase
whose head is a scene word (table, street, beach, reef, sky...) after "on", "in", "at" or
"against" is the scene, not an object. Nothing is guessed: words the grammar cannot place
are reported in `Plan.ignored`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from indexer.errors import InvalidRequest
from indexer.reasoning.evidence import singular

RelationKind = Literal["left_of", "right_of", "above", "below", "on", "next_to"]
RELATION_WORDS: dict[RelationKind, str] = {
    "left_of": "left of", "right_of": "right of", "above": "above", "below": "below",
    "on": "on", "next_to": "next to",
}

MAX_PROMPT_CHARS = 300
MAX_COUNT = 6
MAX_OBJECTS = 6  # distinct object phrases

COLOURS = frozenset({"black", "white", "gray", "grey", "red", "orange", "brown", "yellow",
                     "green", "cyan", "blue", "purple", "pink"})
NUMBERS = {"a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "three": 3,
           "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
           "several": 3, "some": 2, "couple": 2}
DETERMINERS = frozenset({"the", "this", "that", "these", "those", "of", "some"})
# words that frame a prompt without being part of what is drawn
FRAME_WORDS = frozenset({"photo", "picture", "image", "drawing", "painting", "render",
                         "showing", "shows", "show", "with", "make", "create", "draw",
                         "generate", "me", "please", "there", "is", "are", "sitting",
                         "standing", "lying", "placed", "put", "set", "and", "then"})
# a phrase with one of these heads after on/in/at/against is the background
SCENE_WORDS = frozenset({
    "table", "desk", "floor", "ground", "grass", "lawn", "field", "meadow", "beach",
    "sand", "seashore", "shore", "sea", "ocean", "water", "lake", "river", "reef", "sky",
    "space", "street", "road", "city", "town", "skyline", "kitchen", "room", "garden",
    "forest", "snow", "mountain", "mountains", "wall", "background", "chessboard",
    "board", "map", "park", "desert", "night", "sunset", "dusk", "cliff", "lakeside",
    "coast", "valley", "alp", "seaside",
})
SCENE_PREPOSITIONS = frozenset({"on", "in", "at", "against", "over", "under", "inside",
                                "onto", "into", "by"})
# irregular plurals the -s rules of `singular` get wrong
IRREGULAR = {"mice": "mouse", "geese": "goose", "people": "person", "children": "child",
             "men": "man", "women": "woman", "teeth": "tooth", "feet": "foot",
             "sheep": "sheep", "fish": "fish", "deer": "deer", "oxen": "ox",
             "knives": "knife", "leaves": "leaf", "wolves": "wolf", "cherries": "cherry",
             "strawberries": "strawberry", "buses": "bus", "glasses": "glass",
             "dishes": "dish", "boxes": "box", "tomatoes": "tomato", "potatoes": "potato",
             "bananas": "banana"}

# relation phrases, longest first so "to the left of" wins over "left of" and "on top of"
# over "on"; the value is the relation of the phrase before to the phrase after
_RELATIONS: list[tuple[tuple[str, ...], RelationKind]] = sorted([
    (("to", "the", "left", "of"), "left_of"), (("on", "the", "left", "of"), "left_of"),
    (("left", "of"), "left_of"), (("to", "the", "left"), "left_of"),
    (("to", "the", "right", "of"), "right_of"), (("on", "the", "right", "of"), "right_of"),
    (("right", "of"), "right_of"), (("to", "the", "right"), "right_of"),
    (("above",), "above"), (("over",), "above"), (("on", "top", "of"), "on"),
    (("atop",), "on"), (("on",), "on"), (("onto",), "on"), (("upon",), "on"),
    (("below",), "below"), (("under",), "below"), (("beneath",), "below"),
    (("underneath",), "below"),
    (("next", "to"), "next_to"), (("beside",), "next_to"), (("besides",), "next_to"),
    (("alongside",), "next_to"), (("near",), "next_to"), (("by",), "next_to"),
], key=lambda p: -len(p[0]))
_JOINERS = frozenset({"and", ",", "with", "plus", "&"})
_TOKEN = re.compile(r"[a-z]+|\d+|[,&]")


@dataclass
class ObjectSpec:
    """One object phrase: `count` instances of `noun`, with optional colour."""

    noun: str  # singular noun phrase, e.g. "cat", "coffee mug"
    count: int = 1
    colour: str | None = None
    attributes: list[str] = field(default_factory=list)
    text: str = ""  # the words of the prompt it came from

    @property
    def head(self) -> str:
        return self.noun.split()[-1]


@dataclass
class Relation:
    subject: int  # index into Plan.objects
    kind: RelationKind
    object: int

    def words(self, plan: Plan) -> str:
        return (f"{plan.objects[self.subject].noun} {RELATION_WORDS[self.kind]} "
                f"{plan.objects[self.object].noun}")


@dataclass
class SceneSpec:
    noun: str
    attributes: list[str] = field(default_factory=list)
    preposition: str = "on"
    text: str = ""


@dataclass
class Plan:
    prompt: str
    objects: list[ObjectSpec] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    scene: SceneSpec | None = None
    ignored: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def constraints(self) -> list[str]:
        """Every constraint in words, in the order checks report them."""
        out = []
        for o in self.objects:
            out.append(f"{o.count} {o.noun}" + (f" ({o.colour})" if o.colour else ""))
        out += [r.words(self) for r in self.relations]
        if self.scene is not None:
            out.append(f"scene: {self.scene.noun}")
        return out


def singular_noun(word: str) -> str:
    w = word.lower()
    if w in IRREGULAR:
        return IRREGULAR[w]
    if len(w) > 4 and w.endswith(("ches", "shes", "xes", "sses", "zzes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return singular(w) if w.endswith("ies") else w[:-1]
    return w


def _match_relation(tokens: list[str], i: int) -> tuple[RelationKind, int] | None:
    for phrase, kind in _RELATIONS:
        n = len(phrase)
        if tuple(tokens[i:i + n]) == phrase:
            return kind, n
    return None


def _phrase(words: list[str]) -> tuple[int | None, str | None, list[str], list[str]]:
    """(count, colour, other attributes, noun words) of one phrase's words."""
    count: int | None = None
    colour: str | None = None
    attrs: list[str] = []
    rest: list[str] = []
    for w in words:
        if w.isdigit():
            count = int(w)
        elif w in NUMBERS and not rest:
            count = NUMBERS[w] if count is None or w not in ("a", "an") else count
        elif w in DETERMINERS or w in FRAME_WORDS:
            continue
        elif w in COLOURS:
            colour = "gray" if w == "grey" else w
        else:
            rest.append(w)
    # the noun phrase is the last word, or the last two for a known compound ("teddy
    # bear"); the words before it are attributes ("wooden", "small")
    noun = rest[-2:] if len(rest) >= 2 and rest[-2] in _COMPOUND_FIRST else rest[-1:]
    attrs = rest[: len(rest) - len(noun)]
    return count, colour, attrs, noun


# first words of two-word nouns worth keeping whole (the rest are adjectives)
_COMPOUND_FIRST = frozenset({
    "coffee", "teddy", "fire", "traffic", "stop", "sports", "wine", "cell", "hot", "ice",
    "polar", "sea", "tennis", "baseball", "police", "race", "golden", "water",
    "tea", "soccer", "guinea", "mail", "post", "garbage", "washing", "christmas", "birthday",
    "dining", "potted", "table", "desk", "street", "floor", "killer", "grand", "electric",
    "granny", "fried",
})


def parse(prompt: str) -> Plan:
    """Parse a prompt into a plan, or raise InvalidRequest saying what is wrong with it."""
    text = (prompt or "").strip()
    if not text:
        raise InvalidRequest("the prompt is empty: say what to draw, e.g. 'a cat next to a cup'")
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(f"the prompt is {len(text)} characters; at most "
                             f"{MAX_PROMPT_CHARS} are accepted")
    tokens = _TOKEN.findall(text.lower())
    # split into phrases and the connectors between them
    phrases: list[list[str]] = [[]]
    links: list[RelationKind | None] = []  # links[i] joins phrases[i] and phrases[i+1]
    preps: list[str] = []  # the connector's first word, for scene detection
    i = 0
    while i < len(tokens):
        rel = _match_relation(tokens, i)
        if rel is not None:
            kind, n = rel
            if not phrases[-1]:
                # "on the left of" at the very start has no subject; "next to" after a
                # joiner ("a cat and next to it") likewise: skip it
                i += n
                continue
            links.append(kind)
            preps.append(tokens[i])
            phrases.append([])
            i += n
            continue
        t = tokens[i]
        if t in _JOINERS:
            if phrases[-1]:
                links.append(None)
                preps.append(t)
                phrases.append([])
        elif t in SCENE_PREPOSITIONS and phrases[-1]:
            links.append(None)
            preps.append(t)
            phrases.append([])
        else:
            phrases[-1].append(t)
        i += 1
    plan = Plan(prompt=text)
    index_of: list[int | None] = []  # phrase index -> object index (None: scene/empty)
    for p, words in enumerate(phrases):
        count, colour, attrs, noun_words = _phrase(words)
        prep = preps[p - 1] if p > 0 else None
        head = noun_words[-1] if noun_words else None
        if head is None:
            if words:
                plan.ignored += words
            index_of.append(None)
            continue
        is_scene = (head in SCENE_WORDS and p > 0 and prep in SCENE_PREPOSITIONS
                    and plan.scene is None and p == len(phrases) - 1)
        if is_scene or (p == 0 and len(phrases) == 1 and head in SCENE_WORDS
                        and count is None and head in ("beach", "street", "sky", "reef")):
            plan.scene = SceneSpec(singular_noun(head), attrs + ([colour] if colour else []),
                                   prep or "in", " ".join(words))
            index_of.append(None)
            continue
        n = 1 if count is None else count
        if n < 1 or n > MAX_COUNT:
            raise InvalidRequest(f"'{' '.join(words)}': at most {MAX_COUNT} of one object "
                                 f"can be drawn (asked for {n})")
        noun = " ".join(noun_words[:-1] + [singular_noun(noun_words[-1])])
        earlier = [k for k, o in enumerate(plan.objects) if o.noun == noun]
        if earlier and words[:1] == ["the"] and count is None:
            index_of.append(earlier[0])  # "a cat left of a dog and the dog ..." is that dog
            continue
        plan.objects.append(ObjectSpec(noun, n, colour, attrs, " ".join(words)))
        index_of.append(len(plan.objects) - 1)
    if not plan.objects:
        what = f" (the scene '{plan.scene.noun}' alone is not enough)" if plan.scene else ""
        raise InvalidRequest(f"no object to draw found in the prompt{what}: name at least "
                             "one thing, e.g. 'a dog on the beach'")
    if len(plan.objects) > MAX_OBJECTS:
        raise InvalidRequest(f"the prompt names {len(plan.objects)} objects; at most "
                             f"{MAX_OBJECTS} are drawn")
    for p, link in enumerate(links):
        a, b = index_of[p], index_of[p + 1]
        if link is None or a is None:
            continue
        if b is None:  # "a cat on the table" with the table as the scene: not an object pair
            continue
        plan.relations.append(Relation(a, link, b))
    _check_consistent(plan)
    return plan


def _check_consistent(plan: Plan) -> None:
    """Refuse relations that cannot all hold (a left of b and b left of a...)."""
    horiz: dict[int, set[int]] = {}
    vert: dict[int, set[int]] = {}
    for r in plan.relations:
        if r.subject == r.object:
            raise InvalidRequest(f"'{r.words(plan)}' relates an object to itself")
        a, b = r.subject, r.object
        if r.kind == "left_of":
            horiz.setdefault(a, set()).add(b)
        elif r.kind == "right_of":
            horiz.setdefault(b, set()).add(a)
        elif r.kind in ("above", "on"):
            vert.setdefault(a, set()).add(b)
        elif r.kind == "below":
            vert.setdefault(b, set()).add(a)
    for graph, what in ((horiz, "left/right"), (vert, "above/below")):
        if _has_cycle(graph):
            raise InvalidRequest(f"the {what} relations of the prompt contradict each other")


def _has_cycle(graph: dict[int, set[int]]) -> bool:
    state: dict[int, int] = {}

    def visit(n: int) -> bool:
        if state.get(n) == 1:
            return True
        if state.get(n) == 2:
            return False
        state[n] = 1
        if any(visit(m) for m in graph.get(n, ())):
            return True
        state[n] = 2
        return False

    return any(visit(n) for n in list(graph))
