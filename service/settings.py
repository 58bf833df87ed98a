"""Service settings from the environment (prefix ``TEXTCNN_``), read when the app is made."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TEXTCNN_", env_file=None)

    model_dir: Path = Path("runs/tweets/model-best")  # TEXTCNN_MODEL_DIR: one model
    # several: TEXTCNN_MODELS='{"sentiment": "runs/a/model-best", ...}', or every sub-folder
    # of TEXTCNN_MODELS_DIR; a request without "model" goes to TEXTCNN_DEFAULT_MODEL (or
    # the first)
    models: dict[str, Path] | None = None
    models_dir: Path | None = None
    default_model: str | None = None
    # every this many seconds, reload a model whose directory changed (0: never)
    reload_seconds: float = Field(0.0, ge=0)
    api_key: SecretStr | None = None  # requests need "Authorization: Bearer <key>" when set
    max_texts_per_request: int = Field(256, ge=1)
    max_text_chars: int = Field(10_000, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1)
    max_batch_size: int = Field(64, ge=1)  # texts per forward pass (micro-batching)
    max_wait_ms: float = Field(1.0, ge=0)  # how long a batch waits for more requests
    torch_threads: int | None = Field(None, ge=1)  # threads of a forward pass; None: all cores
    cors_origins: list[str] = []  # CORS is off unless origins are given
    explain_spans: int = Field(5, ge=1, le=50)
    min_score: float | None = Field(None, ge=0, le=1)  # abstain under it (a request may say)
    # how the network runs: compiled n-gram tables (auto: when they fit max_table_mb, else
    # conv), the same tables in PyTorch (folded), or the convolutions (conv)
    inference: Literal["auto", "compiled", "folded", "conv"] = "auto"
    max_table_mb: float = Field(512, ge=0)
    half_tables: bool = False  # float16 tables: half the memory, scores to ~1e-3
    # Connections (enforced by service.protocol under `textcnn serve`): a request's line and
    # headers must fit in max_header_bytes (else 431) and arrive within header_timeout_s of
    # its first byte or of the connection (else 408); its body within body_timeout_s of the
    # headers (else 408). Past max_connections, the oldest connection still waiting for its
    # headers is closed to make room (none: the new one is).
    max_header_bytes: int = Field(65_536, ge=1024)
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(20.0, gt=0)
    max_connections: int = Field(4096, ge=1)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_means_none(cls, value):
        return None if value is None or str(value).strip() == "" else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
