"""Video inputs built without torchvision must equal what Glm4vVideoProcessor would build."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers.models.glm4v.image_processing_pil_glm4v import Glm4vImageProcessorPil
from transformers.models.glm4v.video_processing_glm4v import Glm4vVideoProcessor

from indexer.models.glm.inputs import pack_video_patches


def test_pack_video_patches_matches_video_processor_layout() -> None:
    rng = np.random.default_rng(0)
    n, c, h, w, p, m, t = 4, 3, 56, 84, 14, 2, 2
    video = rng.standard_normal((n, c, h, w)).astype(np.float32)
    # what the image processor gives for each frame (temporal copies inside each patch) ...
    image_patchify: Any = Glm4vImageProcessorPil.patchify
    per_frame = [image_patchify(None, f, p, m, t)[0] for f in video]
    frame_patches = torch.from_numpy(np.concatenate(per_frame, axis=0))
    ours = pack_video_patches(frame_patches, n, c, t, p)
    # ... re-packed, equals the video processor's own patchify on the same frames
    patchify: Any = Glm4vVideoProcessor.patchify  # self is unused by patchify
    ref, grid_t, grid_h, grid_w = patchify(None, torch.from_numpy(video)[None], p, m, t)
    assert (grid_t, grid_h, grid_w) == (2, 4, 6)
    assert ours.shape == ref[0].shape
    assert torch.equal(ours, ref[0])


def test_pack_video_patches_rejects_odd_frame_count() -> None:
    import pytest

    with pytest.raises(ValueError):
        pack_video_patches(torch.zeros(3 * 4, 3 * 2 * 14 * 14), 3, 3, 2, 14)
