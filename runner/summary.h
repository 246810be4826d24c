// The few lines a model reads first: what happened, why, and what to do about it.
#pragma once

#include <string>

#include "runner/runner.h"

namespace airlock::runner {

// Status line, hint, exit, usage, output sizes and blocked calls of a finished run.
std::string summarize(const RunResult& result, const sandbox::Limits& limits);

// One sentence suggesting a next step for a failure, or "" for a success.
std::string hint_for(const RunResult& result, const sandbox::Limits& limits);

}  // namespace airlock::runner
