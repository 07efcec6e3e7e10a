"""`spacy package` of a compressed pipeline: a wheel that needs spacy_bertprod + onnxruntime, not torch."""

import subprocess
import sys
import zipfile

import pytest


@pytest.mark.slow
def test_spacy_package_builds_a_torch_free_wheel(compressed_bert, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(compressed_bert["int8"]),
            str(tmp_path),
            "--build",
            "wheel",
            "--name",
            "bertprod_test",
            "--version",
            "0.0.1",
            "--force",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(tmp_path.rglob("*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as wheel:
        metadata_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(metadata_name).decode()
        names = wheel.namelist()
    requires = [
        line.split(":", 1)[1].strip().lower() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    assert any(r.startswith("spacy_bertprod") or r.startswith("spacy-bertprod") for r in requires), requires
    assert any(r.startswith("onnxruntime") for r in requires), requires
    assert not any(
        r.startswith(("torch", "spacy-transformers", "spacy_transformers", "transformers")) for r in requires
    ), requires
    assert any(n.endswith("transformer/model.onnx") for n in names)
