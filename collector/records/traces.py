"""Reads of whole runs and conversations for the UI and the API: a trace's spans as a tree with
their timing, tokens and cost, one span whole, the sessions list and a session's turns."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any

from assay.collector.normalize import span_kinds as kinds
from assay.collector.normalize.trace_content import columns_needed, restore_content
from assay.collector.records.calls import CURRENT_SCORE_COLUMNS, CURRENT_SCORE_KEY, records
from assay.collector.schema import RUN_SUMMARY_COLUMNS
from assay.collector.store.base import Store
from assay.evaluators.base import EvalInput

# What the waterfall needs of each span: a trace's spans are one range read of trace_spans
# (ordered by trace id), however many spans it has.
_SPAN_COLUMNS = (
    "span_id, parent_span_id, toUnixTimestamp64Nano(start) AS start_ns,"
    " toUnixTimestamp64Nano(end) AS end_ns, toString(service_name) AS service_name,"
    " toString(span_name) AS name, toString(kind) AS kind, toString(status) AS status,"
    " toString(dialect) AS dialect, toString(agent_name) AS agent_name,"
    " toString(tool_name) AS tool_name, llm, input_tokens, output_tokens, cost_usd, user_id,"
    " session_id, toString(prompt_name) AS prompt_name, toString(prompt_version) AS prompt_version"
)
# A bar is never thinner than this (in % of the trace), so an instant span is still seen.
MIN_BAR_PCT = 0.15
SESSIONS_PAGE = 50
SESSION_WINDOWS = (dt.timedelta(hours=1), dt.timedelta(days=1))  # then the whole range


@dataclass
class Trace:
    trace_id: str
    summary: dict[str, Any]  # the columns of its trace_summary row (`summarize`)
    spans: list[dict[str, Any]]  # depth-first, children in start order
    scores: list[dict[str, Any]]  # of the run (level trace) and of its calls
    duration_ms: float

    @property
    def unpriced_failed(self) -> int:
        """Of the summary's unpriced calls, those that failed."""
        return sum(
            s["llm"] and s["cost_usd"] is None and s["status"] == "error" for s in self.spans
        )

    def scores_of(self, span_id: str) -> list[dict[str, Any]]:
        return [s for s in self.scores if s["span_id"] == span_id]

    @property
    def run_scores(self) -> list[dict[str, Any]]:
        return [s for s in self.scores if not s["span_id"]]


def _as_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spans depth-first, each after its parent and its children in start order, with
    `depth` and `children` set. A span whose parent is not in the trace (not arrived yet, or
    outside it) is a root of its own."""
    by_id = {row["span_id"]: row for row in rows}
    children: dict[str, list[dict[str, Any]]] = {}
    roots: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r["start_ns"], r["span_id"])):
        parent = row["parent_span_id"]
        if parent and parent in by_id and parent != row["span_id"]:
            children.setdefault(parent, []).append(row)
        else:
            roots.append(row)
    ordered: list[dict[str, Any]] = []
    seen: set[str] = set()

    def walk(top: dict[str, Any]) -> None:
        stack = [(top, 0)]
        while stack:
            row, depth = stack.pop()
            if row["span_id"] in seen:
                continue
            seen.add(row["span_id"])
            row["depth"] = depth
            row["children"] = len(children.get(row["span_id"], ()))
            ordered.append(row)
            stack.extend((child, depth + 1) for child in reversed(children.get(row["span_id"], ())))

    for root in roots:
        walk(root)
    # Spans whose parent ids form a cycle (A's parent B, B's parent A: a broken or hostile
    # client) reach no root: the earliest of each cycle stands for one, so every span is shown
    # once, with its depth, and the walk ends.
    for row in sorted(rows, key=lambda r: (r["start_ns"], r["span_id"])):
        if row["span_id"] not in seen:
            walk(row)
    return ordered


def _spans(store: Store, trace_id: str) -> list[dict[str, Any]]:
    rows = records(
        store,
        f"SELECT {_SPAN_COLUMNS} FROM {store.database}.trace_spans"
        " WHERE trace_id = {trace:String}",
        {"trace": trace_id},
    )
    if not rows:
        # Stored before trace_spans existed (migration 011), or its rows are not stored yet (the
        # writer inserts them after otel_traces and llm_calls) or were dead-lettered: the raw
        # spans, an LLM call told by its llm_calls row.
        rows = records(
            store,
            "SELECT SpanId AS span_id, ParentSpanId AS parent_span_id,"
            " toUnixTimestamp64Nano(Timestamp) AS start_ns,"
            " toUnixTimestamp64Nano(Timestamp) + Duration AS end_ns,"
            " toString(ServiceName) AS service_name, toString(SpanName) AS name,"
            f" '{kinds.SPAN}' AS kind, if(StatusCode = 'Error', 'error', 'ok') AS status,"
            " '' AS dialect, '' AS agent_name, '' AS tool_name,"
            f" SpanId IN (SELECT span_id FROM {store.database}.llm_calls"
            " WHERE trace_id = {trace:String}) AS llm,"
            " NULL AS input_tokens, NULL AS output_tokens, NULL AS cost_usd, '' AS user_id,"
            " '' AS session_id, '' AS prompt_name, '' AS prompt_version"
            f" FROM {store.database}.otel_traces WHERE TraceId = {{trace:String}}",
            {"trace": trace_id},
        )
    return list({row["span_id"]: row for row in rows}.values())  # a span sent twice is one


# A completed run's row, shaped like `summarize`'s (times in ns, made datetimes as it does).
_COMPLETED_COLUMNS = ", ".join(
    [c for c in RUN_SUMMARY_COLUMNS if c not in ("start", "end", "updated_at")]
    + ["toUnixTimestamp64Nano(start) AS start_ns", "toUnixTimestamp64Nano(end) AS end_ns"]
)


@dataclass(frozen=True)
class RunRef:
    """A run as `trace_summaries` names it: the hour it started (the key of its completed_runs
    row) and when the store last got a span of it."""

    trace_id: str
    session_id: str
    hour: dt.datetime
    updated_ns: int


def _completed(store: Store, runs: list[RunRef]) -> dict[str, dict[str, Any]]:
    """The completed_runs rows of these runs that are current (written after their last span),
    read by their key (hour, trace id): a few granules however the runs are spread."""
    rows = records(
        store,
        f"SELECT {_COMPLETED_COLUMNS}, toUnixTimestamp64Nano(updated_at) AS updated_ns"
        f" FROM {store.database}.completed_runs FINAL"
        " WHERE hour IN {hours:Array(DateTime)} AND trace_id IN {ids:Array(String)}",
        {"hours": sorted({r.hour for r in runs}), "ids": [r.trace_id for r in runs]},
    )
    newest = {r.trace_id: r.updated_ns for r in runs}
    found = {}
    for row in rows:
        if row.pop("updated_ns") >= newest.get(row["trace_id"], 0):
            start, end = row.pop("start_ns"), row.pop("end_ns")
            row["start"] = dt.datetime.fromtimestamp(start / 1e9, dt.timezone.utc)
            row["end"] = dt.datetime.fromtimestamp(end / 1e9, dt.timezone.utc)
            row["has_root"] = True
            row["services"] = sorted(row["services"])
            found[row["trace_id"]] = row
    return found


def run_summaries(store: Store, runs: list[RunRef]) -> list[dict[str, Any]]:
    """The summaries of these runs (`summarize`'s columns), in the order they started: the
    completed ones from completed_runs, the others (still receiving spans, or without a root)
    from their spans, one range read of trace_spans per run; the trace_summary view would read
    every partial row whose granule the runs share (seconds for runs spread over a week)."""
    if not runs:
        return []
    found = list(_completed(store, runs).values())
    done = {run["trace_id"] for run in found}
    rest = [r.trace_id for r in runs if r.trace_id not in done]
    if rest:
        rows = records(
            store,
            f"SELECT trace_id, {_SPAN_COLUMNS} FROM {store.database}.trace_spans"
            " WHERE trace_id IN {ids:Array(String)}",
            {"ids": rest},
        )
        by_trace: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            by_trace.setdefault(row.pop("trace_id"), {})[row["span_id"]] = row
        found += [summarize(t, _as_tree(list(spans.values()))) for t, spans in by_trace.items()]
    return sorted(found, key=lambda run: (run["start"], run["trace_id"]))


def session_totals(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """A conversation's figures from its runs' summaries (in start order)."""
    costs = [t["cost_usd"] for t in turns if t["cost_usd"] is not None]
    return {
        name: sum(t[name] or 0 for t in turns)
        for name in (
            "llm_calls",
            "tool_calls",
            "errors",
            "input_tokens",
            "output_tokens",
            "unpriced_calls",
        )
    } | {
        "turns": len(turns),
        "failed_turns": sum(t["status"] == "error" for t in turns),
        "cost_usd": sum(costs) if costs else None,
        "user_id": next((t["user_id"] for t in turns if t["user_id"]), ""),
        "services": sorted({s for t in turns for s in t["services"]}),
        "agent_name": next((t["agent_name"] for t in turns if t["agent_name"]), ""),
        "start": turns[0]["start"],
        "end": max(t["end"] for t in turns),
    }


def trace_scores(store: Store, trace_ids: list[str]) -> list[dict[str, Any]]:
    """The current scores of these runs and of their calls, oldest first."""
    if not trace_ids:
        return []
    return records(
        store,
        f"SELECT {CURRENT_SCORE_COLUMNS} FROM {store.database}.scores"
        " WHERE trace_id IN {traces:Array(String)}"
        f" GROUP BY {CURRENT_SCORE_KEY} ORDER BY source, name, at",
        {"traces": trace_ids},
    )


def summarize(trace_id: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    """The trace_summary row of a run (migration 011 defines it), from its spans at hand: the
    trace page has read every span already, and the view would merge the same spans' states
    again (a third of the page's time on a loaded store). Spans in tree order, roots first."""
    root = spans[0]
    llm = [s for s in spans if s["llm"]]
    priced = [s["cost_usd"] for s in llm if s["cost_usd"] is not None]
    start = min(s["start_ns"] for s in spans)
    end = max(s["end_ns"] for s in spans)
    return {
        "trace_id": trace_id,
        "root_span_id": root["span_id"],
        "root_name": root["name"],
        "service_name": root["service_name"],
        "root_kind": root["kind"],
        "status": root["status"],
        "has_root": not root["parent_span_id"],
        "start": dt.datetime.fromtimestamp(start / 1e9, dt.timezone.utc),
        "end": dt.datetime.fromtimestamp(end / 1e9, dt.timezone.utc),
        "duration_ms": (end - start) / 1e6,
        "agent_name": min(
            ((s["start_ns"], s["agent_name"]) for s in spans if s["agent_name"]),
            default=(0, ""),
        )[1],
        "spans": len(spans),
        "llm_calls": len(llm),
        "tool_calls": sum(s["kind"] == kinds.TOOL for s in spans),
        "errors": sum(s["status"] == "error" for s in spans),
        "tool_errors": sum(s["kind"] == kinds.TOOL and s["status"] == "error" for s in spans),
        "input_tokens": sum(s["input_tokens"] or 0 for s in llm),
        "output_tokens": sum(s["output_tokens"] or 0 for s in llm),
        "cost_usd": sum(priced) if priced or not llm else None,
        "unpriced_calls": len(llm) - len(priced),
        **{
            name: max((s[name] for s in spans), default="")
            for name in ("user_id", "session_id", "prompt_name", "prompt_version")
        },
        "services": sorted({s["service_name"] for s in spans}),
    }


def get_trace(store: Store, trace_id: str) -> Trace | None:
    """A trace whole: its summary, every span in tree order with its place on the time line
    (`offset_ms`, `duration_ms`, `left_pct`, `width_pct`), and its scores; None when no span of
    it is stored."""
    # Both reads at once: the store answers each in its own threads.
    with ThreadPoolExecutor(2) as pool:
        scores = pool.submit(trace_scores, store, [trace_id])
        spans = _as_tree(_spans(store, trace_id))
        if not spans:
            return None
        start = min(s["start_ns"] for s in spans)
        end = max(max(s["end_ns"], s["start_ns"]) for s in spans)
        total = max(end - start, 1)
        for span in spans:
            offset = span["start_ns"] - start
            length = max(span["end_ns"] - span["start_ns"], 0)
            span["offset_ms"] = offset / 1e6
            span["duration_ms"] = length / 1e6
            span["left_pct"] = min(offset / total * 100, 100 - MIN_BAR_PCT)
            span["width_pct"] = max(min(length / total * 100, 100 - span["left_pct"]), MIN_BAR_PCT)
        summary = summarize(trace_id, spans)
        return Trace(trace_id, summary, spans, scores.result(), total / 1e6)


_MESSAGE_COLUMNS = ("system_instructions", "input_messages", "output_messages")


def span_detail(store: Store, trace_id: str, span: dict[str, Any]) -> dict[str, Any]:
    """One span whole: its attributes (in full, as the span carried them), resource, events and
    status message from otel_traces, and for an LLM call its row (messages), for a tool its call
    (arguments, result)."""
    database = store.database
    at = {"trace": trace_id, "span": span["span_id"], "start": span["start_ns"]}
    raw = records(
        store,
        "SELECT SpanAttributes AS attributes, ResourceAttributes AS resource,"
        " toString(SpanKind) AS span_kind, StatusCode AS status_code,"
        " StatusMessage AS status_message, ScopeName AS scope, Events.Timestamp AS event_times,"
        " Events.Name AS event_names, Events.Attributes AS event_attributes"
        f" FROM {database}.otel_traces WHERE TraceId = {{trace:String}}"
        " AND SpanId = {span:String} AND Timestamp = fromUnixTimestamp64Nano({start:Int64})"
        " LIMIT 1",
        at,
    )
    detail: dict[str, Any] = dict(raw[0]) if raw else {"attributes": {}, "resource": {}}
    detail["events"] = [
        {"time": when, "name": name, "attributes": attrs}
        for when, name, attrs in zip(
            detail.pop("event_times", []),
            detail.pop("event_names", []),
            detail.pop("event_attributes", []),
            strict=False,
        )
    ]
    detail["call"] = None
    # Its messages (the rest of the call is on its own page), and the full text of the content
    # otel_traces holds a preview of (normalize/trace_content.py): both in the call's row.
    # Restored whether or not the span is known as an LLM call: the location says where.
    needed = columns_needed(detail["attributes"]) | set(_MESSAGE_COLUMNS if span["llm"] else ())
    columns = sorted(needed)
    if columns:
        calls = records(
            store,
            f"SELECT {', '.join(columns)} FROM {database}.llm_calls WHERE span_id = {{span:String}}"
            # its time, within a minute: the partitions of that day alone
            " AND timestamp BETWEEN fromUnixTimestamp64Nano({start:Int64} - 60000000000)"
            " AND fromUnixTimestamp64Nano({end:Int64} + 60000000000) LIMIT 1",
            {**at, "end": span["end_ns"]},
        )
        call = calls[0] if calls else None
        if call is not None:
            detail["attributes"] = restore_content(detail["attributes"], call)
        if span["llm"] and call is not None:
            detail["call"] = {name: call[name] for name in _MESSAGE_COLUMNS}
    detail["tool"] = None
    if span["kind"] == kinds.TOOL:
        tools = records(
            store,
            "SELECT tool_name, tool_call_id, tool_type, agent_name, arguments, result, status,"
            " error_type, error_message, duration_ms"
            f" FROM {database}.tool_calls WHERE trace_id = {{trace:String}}"
            " AND span_id = {span:String} LIMIT 1",
            at,
        )
        detail["tool"] = tools[0] if tools else None
    return detail


# --- sessions ------------------------------------------------------------------------------------
@dataclass
class SessionFilters:
    """What a person narrowed the sessions list to; all combined with AND. `since` and `until`
    are times (the API's `parse_time`: `24h`, `7d` or ISO 8601); a session is listed when one
    of its runs started between them."""

    user_id: str = ""
    service: str = ""
    since: str = "7d"
    until: str = ""

    @classmethod
    def from_params(cls, params: Any) -> SessionFilters:
        names = [f.name for f in fields(cls)]
        return cls(**{k: str(params[k]).strip() for k in names if k in params})

    def query_items(self) -> list[tuple[str, str]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name)]


def _recent_sessions(
    store: Store,
    clauses: list[str],
    values: dict[str, Any],
    since: dt.datetime,
    until: dt.datetime | None,
    limit: int,
) -> list[str]:
    """The `limit` most recently active sessions with a run in [since, until), from the partial
    summaries (cheap columns only). Windows grow back from `until` (or now): the newest sessions
    are those active in the last hour, when there are `limit` of them, and a short window reads
    a few parts however long the range."""
    end = until or dt.datetime.now(dt.timezone.utc)
    for window in (*SESSION_WINDOWS, None):
        start = since if window is None else max(since, end - window)
        _, rows = store.query(
            f"SELECT session_id FROM {store.database}.trace_summaries"
            f" WHERE {' AND '.join(clauses)} AND hour >= toStartOfHour({{from:DateTime64(3)}})"
            " GROUP BY session_id ORDER BY max(end) DESC LIMIT {limit:UInt32}",
            {**values, "from": start, "limit": limit},
        )
        if len(rows) >= limit or start == since:
            return [row[0] for row in rows]
    return []


def _runs_of(store: Store, session_ids: list[str]) -> list[RunRef]:
    """Every run of these sessions, from the partial summaries (cheap columns only)."""
    _, rows = store.query(
        "SELECT trace_id, any(session_id), min(hour), toUnixTimestamp64Nano(max(updated_at))"
        f" FROM {store.database}.trace_summaries"
        " WHERE session_id IN {sessions:Array(String)} GROUP BY trace_id",
        {"sessions": session_ids},
    )
    return [RunRef(str(t), str(s), hour, int(updated)) for t, s, hour, updated in rows]


def list_sessions(
    store: Store,
    filters: SessionFilters,
    since: dt.datetime,
    until: dt.datetime | None,
    limit: int = SESSIONS_PAGE,
) -> list[dict[str, Any]]:
    """The sessions with a run that started in [since, until), the most recently active first:
    turns (runs), their LLM and tool calls, errors, tokens and cost summed over all their runs
    (those outside the range too), and their session-level scores."""
    clauses = ["session_id != ''"]
    values: dict[str, Any] = {}
    if until is not None:
        clauses.append("hour <= {until:DateTime64(3)} AND start < {until:DateTime64(3)}")
        values["until"] = until
    if filters.user_id:
        clauses.append("user_id = {user:String}")
        values["user"] = filters.user_id
    if filters.service:
        clauses.append("has(services, {service:String})")
        values["service"] = filters.service
    chosen = _recent_sessions(store, clauses, values, since, until, limit)
    runs = _runs_of(store, chosen)
    session_of = {run.trace_id: run.session_id for run in runs}
    turns: dict[str, list[dict[str, Any]]] = {}
    for run in run_summaries(store, runs):
        turns.setdefault(session_of[run["trace_id"]], []).append(run)
    rows = [
        {"session_id": session, **session_totals(turns[session])}
        for session in chosen
        if session in turns
    ]
    rows.sort(key=lambda row: row["end"], reverse=True)
    scores = session_scores(store, [row["session_id"] for row in rows])
    for row in rows:
        row["scores"] = [s for s in scores if s["session_id"] == row["session_id"]]
    return rows


def session_scores(store: Store, session_ids: list[str]) -> list[dict[str, Any]]:
    """The current session-level scores of these sessions."""
    if not session_ids:
        return []
    return records(
        store,
        f"SELECT {CURRENT_SCORE_COLUMNS} FROM {store.database}.scores"
        " WHERE level = 'session' AND session_id IN {sessions:Array(String)}"
        f" GROUP BY {CURRENT_SCORE_KEY} ORDER BY source, name, at",
        {"sessions": session_ids},
    )


@dataclass
class Session:
    session_id: str
    turns: list[dict[str, Any]]  # its runs in start order, each with `question` and `answer`
    scores: list[dict[str, Any]]  # of the session
    run_scores: list[dict[str, Any]]  # of its runs and their calls

    @property
    def totals(self) -> dict[str, Any]:
        return session_totals(self.turns)


def get_session(store: Store, session_id: str) -> Session | None:
    """A conversation: its runs in the order they started, each with the question its first
    LLM call was asked and the answer of its last; None when no run names the session."""
    database = store.database
    turns = run_summaries(store, _runs_of(store, [session_id]))
    if not turns:
        return None
    ids = [t["trace_id"] for t in turns]
    calls = records(
        store,
        "SELECT trace_id, span_id, input_messages, output_messages, system_instructions"
        f" FROM {database}.llm_calls WHERE trace_id IN {{ids:Array(String)}}"
        " ORDER BY timestamp LIMIT 1 BY span_id",
        {"ids": ids},
    )
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_trace.setdefault(call["trace_id"], []).append(call)
    for turn in turns:
        runs = by_trace.get(turn["trace_id"], [])
        turn["question"] = EvalInput.from_llm_call(runs[0]).question if runs else ""
        turn["answer"] = EvalInput.from_llm_call(runs[-1]).output if runs else ""
    return Session(session_id, turns, session_scores(store, [session_id]), trace_scores(store, ids))
