"""GPU check for `--gpu-id` / vars.gpu_id: the training commands of the project, on a GPU.

    python scripts/gpu_check.py --output DIR

Builds a tiny random BERT and synthetic NER/textcat data (as the tests do), then runs the same
commands the workflows run, with `--gpu-id 0` wherever training happens: teacher training (fp32
and mixed precision), compress (ONNX, CPU), augment + teacher-label, the NER action-distribution
distillation and the soft-target textcat student. Writes DIR/gpu_check.json (every step's exit
code, seconds and output tail) and DIR/gpu_check.log. Meant for a machine with a CUDA GPU,
cupy and torch; nothing in the test suite depends on it.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"))
    parser.add_argument("--gpu-id", default="0", help="-1 runs the same steps on the CPU (to try this script out)")
    args = parser.parse_args()
    import spacy
    from spacy.tokens import DocBin

    from conftest import _save_bert, make_examples

    work, out = args.work, args.output
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log = open(out / "gpu_check.log", "w")
    results = {"steps": []}
    enc = work / "enc"
    if not enc.exists():
        _save_bert(enc, max_positions=64, hidden_size=64, intermediate_size=128)
    nlp = spacy.blank("en")
    for split, seed in (("train", 0), ("dev", 1), ("test", 2)):
        egs = make_examples(nlp, n=160 if split == "train" else 40, seed=seed)
        DocBin(docs=[_only(eg.reference, "ents") for eg in egs]).to_disk(work / f"ner-{split}.spacy")
        DocBin(docs=[_only(eg.reference, "cats") for eg in egs]).to_disk(work / f"tc-{split}.spacy")

    def run(name, *cmd):
        start = time.time()
        proc = subprocess.run([sys.executable, *map(str, cmd)], capture_output=True, text=True, cwd=REPO)
        text = proc.stdout + proc.stderr
        log.write(f"\n===== {name} (rc {proc.returncode})\n$ {' '.join(map(str, cmd))}\n{text}\n")
        log.flush()
        results["steps"].append({"step": name, "rc": proc.returncode, "seconds": round(time.time() - start, 1), "tail": text[-1500:]})
        print(name, proc.returncode, round(time.time() - start, 1), flush=True)
        return proc.returncode == 0

    W = work
    gpu = ["--gpu-id", args.gpu_id, "--training.eval_frequency", "20"]
    for task, cfg, corpus in (("ner", "configs/ner.cfg", "ner"), ("textcat", "configs/textcat.cfg", "tc")):
        run(f"{task}-data", "-m", "spacy", "bertprod", "data", task, W / task, "--train", W / f"{corpus}-train.spacy",
            "--dev", W / f"{corpus}-dev.spacy", "--test", W / f"{corpus}-test.spacy", "--config", cfg)
        config = W / task / "config.cfg"
        paths = ["--paths.train", W / task / "train.spacy", "--paths.dev", W / task / "dev.spacy"]
        run(f"{task}-teacher-gpu", "-m", "spacy", "train", config, "--output", W / f"{task}-teacher", *paths,
            "--paths.encoder", enc, "--training.max_steps", "40", *gpu)
        run(f"{task}-teacher-gpu-mixed-precision", "-m", "spacy", "train", config, "--output", W / f"{task}-teacher-mp", *paths,
            "--paths.encoder", enc, "--training.max_steps", "20", "--components.transformer.model.mixed_precision", "true", *gpu)
        teacher = W / f"{task}-teacher" / "model-best"
        run(f"{task}-compress", "-m", "spacy", "bertprod", "compress", teacher, W / f"{task}-teacher-onnx", "--quantize", "fp32", "--force")
        run(f"{task}-augment", "-m", "spacy", "bertprod", "augment", W / task / "train.spacy", W / task / "transfer.spacy", "--encoder", teacher, "-n", "2")
        run(f"{task}-teacher-label", "-m", "spacy", "bertprod", "teacher-label", W / f"{task}-teacher-onnx", W / task / "train.spacy",
            W / task / "transfer.spacy", "--output", W / task / "distill" / "train.spacy", "-T", "2")
        run(f"{task}-make-student", "-m", "spacy", "bertprod", "make-student", teacher, W / f"{task}-student-init", "--layers", "1")
        teacher_arg = ["--paths.teacher", W / f"{task}-teacher-onnx"] if task == "ner" else []
        run(f"{task}-distill-gpu", "-m", "spacy", "train", config, "--output", W / f"{task}-distilled", "--paths.train", W / task / "distill",
            "--paths.dev", W / task / "dev.spacy", "--paths.encoder", W / f"{task}-student-init", *teacher_arg, "--training.max_steps", "30", *gpu)
        if args.gpu_id != "-1":
            run(f"{task}-predict-gpu-vs-cpu", str(REPO / "scripts" / "gpu_check.py"), "--compare", teacher)
    results["all_ok"] = all(s["rc"] == 0 for s in results["steps"])
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    print("all ok" if results["all_ok"] else "FAILED: " + ", ".join(s["step"] for s in results["steps"] if s["rc"]))
    return 0 if results["all_ok"] else 1


def _only(doc, what):
    """A copy of a synthetic example with only its entities or only its cats."""
    from spacy.tokens import Doc

    copy = Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    if what == "ents":
        copy.ents = [copy.char_span(e.start_char, e.end_char, label=e.label_) for e in doc.ents]
    else:
        copy.cats = dict(doc.cats)
    return copy


def compare(pipeline: Path) -> int:
    """Predictions of a trained torch pipeline on the GPU equal its predictions on the CPU."""
    import spacy
    import torch
    from conftest import TEXTS

    texts = [t for t in TEXTS if t.strip()]
    cpu = [(tuple((e.text, e.label_) for e in d.ents), d.cats) for d in spacy.load(pipeline).pipe(texts)]
    spacy.require_gpu(0)
    nlp = spacy.load(pipeline)
    from spacy_bertprod.backends.torch import hf_module

    module = hf_module(nlp.get_pipe("transformer").model.layers[0])
    device = str(next(module.parameters()).device)
    gpu = [(tuple((e.text, e.label_) for e in d.ents), d.cats) for d in nlp.pipe(texts)]
    same_ents = sum(a[0] == b[0] for a, b in zip(cpu, gpu))
    max_cat = max((abs(a[1][k] - b[1][k]) for a, b in zip(cpu, gpu) for k in a[1]), default=0.0)
    print(json.dumps({"device": device, "cuda": torch.cuda.get_device_name(0), "docs": len(texts), "same_ents": same_ents, "max_cats_diff": max_cat}))
    return 0 if device.startswith("cuda") and same_ents == len(texts) and max_cat < 1e-3 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        sys.exit(compare(Path(sys.argv[2])))
    sys.exit(main())
