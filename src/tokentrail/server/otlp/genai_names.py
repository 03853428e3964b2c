"""Span attribute names the OTLP mapping reads, by family, in order of preference.

Three families are read: the current OpenTelemetry GenAI semantic conventions (v1.37+:
`gen_ai.provider.name`, `gen_ai.usage.cache_read.input_tokens`, ...), their older names
(`gen_ai.system`, `gen_ai.usage.prompt_tokens`, `gen_ai.openai.*`, and OpenLLMetry's
`gen_ai.usage.cache_read_input_tokens` / `llm.usage.total_tokens`), and OpenInference
(`llm.token_count.*`, `llm.model_name`, `openinference.span.kind`). For every value the first
name present wins, so a span carrying several families is read once. docs/server.md has the
table, with how each family counts tokens.
"""

from __future__ import annotations

from tokentrail.core import ModelOperation

# ---- which spans are GenAI -------------------------------------------------------------------
OPERATION = "gen_ai.operation.name"
OPENINFERENCE_KIND = "openinference.span.kind"
OPENLLMETRY_REQUEST_TYPE = "llm.request.type"
# A span carrying any of these (with no OpenInference kind) is a GenAI semconv span.
GENAI_MARKERS: tuple[str, ...] = (
    OPERATION,
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
)

# ---- identity and models ---------------------------------------------------------------------
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL = ("gen_ai.request.model",)
RESPONSE_MODEL = ("gen_ai.response.model",)
OPENINFERENCE_MODEL = ("llm.model_name", "embedding.model_name")
OPENINFERENCE_PARAMETERS = "llm.invocation_parameters"  # JSON text: model, temperature, ...

# ---- usage (inclusive: cache counts are part of input, reasoning part of output) -------------
INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)
AUDIO_INPUT_TOKENS = ("llm.token_count.prompt_details.audio",)
AUDIO_OUTPUT_TOKENS = ("llm.token_count.completion_details.audio",)
# A cost the sender (gateway, provider, instrumentation) computed: recorded as provider_reported.
REPORTED_COST = ("gen_ai.usage.cost", "llm.cost.total")

# ---- request and response --------------------------------------------------------------------
REQUEST_PARAMETERS: dict[str, tuple[str, ...]] = {
    "temperature": ("gen_ai.request.temperature",),
    "top_p": ("gen_ai.request.top_p",),
    "top_k": ("gen_ai.request.top_k",),
    "max_tokens": ("gen_ai.request.max_tokens",),
    "frequency_penalty": ("gen_ai.request.frequency_penalty",),
    "presence_penalty": ("gen_ai.request.presence_penalty",),
    "stop_sequences": ("gen_ai.request.stop_sequences",),
    "seed": ("gen_ai.request.seed", "gen_ai.openai.request.seed"),
    "n": ("gen_ai.request.choice.count",),
    "stream": ("gen_ai.request.stream",),
    "service_tier": ("openai.request.service_tier", "gen_ai.openai.request.service_tier"),
}
# OpenInference puts the request's parameters in one JSON attribute, under the SDK's names.
INVOCATION_PARAMETERS: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "top_p": ("top_p",),
    "top_k": ("top_k",),
    "max_tokens": ("max_tokens", "max_completion_tokens", "max_output_tokens"),
    "frequency_penalty": ("frequency_penalty",),
    "presence_penalty": ("presence_penalty",),
    "stop_sequences": ("stop", "stop_sequences"),
    "seed": ("seed",),
    "n": ("n",),
    "stream": ("stream",),
    "service_tier": ("service_tier",),
}
FINISH_REASONS = ("gen_ai.response.finish_reasons", "llm.response.finish_reason")
RESPONSE_ID = ("gen_ai.response.id",)
SYSTEM_FINGERPRINT = ("openai.response.system_fingerprint", "gen_ai.openai.response.system_fingerprint")
RESPONSE_SERVICE_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier")
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"  # seconds
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# ---- attribution -----------------------------------------------------------------------------
SERVICE_NAME = "service.name"
ENVIRONMENT = ("deployment.environment.name", "deployment.environment")
USER_ID = ("user.id", "enduser.id")
SESSION_ID = ("session.id", "gen_ai.conversation.id")
OPENINFERENCE_METADATA = "metadata"  # JSON text
# Written by tokentrail's own `otel` sink: read back so a record exported both ways is one record.
TOKENTRAIL_RECORD_ID = "tokentrail.record.id"
TOKENTRAIL_TRACE_ID = "tokentrail.trace_id"
TOKENTRAIL_PARENT_ID = "tokentrail.parent_id"
TOKENTRAIL_PREFIX = "tokentrail."
TOKENTRAIL_METADATA_PREFIX = "tokentrail.metadata."

# ---- operations ------------------------------------------------------------------------------
# `gen_ai.operation.name` (and OpenLLMetry `llm.request.type`) spellings -> the operation.
OPERATION_ALIASES: dict[str, ModelOperation] = {
    **{op.value: op for op in ModelOperation},
    "completion": ModelOperation.TEXT_COMPLETION,
    "completions": ModelOperation.TEXT_COMPLETION,
    "text.completions": ModelOperation.TEXT_COMPLETION,
    "chat.completions": ModelOperation.CHAT,
    "chat_completion": ModelOperation.CHAT,
    "embedding": ModelOperation.EMBEDDINGS,
    "create_embeddings": ModelOperation.EMBEDDINGS,
}
OPENINFERENCE_OPERATIONS: dict[str, ModelOperation] = {
    "LLM": ModelOperation.CHAT,
    "EMBEDDING": ModelOperation.EMBEDDINGS,
}
# Operations that are not one model call: tools, agents and workflows. Their spans are stored
# without usage when in-process (INTERNAL), as the model calls beneath them carry it.
COMPOSITE_OPERATIONS = frozenset(
    {
        ModelOperation.EXECUTE_TOOL,
        ModelOperation.CREATE_AGENT,
        ModelOperation.INVOKE_AGENT,
        ModelOperation.INVOKE_WORKFLOW,
    }
)
NAME_OF: dict[ModelOperation, str] = {
    ModelOperation.EXECUTE_TOOL: "gen_ai.tool.name",
    ModelOperation.CREATE_AGENT: "gen_ai.agent.name",
    ModelOperation.INVOKE_AGENT: "gen_ai.agent.name",
    ModelOperation.INVOKE_WORKFLOW: "gen_ai.workflow.name",
}

# ---- providers -------------------------------------------------------------------------------
# Legacy `gen_ai.system` and OpenInference `llm.provider` values that `normalize_provider`
# does not know.
PROVIDER_ALIASES: dict[str, str] = {
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "aws": "aws.bedrock",
    "gcp.gen_ai": "gcp.gemini",
    "google_ai_studio": "gcp.gemini",
    "mistralai": "mistral_ai",
}
# Hosts of OpenAI-compatible services: an `openai` span whose `server.address` is one of these
# was billed by that service (the OpenAI SDK pointed elsewhere).
COMPATIBLE_HOSTS: dict[str, str] = {
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "openrouter.ai": "openrouter",
    "api.fireworks.ai": "fireworks",
    "api.perplexity.ai": "perplexity",
}
AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")
