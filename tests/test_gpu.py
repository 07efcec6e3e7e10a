"""`--gpu-id` / vars.gpu_id on a GPU: the project's training commands with `--gpu-id 0`.

Runs only where torch sees a CUDA device (and cupy is installed, as spaCy needs): the same
commands the workflows run, on a tiny random BERT and synthetic data — teacher training in fp32
and mixed precision, compress (ONNX, CPU), augment + teacher-label, make-student, the distilled
student — and a check that a pipeline loaded after `spacy.require_gpu(0)` has its encoder on
the GPU and predicts what it predicts on the CPU. Nothing else in the suite depends on a GPU.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, DocBin

from conftest import TEXTS, make_examples, save_bert

REPO = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    try:
        import cupy  # noqa: F401
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU with torch and cupy")]


def _only(doc, what):
    """A copy of a synthetic example with only its entities or only its cats."""
    copy = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    if what == "ents":
        copy.ents = [copy.char_span(e.start_char, e.end_char, label=e.label_) for e in doc.ents]
    else:
        copy.cats = dict(doc.cats)
    return copy


def _run(*cmd):
    proc = subprocess.run([sys.executable, *map(str, cmd)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _predictions(nlp):
    texts = [t for t in TEXTS if t.strip()]
    return [(tuple((e.text, e.label_) for e in d.ents), d.cats) for d in nlp.pipe(texts)]


@pytest.mark.parametrize(
    "task, config, what", [("ner", "configs/ner.cfg", "ents"), ("textcat", "configs/textcat.cfg", "cats")]
)
def test_workflow_commands_train_on_the_gpu(tmp_path, task, config, what):
    enc = save_bert(tmp_path / "enc", max_positions=64, hidden_size=64, intermediate_size=128)
    nlp = spacy.blank("en")
    for split, seed in (("train", 0), ("dev", 1), ("test", 2)):
        egs = make_examples(nlp, n=160 if split == "train" else 40, seed=seed)
        DocBin(docs=[_only(eg.reference, what) for eg in egs]).to_disk(tmp_path / f"{split}.spacy")
    W, gpu = tmp_path, ["--gpu-id", "0", "--training.eval_frequency", "20"]
    _run(
        "-m",
        "spacy",
        "bertprod",
        "data",
        task,
        W / task,
        "--train",
        W / "train.spacy",
        "--dev",
        W / "dev.spacy",
        "--test",
        W / "test.spacy",
        "--config",
        config,
    )
    paths = ["--paths.train", W / task / "train.spacy", "--paths.dev", W / task / "dev.spacy"]
    train = ["-m", "spacy", "train", W / task / "config.cfg", *paths]
    _run(*train, "--output", W / "teacher", "--paths.encoder", enc, "--training.max_steps", "40", *gpu)
    _run(
        *train,
        "--output",
        W / "teacher-mp",
        "--paths.encoder",
        enc,
        "--training.max_steps",
        "20",
        "--components.transformer.model.mixed_precision",
        "true",
        *gpu,
    )
    teacher = W / "teacher" / "model-best"
    _run("-m", "spacy", "bertprod", "compress", teacher, W / "teacher-onnx", "--quantize", "fp32", "--force")
    _run(
        "-m",
        "spacy",
        "bertprod",
        "augment",
        W / task / "train.spacy",
        W / "transfer.spacy",
        "--encoder",
        teacher,
        "-n",
        "2",
    )
    _run(
        "-m",
        "spacy",
        "bertprod",
        "teacher-label",
        W / "teacher-onnx",
        W / task / "train.spacy",
        W / "transfer.spacy",
        "--output",
        W / "distill" / "train.spacy",
        "-T",
        "2",
    )
    _run("-m", "spacy", "bertprod", "make-student", teacher, W / "student-init", "--layers", "1")
    teacher_arg = ["--paths.teacher", W / "teacher-onnx"] if task == "ner" else []
    _run(
        "-m",
        "spacy",
        "train",
        W / task / "config.cfg",
        "--output",
        W / "distilled",
        "--paths.train",
        W / "distill",
        "--paths.dev",
        W / task / "dev.spacy",
        "--paths.encoder",
        W / "student-init",
        *teacher_arg,
        "--training.max_steps",
        "30",
        *gpu,
    )

    from spacy_bertprod.backends.torch import hf_module

    cpu = _predictions(spacy.load(teacher))
    spacy.require_gpu(0)
    try:
        on_gpu = spacy.load(teacher)
        module = hf_module(on_gpu.get_pipe("transformer").encoder)
        assert str(next(module.parameters()).device).startswith("cuda")
        gpu_predictions = _predictions(on_gpu)
    finally:
        spacy.require_cpu()
    assert [a[0] for a in gpu_predictions] == [a[0] for a in cpu]
    for (_, cats_gpu), (_, cats_cpu) in zip(gpu_predictions, cpu):
        assert cats_gpu == pytest.approx(cats_cpu, abs=1e-3)
