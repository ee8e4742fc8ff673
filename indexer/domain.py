"""Domain values shared by every layer. Plain dataclasses: cheap, typed, JSON-friendly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from PIL import Image

MediaKind = Literal["image", "video", "document"]
ViewKind = Literal["image", "frame", "page", "summary"]


@dataclass(frozen=True)
class Box:
    """Pixel box on a view: (x0, y0) top-left, (x1, y1) bottom-right."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def as_list(self) -> list[float]:
        return [round(self.x0, 1), round(self.y0, 1), round(self.x1, 1), round(self.y1, 1)]


@dataclass
class Tag:
    label: str
    score: float
    source: str = "classifier"  # classifier | hierarchy | detector | ocr


@dataclass
class OcrLine:
    text: str
    score: float
    box: Box


@dataclass
class DetectedObject:
    label: str
    score: float
    box: Box
    # which detector (centernet, haar-face, hog-person, colour-shape, ...) and what else it
    # knows (e.g. the detector's own label where the classifier's evidence relabelled it)
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Description:
    """What the model could honestly say about one view, and nothing more."""

    caption: str
    tags: list[Tag] = field(default_factory=list)
    ocr: list[OcrLine] = field(default_factory=list)
    objects: list[DetectedObject] = field(default_factory=list)
    colors: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ocr_text(self) -> str:
        return " ".join(line.text for line in self.ocr)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Description:
        return cls(
            caption=d.get("caption", ""),
            tags=[Tag(**t) for t in d.get("tags", [])],
            ocr=[OcrLine(o["text"], o["score"], Box(**o["box"])) for o in d.get("ocr", [])],
            objects=[
                DetectedObject(o["label"], o["score"], Box(**o["box"]), o.get("source", ""),
                               o.get("extra") or {})
                for o in d.get("objects", [])
            ],
            colors=d.get("colors", {}),
            extra=d.get("extra", {}),
        )


@dataclass
class ViewInput:
    """One decoded view handed to the model: an image, a video frame or a document page."""

    view_id: str
    image: Image.Image
    kind: ViewKind = "image"
    t_start: float | None = None
    t_end: float | None = None
    page: int | None = None
    text_layer: str | None = None  # a PDF page's own text, kept beside OCR


@dataclass
class ViewEncoding:
    """Everything indexing stores for one view: its description and its vectors by space."""

    description: Description
    vectors: dict[str, Any]  # space name -> float32[d], L2-normalised


@dataclass
class Step:
    """One numbered reasoning step and the evidence it rests on."""

    text: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AnswerBox:
    view_id: str
    label: str
    box: Box


@dataclass
class Answer:
    text: str
    steps: list[Step] = field(default_factory=list)
    boxes: list[AnswerBox] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)  # view ids the answer used
    debug: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    role: Literal["user", "assistant"]
    text: str
