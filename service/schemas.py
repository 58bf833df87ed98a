"""Request and response bodies of the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(None, description="one text; or use `texts`")
    texts: list[str] | None = Field(None, description="several texts, answered in order")
    top_k: int | None = Field(1, ge=1, description="labels per text; null for all")
    explain: bool = Field(False, description="add the n-grams that drove each decision")

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("text is empty or only whitespace")
        return value

    @field_validator("texts")
    @classmethod
    def _texts_not_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("texts is an empty list")
            blank = [i for i, text in enumerate(value) if not text.strip()]
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
