"""Request, response and error bodies of the API; the OpenAPI schema is built from them."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

# A text must hold a character other than whitespace. Whitespace is spelled out, so that
# the schema's pattern means the same in every regex engine (ECMAScript's \s, which JSON
# Schema uses, is not Python's) and the validators below check exactly what it says.
WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_BLANK = f"[^{WHITESPACE}]"
_NOT_BLANK = re.compile(NOT_BLANK)
Text = Annotated[StrictStr, Field(json_schema_extra=lambda schema: _text_schema(schema))]


def _text_schema(schema: dict) -> None:
    schema.pop("default", None)  # absent or a string, never null
    schema.update(minLength=1, pattern=NOT_BLANK)


def _blank(text: str) -> bool:
    return _NOT_BLANK.search(text) is None


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # exactly one of the two: what the model validator below checks, said in the schema
        json_schema_extra={"oneOf": [{"required": ["text"]}, {"required": ["texts"]}]},
    )

    text: Text = Field(None, description="one text; or use `texts`")
    texts: list[Text] = Field(
        None,
        min_length=1,
        description="several texts, answered in order",
        json_schema_extra=lambda schema: schema.pop("default", None),
    )
    top_k: int | None = Field(
        1,
        ge=1,
        description=(
            "labels per text, most probable first; null for every label. Absent: 1 for a "
            "single-label model, and for a multi-label model every label it assigns"
        ),
    )
    explain: StrictBool = Field(False, description="add the n-grams that drove each decision")
    model: StrictStr | None = Field(
        None,
        max_length=200,
        description="the served model to ask (`GET /models`); default: the first",
    )
    min_score: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "abstain below this top score: `label` is null and `abstained` true, the scores "
            "are still given (default: the server's TEXTCNN_MIN_SCORE, unset: never)"
        ),
    )

    @field_validator("top_k", "min_score", mode="before")
    @classmethod
    def _number_not_bool_or_string(cls, value, info):
        """JSON Schema's numbers: 3 or 3.0, but not true or "3" (pydantic would take both)."""
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            what = "an integer of at least 1" if info.field_name == "top_k" else "a number"
            raise ValueError(f"{info.field_name} must be {what}, or null")
        return value

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if _blank(value):
            raise ValueError("text is empty or only whitespace")
        return value

    @field_validator("texts")
    @classmethod
    def _texts_not_blank(cls, value: list[str]) -> list[str]:
        blank = [i for i, text in enumerate(value) if _blank(text)]
        if blank:
            raise ValueError(f"texts {blank[:10]} are empty or only whitespace")
        return value

    @model_validator(mode="after")
    def _one_of_text_or_texts(self) -> ClassifyRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of `text` or `texts`")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Span(BaseModel):
    text: str
    start: int = Field(description="character offset in the input text")
    end: int
    weight: float = Field(description="contribution to the label's logit")


class LabelScore(BaseModel):
    label: str
    score: float
    assigned: bool | None = Field(
        None, description="multi-label models only: the model gives the text this label"
    )
    explanation: list[Span] | None = Field(
        None, description="multi-label models with explain: the n-grams behind this label"
    )


class ClassifyResult(BaseModel):
    label: str | None = Field(
        description="the answer: the top (assigned) label; null when the model abstained"
    )
    score: float = Field(description="the top label's score (calibrated probability)")
    labels: list[LabelScore] = Field(
        description="labels, most probable first: top_k of them, or a multi-label model's "
        "assigned ones"
    )
    truncated: bool = Field(description="the text was cut to the model's maximum length")
    abstained: bool = Field(False, description="the top score is under min_score")
    explanation: list[Span] | None = None


class ModelInfo(BaseModel):
    name: str
    version: str


class ClassifyResponse(BaseModel):
    model: ModelInfo
    results: list[ClassifyResult]


class FieldError(BaseModel):
    field: str = Field(description="where: body, body.texts.3, body.top_k, ...")
    message: str
    type: str = Field(description="a machine-readable kind, e.g. missing, extra_forbidden")


class ValidationErrorBody(BaseModel):
    """422: the body is not JSON, or not what the schema describes. Input is never echoed."""

    detail: list[FieldError]


class ErrorBody(BaseModel):
    """401, 413, 503 and the rare 500: what went wrong and what to do."""

    detail: str


ERRORS = {
    401: {"model": ErrorBody, "description": "missing or wrong API key"},
    404: {"model": ErrorBody, "description": "no model of that name (the message lists them)"},
    413: {"model": ErrorBody, "description": "over a request limit (texts, characters, bytes)"},
    422: {"model": ValidationErrorBody, "description": "malformed or invalid body"},
    503: {"model": ErrorBody, "description": "the model is not loaded (yet)"},
}


class Readiness(BaseModel):
    """/ready: the status; without an API key also why not, or which model is served."""

    status: str = Field(description="ready or not ready")
    detail: str | None = None
    model: ModelInfo | None = None
    failed: dict[str, str] | None = Field(None, description="models that failed to load, why")


READINESS = {"model": Readiness}
