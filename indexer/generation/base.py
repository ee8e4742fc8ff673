"""The generation protocol: `generate(prompt, seed) -> Generated` (image, provenance, checks).

Every backend answers with the same evidence: which indexed media and boxes the image was
made from (`provenance`; empty for a backend that draws from its weights), and one `Check`
per parsed constraint with `satisfied` true only when the check saw it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

from indexer.errors import GlimpseError

CheckKind = Literal["count", "colour", "relation", "scene"]


class MissingConcept(GlimpseError):
    """The prompt asks for something the index has no instance of: nothing is invented."""

    status = 422
    code = "missing_concept"


@dataclass
class SourceUse:
    """One piece of an indexed media used in a composition."""

    role: Literal["object", "background", "exemplar"]
    concept: str
    media_id: str
    view_id: str
    box: list[float] | None = None  # on the source view, None: the whole view
    placed: list[float] | None = None  # on the generated image
    cut: str = "none"  # alpha | grabcut | box | none
    matched: dict[str, Any] = field(default_factory=dict)  # the label/score that matched
    recoloured: str | None = None


@dataclass
class Check:
    constraint: str
    kind: CheckKind
    satisfied: bool
    evidence: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


@dataclass
class Generated:
    image: Image.Image
    backend: str
    plan: dict[str, Any]
    provenance: list[SourceUse] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    attempts: int = 1
    scores: dict[str, float] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def satisfied(self) -> bool:
        return bool(self.checks) and all(c.satisfied for c in self.checks)

    def record(self) -> dict[str, Any]:
        """JSON-ready everything but the pixels."""
        return {
            "backend": self.backend, "plan": self.plan, "attempts": self.attempts,
            "provenance": [asdict(p) for p in self.provenance],
            "checks": [asdict(c) for c in self.checks], "scores": self.scores,
            "timings_ms": self.timings_ms, "notes": self.notes,
        }


@runtime_checkable
class Generator(Protocol):
    name: str

    def generate(self, prompt: str, seed: int, *, size: tuple[int, int] = (512, 512),
                 tenant: str = "default") -> Generated:
        """One image for the prompt; the same seed and index give the same image."""
        ...


def parse_size(size: str | int | None, *, max_side: int = 1024,
               min_side: int = 64) -> tuple[int, int]:
    """"512x384", "512" or 512 -> (w, h); anything else or out of range -> InvalidRequest."""
    from indexer.errors import InvalidRequest

    if size is None:
        return (512, 512)
    if isinstance(size, int):
        w = h = size
    else:
        parts = str(size).lower().replace(" ", "").split("x")
        try:
            nums = [int(p) for p in parts]
        except ValueError as e:
            raise InvalidRequest(f"size {size!r}: give WIDTHxHEIGHT in px, e.g. '512x512'") from e
        if len(nums) == 1:
            w = h = nums[0]
        elif len(nums) == 2:
            w, h = nums
        else:
            raise InvalidRequest(f"size {size!r}: give WIDTHxHEIGHT in px, e.g. '512x512'")
    if not (min_side <= w <= max_side and min_side <= h <= max_side):
        raise InvalidRequest(f"size {w}x{h} px is out of range: each side must be "
                             f"{min_side}..{max_side} px")
    return (w, h)
