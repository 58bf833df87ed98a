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
    top_k: int | None = Field(1, ge=1, description="labels per text; null for all")
    explain: StrictBool = Field(False, description="add the n-grams that drove each decision")

    @field_validator("top_k", mode="before")
    @classmethod
    def _integer_not_bool_or_string(cls, value):
        """JSON Schema's integer: 3 or 3.0, but not true or "3" (pydantic would take both)."""
        if isinstance(value, bool) or not isinstance(value, int | float | None):
            raise ValueError("top_k must be an integer of at least 1, or null for all labels")
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


class LabelScore(BaseModel):
    label: str
    score: float


class Span(BaseModel):
    text: str
    start: int = Field(description="character offset in the input text")
    end: int
    weight: float = Field(description="contribution to the predicted label's logit")


class ClassifyResult(BaseModel):
    label: str
    score: float
    labels: list[LabelScore] = Field(description="the top labels, most probable first")
    truncated: bool = Field(description="the text was cut to the model's maximum length")
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
    413: {"model": ErrorBody, "description": "over a request limit (texts, characters, bytes)"},
    422: {"model": ValidationErrorBody, "description": "malformed or invalid body"},
    503: {"model": ErrorBody, "description": "the model is not loaded (yet)"},
}


class Readiness(BaseModel):
    """/ready: the status; without an API key also why not, or which model is served."""

    status: str = Field(description="ready or not ready")
    detail: str | None = None
    model: ModelInfo | None = None


READINESS = {"model": Readiness}
