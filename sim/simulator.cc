#include "sim/simulator.h"

#include "common/error.h"
#include "sim/engines.h"

namespace xpipe {

SimResult Simulate(const Schedule& s, const SimConfig& config) {
  const bool chain = config.cluster.topology == Topology::kChain;
  switch (config.engine) {
    case SimEngine::kAuto:
      return chain ? sim::RunDataflowEngine(s, config) : sim::RunEventEngine(s, config);
    case SimEngine::kEventQueue:
      return sim::RunEventEngine(s, config);
    case SimEngine::kDataflow:
      XPIPE_CHECK(chain, "the dataflow engine runs chains only");
      return sim::RunDataflowEngine(s, config);
  }
  XPIPE_CHECK(false, "unknown engine");
  return {};
}

}  // namespace xpipe
