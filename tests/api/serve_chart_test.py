"""The data-analysis interpreter agents expect, through the real service: pandas in, a
matplotlib chart out, as a file of the JSON result, a `file` event over SSE and an image block
over MCP; and `airlock serve` without a warm_pool setting keeps a python pool, warm with the
data stack, its memory in /metrics. Usage: serve_chart_test.py AIRLOCK_BINARY [unittest args]."""

import base64
import json
import sys
import time
import unittest

import serve_support as s

AIRLOCK = None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CHART = """
import pandas as pd
import matplotlib.pyplot as plt
frame = pd.DataFrame({"day": range(30), "visits": [d * d % 17 for d in range(30)]})
frame.plot(x="day", y="visits", title="visits per day")
plt.savefig("chart.png")
print(frame["visits"].sum())
"""
CHART_SUM = "242\n"


def chart_request(**extra):
    return {"runtime": "python", "code": CHART, "output": {"files": ["*.png"]}, **extra}


class ChartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = s.Server(AIRLOCK, s.base_config())

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def check_png(self, encoded):
        data = base64.b64decode(encoded)
        self.assertTrue(data.startswith(PNG_MAGIC), data[:16])

    def test_a_chart_comes_back_as_a_file_of_the_result(self):
        result = self.server.json("POST", "/v1/executions", chart_request())
        self.assertEqual(result["status"], "ok", result)
        self.assertEqual(result["stdout"], CHART_SUM)
        self.assertEqual(result["stderr"], "")  # headless, no font list built, no warning
        [chart] = result["files"]
        self.assertEqual(chart["path"], "chart.png")
        self.assertEqual(chart["media_type"], "image/png")
        self.assertEqual(chart["encoding"], "base64")
        self.check_png(chart["content"])

    def test_a_chart_is_a_file_event_over_sse(self):
        stream = self.server.stream(chart_request())
        self.assertEqual(stream.status, 200)
        names, files = [], []
        while (event := stream.next_event()) is not None:
            name, _, data = event
            names.append(name)
            if name == "file":
                files.append(data)
        stream.close()
        self.assertIn("file", names)
        self.assertEqual(names[-1], "exit")
        self.assertLess(names.index("file"), names.index("exit"))
        [chart] = [f.get("file", f) for f in files]
        self.assertEqual(chart["path"], "chart.png")
        self.assertEqual(chart["media_type"], "image/png")
        self.check_png(chart["content"])

    def test_a_chart_is_an_image_block_over_mcp(self):
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "run_code", "arguments": {"runtime": "python", "code": CHART}}}
        status, _, answer = self.server.request(
            "POST", "/mcp", body, headers={"Accept": "application/json, text/event-stream"})
        self.assertEqual(status, 200, answer[:300])
        result = json.loads(answer)["result"]
        self.assertFalse(result.get("isError"), result)
        images = [block for block in result["content"] if block["type"] == "image"]
        self.assertEqual(len(images), 1, [block["type"] for block in result["content"]])
        self.assertEqual(images[0]["mimeType"], "image/png")
        self.check_png(images[0]["data"])


class DefaultWarmPoolTest(unittest.TestCase):
    """No warm_pool setting: the built-in default keeps python sandboxes ready."""

    @classmethod
    def setUpClass(cls):
        config = s.base_config().replace("warm_pool: []\n", "")
        assert "warm_pool" not in config
        cls.server = s.Server(AIRLOCK, config)

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def wait_ready(self):
        deadline = time.monotonic() + s.STARTUP_LIMIT_S
        while time.monotonic() < deadline:
            values = self.server.metrics()
            if s.metric_total(values, "airlock_warm_pool_ready") >= 1:
                return values
            time.sleep(0.2)
        self.fail("the default warm pool never had a ready sandbox:\n" + "\n".join(self.server.logs[-20:]))

    def test_the_default_pool_serves_a_chart_warm_and_reports_its_memory(self):
        values = self.wait_ready()
        self.assertEqual(s.metric_total(values, "airlock_warm_pool_capacity"), 2)
        self.assertEqual(s.metric_total(values, "airlock_warm_pool_fork_server_up"), 1)
        # The fork server holds the imported data stack; each ready sandbox adds its own pages.
        self.assertGreater(s.metric_total(values, "airlock_warm_pool_fork_server_memory_bytes"), 0)
        self.assertGreater(s.metric_total(values, "airlock_warm_pool_memory_per_sandbox_bytes"), 0)
        self.assertGreaterEqual(s.metric_total(values, "airlock_warm_pool_memory_bytes"),
                                s.metric_total(values, "airlock_warm_pool_fork_server_memory_bytes"))
        hits = s.metric_total(values, "airlock_warm_pool_hits_total")
        result = self.server.json("POST", "/v1/executions", chart_request())
        self.assertEqual(result["status"], "ok", result)
        self.assertEqual(result["stdout"], CHART_SUM)
        self.assertEqual([f["path"] for f in result["files"]], ["chart.png"])
        self.assertEqual(s.metric_total(self.server.metrics(), "airlock_warm_pool_hits_total"), hits + 1)


if __name__ == "__main__":
    AIRLOCK = sys.argv.pop(1)
    unittest.main()
