"""Loading a pipeline for serving or batch jobs, with ONNX Runtime's threads set for the job.

Several workers on one machine must share its cores: each gets `threads` intra-op threads and
no spinning, instead of every worker starting one spinning thread per core.
"""

import os
from typing import Optional


def load_pipeline(name: str, threads: int = 0, allow_spinning: Optional[bool] = None):
    """`spacy.load` a package name or folder; `threads` > 0 sets ONNX Runtime's intra-op threads,
    `allow_spinning` (not None) its thread spinning."""
    import spacy

    from ..backends.onnx import OnnxSession
    from ..transformer_model import onnx_session_of

    nlp = spacy.load(name)
    if threads or allow_spinning is not None:
        for _, proc in nlp.pipeline:
            model = getattr(proc, "model", None)
            for node in model.walk() if model is not None else []:
                session = onnx_session_of(node)
                if isinstance(session, OnnxSession):
                    session.intra_op_num_threads = threads or session.intra_op_num_threads
                    if allow_spinning is not None:
                        session.allow_spinning = allow_spinning
                    session.set_model(session.model_bytes, session.source)
    return nlp


def threads_per_worker(workers: int) -> int:
    """This machine's cores shared out between `workers` processes (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))
