"""A compressed pipeline serves from a virtualenv with no torch, transformers or spacy-transformers."""

import subprocess
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK = """
import sys, spacy
nlp = spacy.load(sys.argv[1])
docs = list(nlp.pipe(["Alice flew to Paris", "", "Bob works in Berlin"] * 4, n_process=1))
assert docs[0]._.trf_data.hidden.shape[1] > 0
blocked = [m for m in ("torch", "transformers", "spacy_transformers") if m in sys.modules]
assert not blocked, blocked
print("SERVED", [(e.text, e.label_) for e in docs[0].ents], sorted(docs[0].cats))
"""


@pytest.mark.slow
def test_serving_without_torch(compressed_bert, tmp_path):
    env_dir = tmp_path / "serve-env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(REPO)], capture_output=True, text=True
    )
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    ).stdout.lower()
    for heavy in ("torch==", "transformers==", "spacy-transformers=="):
        assert heavy not in listed, f"{heavy} was installed by a plain `pip install spacy_bertprod`"
    run = subprocess.run([str(python), "-c", CHECK, str(compressed_bert["int8"])], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SERVED" in run.stdout
