"""``POST /feedback``: the true label of earlier predictions, by their ids.

``{"items": [{"id": "<id from /predict>", "label": "<one of the model's labels>"}, ...]}``
(1 to ``serve.max_batch_size`` items). The request is judged whole: a malformed body, an id this
deployment did not sign (:func:`textclf.serving.ids.verify`), an unknown label or an id twice in
one request gets a 400 naming the item and the fix, and nothing of it is recorded. A valid item
is counted (``textclf_feedback_total{label,predicted,correct,model_version}``) and written to the
feedback log beside the traffic log. An id this process already took feedback for is answered
as a duplicate and not counted again, so re-sending cannot skew live accuracy on a replica;
across replicas, the snapshot join keeps the first feedback per id.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from textclf.serving import ids
from textclf.serving.schemas import check_body, type_name

EXAMPLE: JsonDict = {"items": [{"id": "p1.<version>.<label>.<nonce>.<mac>", "label": "positive"}]}
MAX_ID_CHARS = 512
MAX_LABEL_CHARS = 200
RECENT_IDS = 100_000  # ids remembered per process to answer re-sent feedback as duplicates
_FIX_BODY = 'Fix: send {"items": [{"id": "<id from /predict>", "label": "<true label>"}]}.'


class FeedbackItem(BaseModel):
    """The true label of one earlier prediction."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="the prediction's id, as /predict returned it",
    )
    label: str = Field(
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        description="the true label: one of the model's labels",
    )


class FeedbackResult(BaseModel):
    """What became of a feedback request."""

    accepted: int = Field(description="items counted and recorded")
    duplicates: int = Field(
        description="items whose id already had feedback on this replica (not counted again)"
    )


class FeedbackError(ValueError):
    """An item of a well-formed request that cannot be accepted (400, naming the item)."""


def _check_item(i: int, item: Any) -> None:
    if not isinstance(item, dict):
        raise ValueError(
            f"items[{i}] must be an object, got {type_name(item)}. "
            'Fix: send each item as {"id": "...", "label": "..."}.'
        )
    unknown = sorted(set(item) - {"id", "label"})
    missing = [key for key in ("id", "label") if key not in item]
    if unknown or missing:
        what = f"unknown key(s) {unknown}" if unknown else f"no {' or '.join(missing)}"
        raise ValueError(
            f"items[{i}] has {what}. Fix: send exactly the keys 'id' and 'label' per item."
        )
    for key, limit in (("id", MAX_ID_CHARS), ("label", MAX_LABEL_CHARS)):
        value = item[key]
        if not isinstance(value, str) or not value.strip():
            raise ValueError(
                f"items[{i}].{key} must be a non-empty string, got {type_name(value)}. "
                f"Fix: send the {'id /predict returned' if key == 'id' else 'true label'} "
                "as a JSON string."
            )
        if len(value) > limit:
            raise ValueError(
                f"items[{i}].{key} has {len(value)} characters; at most {limit} are accepted. "
                f"Fix: send the {'id /predict returned, unchanged' if key == 'id' else 'label'}."
            )


def check_items(value: Any, max_items: int) -> list[Any]:
    """Validate the ``items`` list's shape; raise ValueError naming the bad item and the fix."""
    if not isinstance(value, list):
        raise ValueError(f"'items' must be a JSON array, got {type_name(value)}. {_FIX_BODY}")
    if not value:
        raise ValueError(f"'items' is empty. {_FIX_BODY}")
    if len(value) > max_items:
        raise ValueError(
            f"'items' has {len(value)} items; at most {max_items} are accepted per request. "
            f"Fix: split it into requests of {max_items} items or fewer."
        )
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        _check_item(i, item)
        if (first := seen.setdefault(item["id"], i)) != i:
            raise ValueError(
                f"items[{i}].id repeats items[{first}].id. Fix: send one label per prediction."
            )
    return value


def request_model(max_items: int) -> type[BaseModel]:
    """The ``/feedback`` request body ``{"items": [...]}`` for the given limit."""
    items_field = Annotated[
        list[FeedbackItem],
        Field(
            min_length=1,
            max_length=max_items,
            description=f"1 to {max_items} items, each an id from /predict and the true label; "
            "an id at most once",
        ),
        BeforeValidator(lambda v: check_items(v, max_items)),
    ]

    class FeedbackRequest(BaseModel):
        """True labels of earlier predictions."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"example": EXAMPLE})

        items: items_field

        @model_validator(mode="before")
        @classmethod
        def _body_shape(cls, value: Any) -> Any:
            return check_body(value, "items", _FIX_BODY)

    return FeedbackRequest


def judge(
    items: Sequence[FeedbackItem], key: bytes, labels: Sequence[str]
) -> list[tuple[str, str, str, str]]:
    """``(id, label, predicted, model_version)`` per item; :class:`FeedbackError` names the first
    item whose id this deployment did not sign or whose label the model does not have."""
    known = set(labels)
    out = []
    for i, item in enumerate(items):
        try:
            ref = ids.verify(key, item.id)
        except ids.InvalidIdError as err:
            raise FeedbackError(
                f"items[{i}].id is not a prediction id of this deployment ({err}). Fix: send "
                "the id /predict returned, unchanged; ids signed with another "
                f"{ids.ID_KEY_ENV} cannot be verified."
            ) from None
        if item.label not in known:
            raise FeedbackError(
                f"items[{i}].label {item.label!r} is not one of the model's labels "
                f"({', '.join(labels)}). Fix: send one of them, spelled exactly."
            )
        out.append((item.id, item.label, ref.label, ref.model_version))
    return out


class RecentIds:
    """The last ``size`` ids this process took feedback for (thread-safe)."""

    def __init__(self, size: int = RECENT_IDS) -> None:
        self._size = size
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, prediction_id: str) -> bool:
        """Remember an id; False when it was already there (a duplicate)."""
        with self._lock:
            if prediction_id in self._ids:
                self._ids.move_to_end(prediction_id)
                return False
            self._ids[prediction_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)
            return True
