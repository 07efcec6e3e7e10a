"""The wire format: request validation with clear 4xx errors, and a Doc as JSON.

Validation is plain Python (not FastAPI's body parsing) so that every way a client can get a
request wrong has its own status and a message that names the field and the fix.
"""

import base64
import json
from typing import Any, Dict, List, Optional

import numpy
from spacy.tokens import Doc

from ..data import mean_token_vectors
from ..errors import InvalidInput, ServiceError
from .settings import ServeSettings

try:  # pydantic comes with FastAPI (the `serve` extra); the models only feed the OpenAPI docs
    from pydantic import BaseModel, Field
except ImportError:  # pragma: no cover
    BaseModel = None


def parse_request(body: bytes, settings: ServeSettings) -> Dict[str, Any]:
    """/v1/process: bytes → {"texts": [...], "vectors": bool}, or a ServiceError naming what is wrong."""
    payload = _texts_payload(body, settings, {"vectors": "'vectors' (true/false)"})
    vectors = payload.get("vectors", False)
    if not isinstance(vectors, bool):
        raise ServiceError(422, f"'vectors' must be true or false, not {vectors!r}.")
    return {"texts": payload["texts"], "vectors": vectors}


EMBED_ENCODINGS = ("float", "base64", "int8")


def parse_embed_request(body: bytes, settings: ServeSettings) -> Dict[str, Any]:
    """/v1/embed: bytes → {"texts": [...], "normalize": bool, "encoding": "float" | "base64" | "int8"}."""
    fields = {"normalize": "'normalize' (true/false)", "encoding": f"'encoding' (one of {list(EMBED_ENCODINGS)})"}
    payload = _texts_payload(body, settings, fields)
    normalize = payload.get("normalize", True)
    if not isinstance(normalize, bool):
        raise ServiceError(422, f"'normalize' must be true or false, not {normalize!r}.")
    encoding = payload.get("encoding", "float")
    if encoding not in EMBED_ENCODINGS:
        raise ServiceError(422, f"'encoding' must be one of {list(EMBED_ENCODINGS)}, not {encoding!r}.")
    return {"texts": payload["texts"], "normalize": normalize, "encoding": encoding}


def _texts_payload(body: bytes, settings: ServeSettings, options: Dict[str, str]) -> Dict[str, Any]:
    """The JSON object with a valid 'texts' list; `options` names the other fields allowed."""
    payload = _json_object(body)
    unknown = sorted(set(payload) - {"texts", *options})
    if unknown:
        allowed = ", ".join(["'texts' (a list of strings)", *options.values()])
        raise ServiceError(422, f"Unknown field(s) {unknown}: the request accepts {allowed}.")
    if "texts" not in payload:
        raise ServiceError(422, 'The request has no \'texts\' field: send {"texts": ["..."]}.')
    _check_texts(payload["texts"], settings)
    return payload


def _json_object(body: bytes) -> Dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ServiceError(
            400,
            f"The request body is not valid UTF-8 (byte {err.start}: {body[err.start : err.start + 1]!r}). Send "
            "UTF-8 encoded JSON.",
        )
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise ServiceError(
            400,
            f"The request body is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}. Send "
            f'{{"texts": ["..."]}}.',
        )
    except RecursionError:
        raise ServiceError(400, 'The request body nests JSON too deeply. Send {"texts": ["..."]}.')
    if not isinstance(payload, dict):
        raise ServiceError(
            422, f'The request body must be a JSON object like {{"texts": ["..."]}}, not {type(payload).__name__}.'
        )
    return payload


def _check_texts(texts: Any, settings: ServeSettings) -> None:
    if not isinstance(texts, list):
        raise ServiceError(422, f"'texts' must be a list of strings, not {type(texts).__name__}.")
    if len(texts) > settings.max_texts:
        raise ServiceError(
            413,
            f"{len(texts)} texts in one request; the limit is {settings.max_texts}. Split the request (or raise "
            "--max-texts).",
        )
    for i, item in enumerate(texts):
        if not isinstance(item, str):
            raise ServiceError(422, f"texts[{i}] is {type(item).__name__}, not a string.")
        if len(item) > settings.max_chars:
            raise ServiceError(
                413,
                f"texts[{i}] has {len(item)} characters; the limit is {settings.max_chars}. Split the text (or raise "
                "--max-chars); nothing is truncated.",
            )
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ServiceError(
                422,
                f"texts[{i}] holds an unpaired surrogate ({item[err.start]!r} at character {err.start}), which is "
                "not text. Send valid Unicode.",
            )


def embeddings_to_json(vectors: numpy.ndarray, normalize: bool, encoding: str, model: str) -> Dict[str, Any]:
    """One vector per text. float: JSON numbers; base64: each vector's little-endian float32 bytes;
    int8: each vector's bytes as int8 and its scale (value = int8 * scale, scale = max |value| / 127)."""
    vectors = numpy.asarray(vectors, dtype="<f4")
    if normalize:
        vectors = vectors / numpy.maximum(numpy.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out: Dict[str, Any] = {"dim": int(vectors.shape[1]), "model": model, "encoding": encoding}
    if encoding == "float":
        out["vectors"] = vectors.tolist()
    elif encoding == "base64":
        out["vectors"] = [base64.b64encode(v.tobytes()).decode("ascii") for v in vectors]
    else:
        scales = numpy.abs(vectors).max(axis=1) / 127.0
        safe = numpy.where(scales > 0, scales, 1.0)[:, None]
        quantized = numpy.clip(numpy.rint(vectors / safe), -127, 127).astype("int8")
        out["vectors"] = [base64.b64encode(v.tobytes()).decode("ascii") for v in quantized]
        out["scales"] = [float(x) for x in scales]
    return out


def token_vectors(doc: Doc) -> numpy.ndarray:
    """One vector per token: the mean of its wordpieces' hidden states (what listeners see)."""
    data = doc._.trf_data if doc.has_extension("trf_data") else None
    if data is None or not hasattr(data, "align") or not hasattr(data, "hidden"):
        raise InvalidInput("This pipeline has no spacy_bertprod transformer output to give token vectors from.")
    return mean_token_vectors(data.hidden, data.align.lengths, data.align.dataXd, len(doc))


def doc_to_json(doc: Doc, *, vectors: bool = False) -> Dict[str, Any]:
    """Entities as character offsets, categories as floats; tokens and their vectors on request."""
    out: Dict[str, Any] = {
        "ents": [{"start": e.start_char, "end": e.end_char, "label": e.label_, "text": e.text} for e in doc.ents],
        "cats": {label: float(score) for label, score in doc.cats.items()},
    }
    if vectors:
        out["tokens"] = [{"start": t.idx, "end": t.idx + len(t.text), "text": t.text} for t in doc]
        out["vectors"] = token_vectors(doc).tolist()
    return out


if BaseModel is not None:

    class ProcessRequest(BaseModel):
        texts: List[str] = Field(..., description="Texts to annotate, answered in this order")
        vectors: bool = Field(False, description="Also return tokens (character offsets) and one vector per token")

    class Entity(BaseModel):
        start: int = Field(..., description="Character offset of the first character")
        end: int = Field(..., description="Character offset after the last character")
        label: str
        text: str

    class Token(BaseModel):
        start: int
        end: int
        text: str

    class DocOut(BaseModel):
        ents: List[Entity]
        cats: Dict[str, float]
        tokens: Optional[List[Token]] = None
        vectors: Optional[List[List[float]]] = None

    class ProcessResponse(BaseModel):
        docs: List[DocOut]

    class EmbedRequest(BaseModel):
        texts: List[str] = Field(..., description="Texts to embed, answered in this order")
        normalize: bool = Field(True, description="L2-normalise every vector")
        encoding: str = Field(
            "float",
            description="'float' (JSON numbers), 'base64' (little-endian float32 bytes per vector) or 'int8' "
            "(int8 bytes per vector, base64, with 'scales': value = int8 * scale)",
        )

    class EmbedResponse(BaseModel):
        vectors: List[Any] = Field(..., description="One vector per text (lists of floats, or base64 strings)")
        dim: int
        model: str
        encoding: str
        scales: Optional[List[float]] = None

    class ErrorDetail(BaseModel):
        status: int
        message: str

    class ErrorResponse(BaseModel):
        error: ErrorDetail
