"""The same catalog assertions on SQLite (embedded default) and on the real Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.domain import Box, Description, OcrLine, Tag
from indexer.errors import NotFound
from indexer.stores.catalog import Catalog, NewView, search_terms


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'c.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    c = Catalog(url)
    c.migrate()
    yield c
    c.close()


def _desc(caption: str, tags: list[str], ocr: str = "") -> Description:
    return Description(
        caption=caption, tags=[Tag(t, 0.5) for t in tags],
        ocr=[OcrLine(ocr, 0.9, Box(0, 0, 10, 10))] if ocr else [],
    )


def test_same_bytes_same_media(catalog: Catalog) -> None:
    a, created_a = catalog.add_media(tenant="t", sha256="a" * 64, kind="image",
                                     mime="image/png", size=3)
    b, created_b = catalog.add_media(tenant="t", sha256="a" * 64, kind="image",
                                     mime="image/png", size=3)
    assert created_a and not created_b and a.id == b.id
    other, created = catalog.add_media(tenant="u", sha256="a" * 64, kind="image",
                                       mime="image/png", size=3)
    assert created and other.id != a.id  # tenants never share rows


def test_replace_views_is_idempotent_and_searchable(catalog: Catalog) -> None:
    m, _ = catalog.add_media(tenant="t", sha256="b" * 64, kind="image", mime="image/png",
                             size=3)
    views = [NewView(0, "image", _desc("a photo that likely shows a tabby cat", ["tabby"],
                                       ocr="OPEN 24 HOURS"))]
    catalog.replace_views(m.id, "t", views)
    catalog.replace_views(m.id, "t", views)
    assert catalog.count_views() == 1
    hits = catalog.lexical_search("cat")
    assert [h[0] for h in hits] == [f"{m.id}:0"]
    assert catalog.lexical_search("open hours")[0][0] == f"{m.id}:0"
    assert catalog.lexical_search("zebra") == []
    assert catalog.lexical_search("cat", tenant="other") == []
    assert catalog.lexical_search("cat", kinds=["video"]) == []
    rec = catalog.get_view(f"{m.id}:0")
    assert rec.description.ocr[0].text == "OPEN 24 HOURS"
    catalog.delete_views(m.id)
    assert catalog.lexical_search("cat") == []


def test_lexical_ranks_more_matches_first(catalog: Catalog) -> None:
    m1, _ = catalog.add_media(tenant="t", sha256="c" * 64, kind="image", mime="x", size=1)
    m2, _ = catalog.add_media(tenant="t", sha256="d" * 64, kind="image", mime="x", size=1)
    catalog.replace_views(m1.id, "t", [NewView(0, "image", _desc("red car", ["car"]))])
    catalog.replace_views(m2.id, "t", [NewView(0, "image", _desc("red car parked by a red "
                                                              "barn", ["car", "barn"]))])
    hits = catalog.lexical_search("red barn")
    assert hits[0][0] == f"{m2.id}:0"


def test_jobs_lifecycle(catalog: Catalog) -> None:
    m, _ = catalog.add_media(tenant="t", sha256="e" * 64, kind="image", mime="x", size=1)
    j = catalog.create_job(m.id)
    assert catalog.get_job(j.id).status == "queued"
    catalog.start_job(j.id)
    got = catalog.get_job(j.id)
    assert got.status == "running" and got.attempts == 1
    assert [x.id for x in catalog.jobs_with_status("running")] == [j.id]
    with pytest.raises(NotFound):
        catalog.get_job("nope")


def test_search_terms_drop_stop_words() -> None:
    assert search_terms("A photo of the cat, and a DOG!") == ["cat", "dog"]
