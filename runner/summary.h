// The few lines a model reads first: what happened, why, and what to do about it.
#pragma once

#include <string>

#include "runner/runner.h"

namespace airlock::runner {

// Status line, hint, exit, usage, output sizes and blocked calls of a finished run.
std::string summarize(const RunResult& result, const sandbox::Limits& limits);

// One sentence suggesting a next step for a failure, or "" for a success.
std::string hint_for(const RunResult& result, const sandbox::Limits& limits);

// The line of a failed program's stderr that says what went wrong, at most ~200 bytes: the
// last exception line ("ZeroDivisionError: division by zero", "Exception in thread ..."), else
// the first compiler error ("main.c:3:5: error: ..."), else the last line that is not a stack
// frame. "" when stderr is empty.
std::string error_line(std::string_view stderr_text);

// For a program that failed (nonzero exit, or a compiler that rejected it) and whose reason says
// no more than its exit code: the error line of its stderr as the reason, when there is one.
void quote_error_line(RunResult& result);

}  // namespace airlock::runner
