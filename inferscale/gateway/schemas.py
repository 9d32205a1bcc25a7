"""The wire format: OpenAI's chat-completion request and response, plus the `inferscale` extras.

Requests validate here (pydantic), so a bad body never reaches the engine; the error names the
field (`param`) in OpenAI's shape. Unknown OpenAI fields (top_p, user, seed…) are accepted and
ignored, as OpenAI-compatible servers do; unknown fields inside `inferscale` are refused, because
a typo there would silently change what runs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: StrictStr


class CacheOptions(BaseModel):
    """LiteLLM's per-request cache controls: `no-cache` skips reads, `no-store` skips writes,
    `ttl` serves only entries younger than that many seconds."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    no_cache: bool = Field(False, alias="no-cache")
    no_store: bool = Field(False, alias="no-store")
    ttl: float | None = Field(None, gt=0)


class InferscaleOptions(BaseModel):
    """The optional `inferscale` body field (`extra_body={"inferscale": {...}}` in the openai client)."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = None
    models: list[StrictStr] | None = None
    router: str | None = None
    options: dict[str, Any] | None = None
    cache: CacheOptions = Field(default_factory=CacheOptions)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    stream: bool = False
    n: int = Field(1, ge=1)
    inferscale: InferscaleOptions = Field(default_factory=InferscaleOptions)

    @field_validator("messages")
    @classmethod
    def _ends_with_user(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if v[-1].role != "user":
            raise ValueError("the last message must have role 'user' (the turn to answer)")
        if not v[-1].content.strip():
            raise ValueError("the last user message is empty")
        return v


# -- responses ------------------------------------------------------------------------------------
class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"
    logprobs: None = None


class Routing(BaseModel):
    models: list[str]
    reason: str
    complexity: float
    policy: str


class CacheInfo(BaseModel):
    level: str
    similarity: float | None = None
    matched_prompt: str | None = None
    saved_usd: float = 0.0


class Member(BaseModel):
    model: str
    latency_ms: float
    cost_usd: float
    error: str | None = None
    error_class: str | None = None
    cached: bool = False
    role: str = ""


class InferscaleInfo(BaseModel):
    """What inferscale did for this request: the decision explained in the response itself."""

    request_id: str
    strategy: str
    routing: Routing
    cache: CacheInfo | None
    members: list[Member]
    confidence: float | None
    cost_usd: float
    latency_ms: float


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    inferscale: InferscaleInfo


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
