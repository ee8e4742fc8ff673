"""What a user sees in a result list: ordered by the relevance each card shows, on every
search path, with a calibrated relevance for image queries too (real app, real cpu model)."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image

from tests.unit.service.conftest import SAMPLES


def _relevances(body: dict) -> list[float]:  # type: ignore[type-arg]
    rel = [r["relevance"] for r in body["results"]]
    assert all(x is not None and 0.0 <= x <= 1.0 for x in rel), rel
    return rel


def _sorted(xs: list[float]) -> bool:
    return all(a >= b for a, b in zip(xs, xs[1:], strict=False))


def test_text_results_are_sorted_by_relevance(client: TestClient,
                                              indexed_samples: dict[str, str]) -> None:
    for q in ("a cat", "a cup of coffee", "a page of text", "stars in the night sky",
              "a rocket launch", "a person"):
        for rerank_n in (2, 6):  # a pool smaller than k is reranked whole, too
            body = client.post("/v1/search",
                               json={"text": q, "k": 6, "rerank_n": rerank_n}).json()
            rel = _relevances(body)
            assert len(rel) == 6 and _sorted(rel), (q, rel, [r["caption"] for r in
                                                             body["results"]])


def test_example_image_and_media_id_have_sorted_calibrated_relevance(
        client: TestClient, indexed_samples: dict[str, str]) -> None:
    body = client.post("/v1/search", json={"media_id": indexed_samples["chelsea"],
                                           "k": 5}).json()
    assert _sorted(_relevances(body))
    buf = io.BytesIO()
    Image.open(SAMPLES / "coffee.jpg").convert("RGB").save(buf, format="JPEG", quality=80)
    r = client.post("/v1/search/image", files={"image": ("q.jpg", buf.getvalue())},
                    data={"k": "5"})
    assert r.status_code == 200, r.text
    rel = _relevances(r.json())
    assert _sorted(rel)
    # the photo itself is indexed: a near-duplicate is a confident match, the others not
    assert r.json()["results"][0]["media_id"] == indexed_samples["coffee"]
    assert rel[0] > 0.9 and rel[1] < 0.5 and not r.json()["no_good_match"]
    both = client.post("/v1/search/image", files={"image": ("q.jpg", buf.getvalue())},
                       data={"k": "5", "text": "a cup of coffee"})
    assert both.status_code == 200, both.text
    assert _sorted(_relevances(both.json()))


def test_no_good_match_flags_an_absent_concept_and_not_a_present_one(
        client: TestClient, indexed_samples: dict[str, str]) -> None:
    present = client.post("/v1/search", json={"text": "a cat", "k": 3}).json()
    assert not present["no_good_match"], present["results"][0]["relevance"]
    absent = client.post("/v1/search", json={"text": "a bicycle", "k": 3}).json()
    assert absent["no_good_match"], absent["results"][0]["relevance"]
    assert "no good match" in absent["message"]
