#!/usr/bin/env python3
"""An agent loop that gives a model airlock as a tool, in the JSON-schema function-calling format
that model APIs use ("tools": [{"type": "function", "function": {..., "parameters": SCHEMA}}]).

The tool's definition and the mapping of results are in tool_formats.py, which also has the
Anthropic form (a `tool_result` block with the run's images) for a loop written against that API.

The model side is pluggable: anything with `respond(messages, tools) -> reply` works, where a reply
is {"content": str, "tool_calls": [{"id", "name", "arguments": JSON string}]}. This file ships a
scripted stand-in (no network calls to any model API), which makes a mistake, reads the sandbox's
answer, fixes its code and answers, so the loop can be watched end to end:

    agent_loop.py --url http://127.0.0.1:8080 --key KEY

To use a real model, write an adapter class with the same `respond` method that sends `messages`
and `tools` to your provider and converts its reply; nothing else changes.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from airlock_client import AirlockClient, AirlockError  # noqa: E402
import tool_formats  # noqa: E402


def run_tool(client, call, runtimes):
    """Runs one tool call; returns the text for the model. Errors are told, not raised."""
    if call["name"] != tool_formats.TOOL_NAME:
        return tool_formats.error_text(f"no tool named {call['name']}")
    try:
        arguments = tool_formats.run_arguments(call["arguments"], runtimes)
        result = client.run(**arguments)
    except ValueError as error:
        return tool_formats.error_text(f"the arguments are not valid: {error}")
    except AirlockError as error:
        return tool_formats.error_text(f"the sandbox refused the request: {error}")
    return tool_formats.openai_tool_message(call["id"], result)["content"]


def agent_loop(model, client, task, max_turns=8):
    """Runs the conversation until the model answers without calling a tool. The tool offers the
    runtimes the service has (GET /v1/runtimes), not a list written here."""
    runtimes = client.runtimes()
    tools = [tool_formats.openai_tool(runtimes)]
    messages = [
        {"role": "system", "content": "You solve tasks by running code with the run_code tool."},
        {"role": "user", "content": task},
    ]
    for _ in range(max_turns):
        reply = model.respond(messages, tools)
        messages.append({"role": "assistant", "content": reply.get("content", ""), "tool_calls": reply.get("tool_calls", [])})
        if not reply.get("tool_calls"):
            return reply["content"], messages
        for call in reply["tool_calls"]:
            print(f"[tool call] {call['name']}({call['arguments']})", file=sys.stderr)
            output = run_tool(client, call, runtimes)
            print(f"[tool result]\n{output}\n", file=sys.stderr)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
    return "I could not finish within the turn limit.", messages


class ScriptedModel:
    """A stand-in model: computes the sum of the first 100 primes, making one mistake on the way."""

    def __init__(self):
        self.turn = 0

    def respond(self, messages, tools):
        assert tools[0]["function"]["name"] == "run_code"
        assert "python" in tools[0]["function"]["parameters"]["properties"]["runtime"]["enum"]
        self.turn += 1
        last = messages[-1]
        if self.turn == 1:
            # First try: a typo (`prime` for `primes`) the sandbox's stderr will point out.
            code = "primes = []\nn = 2\nwhile len(primes) < 100:\n    if all(n % p for p in primes):\n        primes.append(n)\n    n += 1\nprint(sum(prime))\n"
            return self._call(code)
        if last["role"] == "tool" and "NameError" in last["content"]:
            code = "primes = []\nn = 2\nwhile len(primes) < 100:\n    if all(n % p for p in primes):\n        primes.append(n)\n    n += 1\nprint(sum(primes))\n"
            return self._call(code)
        if last["role"] == "tool" and "stdout:" in last["content"]:
            answer = last["content"].split("stdout:\n", 1)[1].split("\n", 1)[0].strip()
            return {"content": f"The sum of the first 100 primes is {answer}.", "tool_calls": []}
        return {"content": "The sandbox did not give me an answer.", "tool_calls": []}

    def _call(self, code):
        arguments = json.dumps({"runtime": "python", "code": code})
        return {"content": "", "tool_calls": [{"id": f"call_{self.turn}", "name": "run_code", "arguments": arguments}]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--key", default=None)
    args = parser.parse_args()
    client = AirlockClient(args.url, args.key)
    answer, _ = agent_loop(ScriptedModel(), client, "What is the sum of the first 100 prime numbers?")
    print(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
