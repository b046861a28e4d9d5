"""Experiment run speed: items per second through `evaluate` with everything recorded.

The real openai client against the local fake model (a fixed latency per answer, like a fast
API), two heuristic evaluators, results and traces sent to a collector on embedded storage.
Printed: the run's wall time and items/s at a few concurrencies, and what recording adds
over the same run kept local (`record=False`).

    .venv/bin/python bench/experiments.py [--items 200] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import OpenAI

from assay.collector.demo.fake_openai import FakeOpenAI
from assay.evaluators import Dataset, contains, evaluate, token_f1
from tests.conftest import start_collector


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per model answer")
    args = parser.parse_args()
    items = [{"input": f"Question number {i}?", "expected": "question"} for i in range(args.items)]
    dataset = Dataset("bench", items)
    with tempfile.TemporaryDirectory() as folder, FakeOpenAI(latency=args.latency) as fake:
        collector = start_collector(Path(folder) / "data", Path(folder) / "collector.log")
        os.environ["ASSAY_URL"] = collector.http_url
        client = OpenAI(base_url=fake.base_url, api_key="fake", max_retries=0)

        def task(question: str) -> str:
            answer = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
            )
            return answer.choices[0].message.content or ""

        evaluators = [contains(ignore_case=True), token_f1()]
        try:
            print(f"{args.items} items, model latency {args.latency * 1000:.0f} ms")
            for concurrency in (1, 8, 32):
                timings = {}
                for record in (False, True):
                    started = time.perf_counter()
                    evaluate(
                        dataset,
                        task,
                        evaluators,
                        experiment=f"bench-{concurrency}",
                        concurrency=concurrency,
                        record=record,
                        progress=False,
                    )
                    timings[record] = time.perf_counter() - started
                print(
                    f"concurrency {concurrency:>2}: local {args.items / timings[False]:7.1f} "
                    f"items/s, recorded {args.items / timings[True]:7.1f} items/s "
                    f"(+{(timings[True] - timings[False]) * 1000 / args.items:.2f} ms/item)"
                )
        finally:
            collector.stop()


if __name__ == "__main__":
    main()
