"""Request and response types of the service, with validation errors that name the fix.

Each bad request fails in one ``BeforeValidator`` with a message naming the item index and what
to send instead; the ``Field`` constraints only document the same limits in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

EXAMPLE: JsonDict = {"texts": ["I love this phone", "the flight was delayed again"]}


class Prediction(BaseModel):
    """The prediction for one text."""

    id: str = Field(
        description="this prediction's id, unique per text: send it back with the true label "
        "as feedback; signed, it names the label and the model version"
    )
    label: str = Field(description="the most probable label")
    probabilities: dict[str, float] = Field(description="probability of every label (sum 1)")
    model_version: str = Field(description="content hash of the served model files")


_JSON_TYPES = (
    (bool, "boolean"),
    (int, "number"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def type_name(value: Any) -> str:
    """The JSON type of a parsed value (what the client sent), e.g. ``null`` or ``array``."""
    if value is None:
        return "null"
    return next(
        (name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__
    )


_FIX_TEXTS = 'Fix: send {"texts": ["first text", "second text"]}.'


def check_body(value: Any, key: str, fix: str) -> Any:
    """A request body that is a JSON object with exactly ``key``; else ValueError with ``fix``."""
    if not isinstance(value, dict):
        raise ValueError(f"the request body must be a JSON object, got {type_name(value)}. {fix}")
    unknown = sorted(set(value) - {key})
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown}; the body needs exactly one key, '{key}'. {fix}"
        )
    if key not in value:  # an empty body arrives here as {}
        raise ValueError(f"the request body has no '{key}' key (or is empty). {fix}")
    return value


def check_texts(value: Any, max_texts: int, max_chars: int) -> list[str]:
    """Validate the ``texts`` list; raise ValueError naming the bad item and the fix."""
    if not isinstance(value, list):
        raise ValueError(
            f"'texts' must be a JSON array of strings, got {type_name(value)}. "
            'Fix: send {"texts": ["first text", "second text"]}.'
        )
    if not value:
        raise ValueError(
            "'texts' is empty. Fix: send at least one text, e.g. "
            '{"texts": ["I love this phone"]}.'
        )
    if len(value) > max_texts:
        raise ValueError(
            f"'texts' has {len(value)} items; at most {max_texts} are accepted per "
            f"request. Fix: split it into requests of {max_texts} texts or fewer."
        )
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise ValueError(
                f"texts[{i}] must be a string, got {type_name(text)}. Fix: send "
                "every text as a JSON string."
            )
        if not text.strip():
            raise ValueError(
                f"texts[{i}] is empty or only whitespace. Fix: remove it or send "
                "text with at least one visible character."
            )
        if len(text) > max_chars:
            raise ValueError(
                f"texts[{i}] has {len(text)} characters; at most {max_chars} are "
                f"accepted. Fix: shorten it to {max_chars} characters (the model "
                "reads only the first tokens anyway)."
            )
    return value


def request_model(max_texts: int, max_chars: int) -> type[BaseModel]:
    """The ``/predict`` request body ``{"texts": [...]}`` for the given limits."""
    item = Annotated[str, Field(min_length=1, max_length=max_chars, pattern=r"\S")]
    texts_field = Annotated[
        list[item],
        Field(
            min_length=1,
            max_length=max_texts,
            description=f"1 to {max_texts} texts, each with 1 to {max_chars} characters and "
            "at least one non-whitespace character",
        ),
        BeforeValidator(lambda v: check_texts(v, max_texts, max_chars)),
    ]

    class PredictRequest(BaseModel):
        """Texts to classify."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"example": EXAMPLE})

        texts: texts_field

        @model_validator(mode="before")
        @classmethod
        def _body_shape(cls, value: Any) -> Any:
            return check_body(value, "texts", _FIX_TEXTS)

    return PredictRequest
