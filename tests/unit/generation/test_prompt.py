"""The prompt grammar: objects, counts, colours, relations, scenes, and what it refuses."""

from __future__ import annotations

import pytest

from indexer.errors import InvalidRequest
from indexer.generation.prompt import parse


def _objs(prompt: str) -> list[tuple[str, int, str | None]]:
    return [(o.noun, o.count, o.colour) for o in parse(prompt).objects]


def _rels(prompt: str) -> list[str]:
    p = parse(prompt)
    return [r.words(p) for r in p.relations]


def test_the_issue_example() -> None:
    p = parse("a cat to the left of a cup on a wooden table")
    assert [(o.noun, o.count) for o in p.objects] == [("cat", 1), ("cup", 1)]
    assert [r.words(p) for r in p.relations] == ["cat left of cup"]
    assert p.scene is not None and p.scene.noun == "table"
    assert p.scene.attributes == ["wooden"]


@pytest.mark.parametrize(("prompt", "expected"), [
    ("a dog", [("dog", 1, None)]),
    ("two dogs", [("dog", 2, None)]),
    ("3 apples and a banana", [("apple", 3, None), ("banana", 1, None)]),
    ("four red apples", [("apple", 4, "red")]),
    ("a pair of horses", [("horse", 2, None)]),
    ("a grey elephant", [("elephant", 1, "gray")]),
    ("a teddy bear", [("teddy bear", 1, None)]),
    ("two coffee mugs", [("coffee mug", 2, None)]),
    ("three mice", [("mouse", 3, None)]),
    ("strawberries", [("strawberry", 1, None)]),
    ("a photo of a small yellow bird", [("bird", 1, "yellow")]),
    ("a cat, a dog and a horse", [("cat", 1, None), ("dog", 1, None), ("horse", 1, None)]),
])
def test_objects_counts_and_colours(prompt: str, expected: list[tuple[str, int, str | None]]
                                    ) -> None:
    assert _objs(prompt) == expected


def test_adjectives_other_than_colour_are_attributes() -> None:
    o = parse("a small fluffy cat").objects[0]
    assert o.noun == "cat" and o.attributes == ["small", "fluffy"]


@pytest.mark.parametrize(("prompt", "expected"), [
    ("a cat left of a dog", ["cat left of dog"]),
    ("a cat to the left of a dog", ["cat left of dog"]),
    ("a cat on the left of a dog", ["cat left of dog"]),
    ("a cat to the right of a dog", ["cat right of dog"]),
    ("a bird above a horse", ["bird above horse"]),
    ("a bird over a horse", ["bird above horse"]),
    ("a ball below a table lamp", ["ball below table lamp"]),
    ("a ball below a lamp", ["ball below lamp"]),
    ("a dog under a tree", ["dog below tree"]),
    ("a cat on a car", ["cat on car"]),
    ("a cat on top of a car", ["cat on car"]),
    ("a cat next to a dog", ["cat next to dog"]),
    ("a cat beside a dog", ["cat next to dog"]),
    ("a cat left of a dog and a bird above the dog", ["cat left of dog", "bird above dog"]),
    ("two apples next to a teapot", ["apple next to teapot"]),
])
def test_relations(prompt: str, expected: list[str]) -> None:
    assert _rels(prompt) == expected


def test_chained_relations_link_neighbouring_phrases() -> None:
    p = parse("a cat left of a dog left of a horse")
    assert [r.words(p) for r in p.relations] == ["cat left of dog", "dog left of horse"]


@pytest.mark.parametrize(("prompt", "scene", "objects"), [
    ("a dog on the beach", "beach", ["dog"]),
    ("a dog in the snow", "snow", ["dog"]),
    ("two cats in a garden", "garden", ["cat"]),
    ("a fish on a coral reef", "reef", ["fish"]),
    ("a car in the street", "street", ["car"]),
    ("a cat next to a cup on a table", "table", ["cat", "cup"]),
])
def test_scene_is_the_last_place_phrase(prompt: str, scene: str, objects: list[str]) -> None:
    p = parse(prompt)
    assert p.scene is not None and p.scene.noun == scene
    assert [o.noun for o in p.objects] == objects
    assert all(r.object < len(p.objects) for r in p.relations)


def test_a_table_that_is_not_last_is_an_object() -> None:
    p = parse("a cup on a table next to a chair")
    assert [o.noun for o in p.objects] == ["cup", "table", "chair"]
    assert p.scene is None
    assert [r.words(p) for r in p.relations] == ["cup on table", "table next to chair"]


def test_no_relation_for_the_scene_itself() -> None:
    p = parse("a cat on a table")
    assert p.relations == [] and p.scene is not None


@pytest.mark.parametrize("prompt", ["", "   ", "x" * 301, "the of a", "on the beach"])
def test_refused_prompts(prompt: str) -> None:
    with pytest.raises(InvalidRequest):
        parse(prompt)


def test_ten_thousand_characters_is_refused_with_the_length() -> None:
    with pytest.raises(InvalidRequest, match="10000 characters"):
        parse(("a cat " * 2000)[:10000])


def test_too_many_of_one_object() -> None:
    with pytest.raises(InvalidRequest, match="at most 6"):
        parse("20 dogs")


def test_contradictory_relations() -> None:
    with pytest.raises(InvalidRequest, match="contradict"):
        parse("a cat left of a dog and the dog left of the cat")


def test_constraints_list_every_check_in_words() -> None:
    p = parse("two red apples left of a cup on a table")
    assert p.constraints() == ["2 apple (red)", "1 cup", "apple left of cup", "scene: table"]


def test_the_refers_back_to_an_earlier_object() -> None:
    p = parse("a cat left of a dog and a bird above the dog")
    assert [o.noun for o in p.objects] == ["cat", "dog", "bird"]
    assert [r.words(p) for r in p.relations] == ["cat left of dog", "bird above dog"]
