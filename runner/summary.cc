// Being written: see runner/runner.h.
