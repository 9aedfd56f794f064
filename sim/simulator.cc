#include "sim/simulator.h"

#include <chrono>
#include <utility>

#include "common/error.h"
#include "common/versioning.h"
#include "sim/engines.h"

namespace xpipe {

namespace {

SimResult Run(const Schedule& s, const SimConfig& config) {
  // Contention couples the devices' compute in time: only the event queue has a clock.
  sim::Wiring w = sim::Wire(s, config);
  const bool chain = w.one_channel_per_link && config.cluster.compute_contention == 0;
  switch (config.engine) {
    case SimEngine::kAuto:
      return chain ? sim::RunDataflowEngine(s, config, std::move(w))
                   : sim::RunEventEngine(s, config, std::move(w));
    case SimEngine::kEventQueue:
      return sim::RunEventEngine(s, config, std::move(w));
    case SimEngine::kDataflow:
      if (!chain)
        throw InputError("--engine",
                         "dataflow runs only where every link carries one channel and nothing "
                         "contends (a chain); this cluster needs the event engine");
      return sim::RunDataflowEngine(s, config, std::move(w));
  }
  XPIPE_CHECK(false, "unknown engine");
  return {};
}

}  // namespace

SimResult Simulate(const Schedule& s, const SimConfig& config) {
  const auto start = std::chrono::steady_clock::now();
  SimResult r = Run(s, config);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

BilledWork Billed(const Schedule& s) {
  BilledWork w;
  w.forwards.assign(s.num_stages, 0);
  w.weight_copies.assign(s.num_stages, 0);
  const auto copies = WeightCopies(s);
  for (std::size_t d = 0; d < s.device_actions.size(); ++d)
    for (std::size_t i = 0; i < s.device_actions[d].size(); ++i) {
      const Action& a = s.device_actions[d][i];
      w.forwards[a.stage] += a.kind == ActionKind::kForward ||
                             (IsBackwardPass(a.kind) && a.weight_switch == WeightSwitch::kRecompute);
      w.weight_copies[a.stage] += copies[d][i];
    }
  return w;
}

}  // namespace xpipe
