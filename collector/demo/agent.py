"""The demo's agent service: a travel agent whose runs take several LLM and tool calls, in
conversations of a few turns, instrumented with the one-line import like the other services.

Run by `assay demo` as `python -m assay.collector.demo.agent` (the same environment as
service.py). Each turn is one run (one trace): an `invoke_agent` span over LLM calls that ask
for tools and `execute_tool` spans that run them (OTel GenAI agent conventions), then an LLM
call that answers. `book_hotel` times out now and then and is tried again; a conversation's
turns share a session id, so the sessions list and the Agents dashboard have data.
"""

from __future__ import annotations

import json
import os
import random
import sys
from typing import Any

import openai
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

import assay.instrumentation.auto  # noqa: F401  (the one line a user adds)
from assay.collector.demo.profiles import AGENT_FAILING_TOOL, AGENT_NAME, AGENT_SERVICE
from assay.instrumentation import context, force_flush
from assay.instrumentation import semconv as sc

PROMPT_VERSIONS = ("v1", "v2")
MODEL = "gpt-4o-mini"
CITIES = ("Lisbon", "Kyoto", "Oslo", "Lima", "Tunis", "Quebec")
QUESTIONS = (
    "Plan a weekend in {city} for two",
    "Find me a cheap flight to {city} next month",
    "Is {city} nice in March? Book something central",
)
FOLLOW_UPS = (
    "Make it one night longer",
    "Anything closer to the old town?",
    "What should I pack?",
    "Can you make it cheaper?",
)


def _tool(name: str, description: str, parameter: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {parameter: {"type": "string"}},
                "required": [parameter],
            },
        },
    }


TOOLS: list[Any] = [
    _tool("search_flights", "Flights to a city", "destination"),
    _tool("get_weather", "The weather forecast of a city", "city"),
    _tool("book_hotel", "Book a hotel room in a city", "city"),
]


class ToolTimeout(Exception):
    pass


def _run_tool(name: str, arguments: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    value = next(iter(arguments.values()), "")
    if name == AGENT_FAILING_TOOL and rng.random() < 0.33:
        raise ToolTimeout(f"the booking service did not answer for {value!r}")
    if name == "search_flights":
        return {"flights": [{"to": value, "price_eur": rng.randint(80, 900)}]}
    if name == "get_weather":
        return {"city": value, "forecast": rng.choice(["sunny", "rain", "clouds"])}
    return {"booked": True, "city": value, "hotel": f"Hotel {rng.randint(1, 40)}"}


def run(calls: int, base_url: str, seed: int) -> int:
    """Conversations until about `calls` LLM calls were made; returns the failed tool calls."""
    rng = random.Random(seed)
    client = openai.OpenAI(base_url=base_url, api_key="demo-key", max_retries=0)
    tracer = trace.get_tracer("assay.demo.agent")
    made = failed = conversation = 0

    def execute_tool(call: Any) -> str:
        nonlocal failed
        name = call.function.name
        arguments = json.loads(call.function.arguments or "{}")
        with tracer.start_as_current_span(
            f"{sc.OP_EXECUTE_TOOL} {name}",
            attributes={
                sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL,
                sc.TOOL_NAME: name,
                sc.TOOL_CALL_ID: call.id,
                sc.TOOL_TYPE: "function",
                sc.TOOL_CALL_ARGUMENTS: call.function.arguments,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = json.dumps(_run_tool(name, arguments, rng))
            except ToolTimeout as exc:
                failed += 1
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                span.set_attribute(sc.ERROR_TYPE, type(exc).__name__)
                span.record_exception(exc)
                return json.dumps({"error": str(exc)})
            span.set_attribute(sc.TOOL_CALL_RESULT, result)
            return result

    while made < calls:
        conversation += 1
        user = f"traveller-{rng.randint(1, 8)}"
        session = f"{user}-trip-{seed}-{conversation}"
        city = rng.choice(CITIES)
        version = rng.choice(PROMPT_VERSIONS)
        history: list[Any] = [
            {"role": "system", "content": f"You are {AGENT_NAME} ({version}): plan and book trips."}
        ]
        for turn in range(rng.randint(2, 4)):
            question = (rng.choice(QUESTIONS) if turn == 0 else rng.choice(FOLLOW_UPS)).format(
                city=city
            )
            messages: list[Any] = [*history, {"role": "user", "content": question}]
            wanted = rng.sample([t["function"]["name"] for t in TOOLS], rng.randint(1, 3))
            with (
                context(
                    user_id=user,
                    session_id=session,
                    prompt_name=AGENT_NAME,
                    prompt_version=version,
                    tags=["demo", "agent"],
                ),
                tracer.start_as_current_span(
                    f"{sc.OP_INVOKE_AGENT} {AGENT_NAME}",
                    attributes={
                        sc.OPERATION_NAME: sc.OP_INVOKE_AGENT,
                        sc.AGENT_NAME: AGENT_NAME,
                        sc.PROVIDER_NAME: "openai",
                        sc.REQUEST_MODEL: MODEL,
                        sc.USER_ID: user,
                        sc.SESSION_ID: session,
                    },
                ),
            ):
                for name in wanted:
                    for attempt in range(2 if name == AGENT_FAILING_TOOL else 1):
                        # The planner's instruction for the step (a model answers a tool's
                        # result with text; the next step asks for the next tool).
                        again = " again" if attempt else ""
                        messages.append({"role": "system", "content": f"Next: call {name}{again}."})
                        step = client.chat.completions.create(
                            model=MODEL,
                            messages=messages,
                            tools=TOOLS,
                            tool_choice={"type": "function", "function": {"name": name}},
                        )
                        made += 1
                        asked = step.choices[0].message.tool_calls or []
                        if not asked or asked[0].type != "function":
                            break
                        call = asked[0]
                        messages.append(step.choices[0].message.model_dump(exclude_none=True))
                        result = execute_tool(call)
                        messages.append(
                            {"role": "tool", "tool_call_id": call.id, "content": result}
                        )
                        if "error" not in json.loads(result):
                            break
                answer = client.chat.completions.create(model=MODEL, messages=messages)
                made += 1
            history += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer.choices[0].message.content or ""},
            ]
    force_flush()
    return failed


def main() -> None:
    failed = run(
        int(os.environ.get("ASSAY_DEMO_CALLS", "50")),
        os.environ["ASSAY_DEMO_BASE_URL"],
        int(os.environ.get("ASSAY_DEMO_SEED", "1")),
    )
    print(f"{AGENT_SERVICE}: {failed} tool calls failed (on purpose)", file=sys.stderr)


if __name__ == "__main__":
    main()
