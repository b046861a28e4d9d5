"""Making a recorded request again with the real client library, as an application would.

`make_call(call, server)` reads the recorded request (its URL says the operation, its body the
arguments), builds the provider's own client aimed at the replay server, and calls the client
method the recording came from (plain, streamed, async, `messages.stream`, `beta`, `parse`, ...);
a stream is read to its end. It returns what the application got, or raises what it raised.

The clients built on httpx keep the provider's real base URL (`api.openai.com`,
`api.together.ai`, ...): only their transport is pointed at the replay server, so the
instrumentation sees the endpoint the recording went to. boto3, google-genai and LiteLLM are
given the replay server's URL as their endpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.instrumentation.recordings.cassettes import RecordedCall

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm stays offline

API_KEY = "test-key"


def _origin(call: RecordedCall) -> str:
    parts = urlsplit(call.uri)
    return f"{parts.scheme}://{parts.netloc}"


def redirected(httpx_module: Any, target: str, is_async: bool = False) -> Any:
    """A transport of `httpx_module` (httpx, or httpx2 under the openai, anthropic and mistralai
    clients) that sends every request to `target` (http://host:port) instead of its host."""
    parts = urlsplit(target)
    host, port = parts.hostname, parts.port

    def aimed(request: Any) -> Any:
        request.url = request.url.copy_with(scheme="http", host=host, port=port)
        return request

    if is_async:

        class AsyncRedirect(httpx_module.AsyncHTTPTransport):  # type: ignore[name-defined,misc]
            async def handle_async_request(self, request: Any) -> Any:
                return await super().handle_async_request(aimed(request))

        return AsyncRedirect()

    class Redirect(httpx_module.HTTPTransport):  # type: ignore[name-defined,misc]
        def handle_request(self, request: Any) -> Any:
            return super().handle_request(aimed(request))

    return Redirect()


def _listed(parsed: Any) -> Any:
    """A parsed raw response: a stream's chunks, read to its end, or the answer itself."""
    return list(parsed) if hasattr(parsed, "__next__") else parsed


def _run(
    call: RecordedCall, mode: str, sync: Callable[[], Any], run_async: Callable[[], Any]
) -> Any:
    """The call as recorded (async when its recording was), or in `mode` "async"."""
    if "async" in call.cassette or mode == "async":
        return asyncio.run(run_async())
    return sync()


# --- OpenAI's chat completions (OpenAI, Together) ------------------------------------------


def openai_chat(call: RecordedCall, server: str, mode: str = "") -> Any:
    import httpx2
    from openai import AsyncOpenAI, OpenAI

    body = dict(call.request_body)
    options = {"base_url": _origin(call) + "/v1", "api_key": API_KEY, "max_retries": 0}

    def sync() -> Any:
        transport = redirected(httpx2, server)
        with OpenAI(**options, http_client=httpx2.Client(transport=transport)) as client:
            completions = client.chat.completions
            if mode == "raw":
                return _listed(completions.with_raw_response.create(**body).parse())
            if mode == "streaming":
                with completions.with_streaming_response.create(**body) as response:
                    return _listed(response.parse())
            if body.get("stream"):
                return list(completions.create(**body))
            return completions.create(**body)

    async def run_async() -> Any:
        transport = redirected(httpx2, server, is_async=True)
        http_client = httpx2.AsyncClient(transport=transport)
        async with AsyncOpenAI(**options, http_client=http_client) as client:
            if body.get("stream"):
                return [chunk async for chunk in await client.chat.completions.create(**body)]
            return await client.chat.completions.create(**body)

    return _run(call, mode, sync, run_async)


# --- Anthropic's messages ------------------------------------------------------------------


def _schema_model(schema: dict[str, Any]) -> Any:
    """A pydantic model of a flat JSON schema (what `messages.parse` was given)."""
    from pydantic import create_model

    types = {"string": str, "integer": int, "number": float, "boolean": bool}
    fields: dict[str, Any] = {
        name: (types.get(spec.get("type"), Any), ...)
        for name, spec in schema.get("properties", {}).items()
    }
    return create_model(schema.get("title", "Answer"), **fields)


def anthropic_messages(call: RecordedCall, server: str, mode: str = "") -> Any:
    import httpx2
    from anthropic import Anthropic, AsyncAnthropic

    body = dict(call.request_body)
    streamed = body.pop("stream", False)
    name = call.cassette
    options = {"api_key": API_KEY, "max_retries": 0}

    def sync() -> Any:
        client = Anthropic(
            **options, http_client=httpx2.Client(transport=redirected(httpx2, server))
        )
        with client:
            if "stream_message" in name:
                with client.messages.stream(**body) as stream:
                    for _ in stream:
                        pass
                    return stream.get_final_message()
            if "parse" in name:
                schema = body.pop("output_config")["format"]["schema"]
                return client.messages.parse(**body, output_format=_schema_model(schema))
            messages = client.beta.messages if "beta" in name else client.messages
            if streamed:
                body["stream"] = True
            if mode == "raw":
                return _listed(messages.with_raw_response.create(**body).parse())
            if mode == "streaming":
                with messages.with_streaming_response.create(**body) as response:
                    return _listed(response.parse())
            if streamed:
                return list(messages.create(**body))
            return messages.create(**body)

    async def run_async() -> Any:
        transport = redirected(httpx2, server, is_async=True)
        client = AsyncAnthropic(**options, http_client=httpx2.AsyncClient(transport=transport))
        async with client:
            if "stream_message" in name:
                async with client.messages.stream(**body) as stream:
                    async for _ in stream:
                        pass
                    return await stream.get_final_message()
            if streamed:
                return [event async for event in await client.messages.create(**body, stream=True)]
            return await client.messages.create(**body)

    return _run(call, mode, sync, run_async)


# --- Amazon Bedrock (boto3) ----------------------------------------------------------------


def bedrock(call: RecordedCall, server: str, mode: str = "") -> Any:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=server,
        region_name="us-east-1",
        aws_access_key_id="AKIDREPLAY",
        aws_secret_access_key="replay-secret",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    _, model, operation = call.path.rsplit("/", 2)
    body = call.request_body
    if operation == "invoke":
        response = client.invoke_model(
            modelId=model, body=json.dumps(body), contentType="application/json"
        )
        return json.loads(response["body"].read())
    if operation == "invoke-with-response-stream":
        response = client.invoke_model_with_response_stream(
            modelId=model, body=json.dumps(body), contentType="application/json"
        )
        return list(response["body"])
    if operation == "converse":
        return client.converse(modelId=model, **body)
    if operation == "converse-stream":
        return list(client.converse_stream(modelId=model, **body)["stream"])
    raise ValueError(f"{call.name}: no Bedrock operation {operation!r}")


# --- Google GenAI --------------------------------------------------------------------------


def gemini(call: RecordedCall, server: str, mode: str = "") -> Any:
    from google import genai
    from google.genai import types

    body = call.request_body
    model, method = call.path.rsplit("/", 1)[-1].split(":", 1)
    config: dict[str, Any] = dict(body.get("generationConfig") or {})
    for key in ("systemInstruction", "tools", "toolConfig", "safetySettings", "cachedContent"):
        if key in body:
            config[key] = body[key]
    contents = [types.Content.model_validate(content) for content in body["contents"]]
    arguments = {
        "model": model,
        "contents": contents,
        "config": types.GenerateContentConfig.model_validate(config),
    }
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=server))
    streamed = method == "streamGenerateContent"

    def sync() -> Any:
        if streamed:
            return list(client.models.generate_content_stream(**arguments))
        return client.models.generate_content(**arguments)

    async def run_async() -> Any:
        if streamed:
            stream = await client.aio.models.generate_content_stream(**arguments)
            return [chunk async for chunk in stream]
        return await client.aio.models.generate_content(**arguments)

    return _run(call, mode, sync, run_async)


# --- Mistral -------------------------------------------------------------------------------


def mistral(call: RecordedCall, server: str, mode: str = "") -> Any:
    from mistralai.client import Mistral

    body = dict(call.request_body)
    streamed = body.pop("stream", False)
    client = Mistral(api_key=API_KEY, server_url=server)

    def sync() -> Any:
        if streamed:
            with client.chat.stream(**body) as stream:
                return list(stream)
        return client.chat.complete(**body)

    async def run_async() -> Any:
        if streamed:
            stream = await client.chat.stream_async(**body)
            return [event async for event in stream]
        return await client.chat.complete_async(**body)

    return _run(call, mode, sync, run_async)


# --- Ollama --------------------------------------------------------------------------------


def ollama_chat(call: RecordedCall, server: str, mode: str = "") -> Any:
    import httpx
    import ollama

    body = dict(call.request_body)
    host = _origin(call)

    def sync() -> Any:
        client = ollama.Client(host=host, transport=redirected(httpx, server))
        if body.get("stream"):
            return list(client.chat(**body))
        return client.chat(**body)

    async def run_async() -> Any:
        transport = redirected(httpx, server, is_async=True)
        client = ollama.AsyncClient(host=host, transport=transport)
        if body.get("stream"):
            return [part async for part in await client.chat(**body)]
        return await client.chat(**body)

    return _run(call, mode, sync, run_async)


# --- LiteLLM (the recorded request is what LiteLLM sent to the provider it routed to) ------

_LITELLM_ROUTES = {"api.anthropic.com": "anthropic", "api.openai.com": "openai"}
# What LiteLLM adds to a request on its own: not the application's arguments.
_LITELLM_DEFAULTS = frozenset({"max_tokens", "model", "messages", "stream", "stream_options"})


def litellm_completion(call: RecordedCall, server: str, mode: str = "") -> Any:
    import litellm

    body = call.request_body
    route = _LITELLM_ROUTES[urlsplit(call.uri).hostname or ""]
    arguments = {k: v for k, v in body.items() if k not in _LITELLM_DEFAULTS}
    if route == "anthropic" and body.get("max_tokens") != 4096:  # LiteLLM's own default
        arguments["max_tokens"] = body["max_tokens"]
    api_base = server + ("/v1" if route == "openai" else "")
    options = {
        "model": f"{route}/{body['model']}",
        "messages": body["messages"],
        "api_base": api_base,
        "api_key": API_KEY,
        "num_retries": 0,
        **arguments,
    }

    def sync() -> Any:
        if body.get("stream"):
            return list(litellm.completion(**options, stream=True))
        return litellm.completion(**options)

    async def run_async() -> Any:
        if body.get("stream"):
            return [chunk async for chunk in await litellm.acompletion(**options, stream=True)]
        return await litellm.acompletion(**options)

    return _run(call, mode, sync, run_async)


CALLERS: dict[str, Callable[..., Any]] = {
    "openai": openai_chat,
    "together": openai_chat,
    "anthropic": anthropic_messages,
    "bedrock": bedrock,
    "google-genai": gemini,
    "mistral": mistral,
    "ollama": ollama_chat,
    "litellm": litellm_completion,
}


# The clients whose `create` calls, plain and streamed, can be made through `with_raw_response`
# (mode "raw": the raw response, then parsed, as an application reading headers does) and
# `with_streaming_response` (mode "streaming": parsed inside its block), and those with an
# async client (mode "async").
RAW_CAPABLE = frozenset({"openai", "together", "anthropic"})
ASYNC_CAPABLE = frozenset(CALLERS) - {"bedrock"}


def make_call(call: RecordedCall, server: str, mode: str = "") -> Any:
    """Make `call`'s request with its provider's client against the replay server at `server`:
    as recorded, or in `mode` ("raw", "async")."""
    return CALLERS[call.provider](call, server, mode)
