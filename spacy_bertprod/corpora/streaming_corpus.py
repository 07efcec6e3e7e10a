"""`spacy_bertprod.StreamingCorpus.v1`: a training corpus read a file at a time, shuffled in a window.

With `[training] max_epochs = 0` spaCy's training loop turns the whole train corpus into a list of
Examples before the first step (about 14 KB for a 17-token doc: 6.5 GB for a transfer set of
477,000 docs, and growing with every doc), so a distillation run's memory follows its transfer
set. With `max_epochs = -1` the loop asks the corpus for a fresh stream each epoch instead, and
this reader gives it one that stays bounded: the .spacy files in a new random order each epoch
(a teacher-label folder has many shards), each read whole, its examples passed through a
shuffle buffer of `shuffle_window` examples (an example waits in the buffer and leaves at a
random moment), so a batch mixes docs from across the window. A corpus smaller than the window
is shuffled whole, as spaCy's loop shuffles it.

spaCy initialises the pipeline on the first 100 examples of a streamed corpus: components that
need the full label set must get it elsewhere (`bertprod_distill_ner` takes its teacher's
labels; soft textcat targets carry every label on every doc).
"""

import itertools
import random
from pathlib import Path
from typing import Callable, Iterable, Iterator, List, Optional

from spacy.language import Language
from spacy.training import Corpus, Example
from spacy.training.corpus import walk_corpus
from spacy.util import registry

from ..errors import InvalidInput

DEFAULT_WINDOW = 20_000


class StreamingCorpus(Corpus):
    def __init__(self, path, *, shuffle_window: int = DEFAULT_WINDOW, **kwargs):
        if shuffle_window < 1:
            raise InvalidInput(f"shuffle_window must be at least 1, not {shuffle_window}.")
        super().__init__(path, shuffle=False, **kwargs)
        self.shuffle_window = shuffle_window

    def __call__(self, nlp: Language) -> Iterator[Example]:
        files = list(walk_corpus(self.path, ".spacy"))
        if not files:
            raise InvalidInput(f"The training corpus {self.path} holds no .spacy files.")
        random.shuffle(files)
        yield from shuffle_buffer(self._examples(nlp, files), self.shuffle_window)

    def _examples(self, nlp: Language, files: List[Path]) -> Iterator[Example]:
        """spaCy's Corpus.__call__, over the files in the given order (`limit` over all of them:
        spaCy 3.8's read_docbin applies it per file)."""
        ref_docs = self.read_docbin(nlp.vocab, files)
        if self.limit >= 1:
            ref_docs = itertools.islice(ref_docs, self.limit)
        if self.gold_preproc:
            examples = self.make_examples_gold_preproc(nlp, ref_docs)
        else:
            examples = self.make_examples(nlp, ref_docs)
        for real_eg in examples:
            yield from self.augmenter(nlp, real_eg)  # type: ignore[operator]


def shuffle_buffer(items: Iterable, window: int) -> Iterator:
    """The items in a random order, holding at most `window` of them (all of them shuffled, when fewer)."""
    buffer: List = []
    for item in items:
        if len(buffer) < window:
            buffer.append(item)
            continue
        i = random.randrange(window)
        yield buffer[i]
        buffer[i] = item
    random.shuffle(buffer)
    yield from buffer


@registry.readers("spacy_bertprod.StreamingCorpus.v1")
def create_streaming_corpus(
    path: Optional[Path],
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
    shuffle_window: int = DEFAULT_WINDOW,
) -> StreamingCorpus:
    """Registered as spacy_bertprod.StreamingCorpus.v1 (@readers); use with `[training] max_epochs = -1`."""
    if path is None:
        raise InvalidInput("StreamingCorpus.v1 needs a path: a .spacy file or a folder of them (e.g. teacher-label's).")
    return StreamingCorpus(
        path,
        gold_preproc=gold_preproc,
        max_length=max_length,
        limit=limit,
        augmenter=augmenter,
        shuffle_window=shuffle_window,
    )
