#!/usr/bin/env python3
"""airlock as a tool in the two tool-use formats model APIs take, beside MCP (/mcp, which hosts
that speak MCP use directly: mcp_config.json, mcp_stdio_bridge.py).

Definitions, built from what the service offers (GET /v1/runtimes), so a model is never told of
a language the service cannot run:
    openai_tool(runtimes)     {"type": "function", "function": {name, description, parameters}}
    anthropic_tool(runtimes)  {"name", "description", "input_schema"}

Results, mapped back into each format's conversation:
    openai_tool_message(call_id, result)     {"role": "tool", "tool_call_id", "content": text}
    anthropic_tool_result(tool_use_id, result)
        {"type": "tool_result", "tool_use_id", "content": [text block, image blocks...],
         "is_error": true unless the run was ok}

Both carry the same text: the result's summary (status, exit code, reason, a hint), then stdout
and stderr, each cut to a budget with a note of what was cut, so a noisy run cannot flood the
model's context. Images the run returned (output.files, e.g. a chart) become image blocks for
Anthropic; OpenAI's tool messages take text only, so they are named in the text and
openai_image_message() makes the user message that shows them.

The arguments a model sends back are the same in both formats: {"runtime", "code", "stdin"?};
run_arguments() checks them before they reach the service.

    python3 examples/tool_formats.py --url http://127.0.0.1:8080 --key KEY   # prints both
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from airlock_client import AirlockClient  # noqa: E402

TOOL_NAME = "run_code"
TOOL_DESCRIPTION = (
    "Run a program in an isolated sandbox with no network and return its result: a summary line "
    "(status, exit code, reason and hint), then stdout and stderr. Each call starts fresh; "
    "nothing persists between calls. Print what you need to see. Files the program writes as "
    "*.png come back as images."
)
# What the model is shown of each stream: head and tail, the middle cut with a note.
MAX_STREAM_CHARS = 4000
# The image types both formats show to a model.
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def runtime_names(runtimes):
    """Names from GET /v1/runtimes (a list of {"name", ...}) or a list of names."""
    return sorted(r["name"] if isinstance(r, dict) else r for r in runtimes)


def input_schema(runtimes):
    return {
        "type": "object",
        "properties": {
            "runtime": {
                "type": "string",
                "description": "The language runtime to run the code with.",
                "enum": runtime_names(runtimes),
            },
            "code": {"type": "string", "description": "The complete program to run."},
            "stdin": {"type": "string", "description": "Text given to the program's stdin."},
        },
        "required": ["runtime", "code"],
        "additionalProperties": False,
    }


def openai_tool(runtimes):
    return {
        "type": "function",
        "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": input_schema(runtimes)},
    }


def anthropic_tool(runtimes):
    return {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": input_schema(runtimes)}


def run_arguments(arguments, runtimes):
    """The arguments a model sent (a JSON string, as OpenAI sends them, or a dict, as Anthropic
    does) as keyword arguments for AirlockClient.run; ValueError saying what is wrong."""
    if isinstance(arguments, str):
        arguments = json.loads(arguments)
    if not isinstance(arguments, dict):
        raise ValueError("the arguments must be an object")
    unknown = set(arguments) - {"runtime", "code", "stdin"}
    if unknown:
        raise ValueError(f"unknown arguments: {', '.join(sorted(unknown))}")
    runtime, code = arguments.get("runtime"), arguments.get("code")
    if runtime not in runtime_names(runtimes):
        raise ValueError(f"runtime must be one of {', '.join(runtime_names(runtimes))}")
    if not isinstance(code, str):
        raise ValueError("code must be a string")
    stdin = arguments.get("stdin", "")
    if not isinstance(stdin, str):
        raise ValueError("stdin must be a string")
    return {"runtime": runtime, "code": code, "stdin": stdin, "output": {"files": ["*.png"]}}


def cut(text, budget=MAX_STREAM_CHARS):
    if len(text) <= budget:
        return text
    head, tail = text[: budget // 2], text[-(budget // 2) :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


def images(result):
    """(path, media type, base64 data) of each complete image file the run returned."""
    found = []
    for file in result.get("files", []):
        media_type = file.get("media_type", "")
        if media_type in IMAGE_TYPES and not file.get("truncated") and file.get("encoding") == "base64":
            found.append((file["path"], media_type, file.get("content", "")))
    return found


def result_text(result):
    parts = [result["summary"].strip()]
    for stream in ("stdout", "stderr"):
        if result.get(stream):
            parts.append(f"{stream}:\n{cut(result[stream])}")
    for file in result.get("files", []):
        note = " (too large: not returned)" if file.get("truncated") else ""
        parts.append(f"file {file['path']}, {file.get('size_bytes', 0)} bytes{note}")
    return "\n\n".join(parts)


def openai_tool_message(call_id, result):
    return {"role": "tool", "tool_call_id": call_id, "content": result_text(result)}


def openai_image_message(result):
    """A user message showing the run's images (data URLs), or None when there are none."""
    shown = images(result)
    if not shown:
        return None
    content = [{"type": "text", "text": "The images the run wrote: " + ", ".join(p for p, _, _ in shown)}]
    for _, media_type, data in shown:
        content.append({"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}})
    return {"role": "user", "content": content}


def anthropic_tool_result(tool_use_id, result):
    content = [{"type": "text", "text": result_text(result)}]
    for _, media_type, data in images(result):
        content.append({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
    return {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": content,
        "is_error": result.get("status") != "ok",
    }


def error_text(error):
    """What a model reads when the call never ran (bad arguments, a refused request)."""
    return f"error: {error}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--key", default=None)
    args = parser.parse_args()
    runtimes = AirlockClient(args.url, args.key).runtimes()
    print(json.dumps({"openai": openai_tool(runtimes), "anthropic": anthropic_tool(runtimes)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
