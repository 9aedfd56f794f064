#include "sim/simulator.h"

#include "common/error.h"
#include "sim/engines.h"

namespace xpipe {

SimResult Simulate(const Schedule& s, const SimConfig& config) {
  const bool chain = config.cluster.topology == Topology::kChain;
  switch (config.engine) {
    case SimEngine::kAuto:
      return chain ? sim::RunSweepEngine(s, config) : sim::RunEventEngine(s, config);
    case SimEngine::kEventQueue:
      return sim::RunEventEngine(s, config);
    case SimEngine::kSweep:
      XPIPE_CHECK(chain, "the sweep engine runs chains only");
      return sim::RunSweepEngine(s, config);
  }
  XPIPE_CHECK(false, "unknown engine");
  return {};
}

}  // namespace xpipe
