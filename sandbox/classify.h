// From what the monitor saw to an Outcome with a reason a model can act on.
#pragma once

#include "sandbox/cgroup.h"
#include "sandbox/monitor.h"
#include "sandbox/outcome.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {

// The outcome of a run from what the monitor saw and the cgroup's counters.
Outcome classify(const MonitorResult& result, const CgroupStats& stats, const Limits& limits);

}  // namespace airlock::sandbox
