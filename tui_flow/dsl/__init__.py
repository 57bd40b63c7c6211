"""The text flow DSL: `.flow` files.

    # parallel_tasks.flow
    flow ParallelProcessingDemo:
        description: "Flow for parallel processing demonstration"
        max_concurrency: 4

        task DataPreparation:
            description: "Prepare data for processing"
        task ProcessChunk1:
            runner: process
            retry_attempts: 2
        task AggregateResults

        DataPreparation -> [ProcessChunk1, ProcessChunk2] -> AggregateResults

One module per stage: `tokens` (tokenizer, errors, how a name is spelled), `parser` (the
grammar and syntax tree), `build` (bodies from Python, options checked, Workflows built),
`export` (DSL text and Mermaid out). docs/dsl.md is the user's guide.
"""

from __future__ import annotations

from .build import load_flow
from .export import dump_flow, to_mermaid
from .parser import FLOW_PROPERTIES, TASK_PROPERTIES, parse
from .tokens import FlowError, FlowProblem, tokenize

__all__ = [
    "FLOW_PROPERTIES",
    "TASK_PROPERTIES",
    "FlowError",
    "FlowProblem",
    "dump_flow",
    "load_flow",
    "parse",
    "to_mermaid",
    "tokenize",
]
