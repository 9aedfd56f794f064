// xpipe validate: how well does the simulator predict the executor? Runs a
// schedule on the executor with timing, gives the simulator the measured
// per-stage pass times, and reports simulated against measured time.
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "common/error.h"
#include "common/generators.h"
#include "common/schedule_io.h"
#include "exec/data.h"
#include "exec/executor.h"
#include "sim/scenario.h"

namespace xpipe::cli {

int ValidateCommand(const Args& args) {
  po::options_description desc("options");
  std::string model, schedule, optimizer, trace_exec, trace_sim, backward_weights;
  int stages = 2, micro = 4, mini = 8, batch = 64;
  uint64_t seed = 1;
  desc.add_options()("help,h", "show this help")("model", po::value(&model)->default_value("cnn"),
                                                 "mlp, cnn, vgg, resnet")(
      "schedule", po::value(&schedule)->default_value("xpipe"), ("one of " + ScheduleNames()).c_str())(
      "stages", po::value(&stages)->default_value(2), "pipeline devices N")(
      "micro-batches", po::value(&micro)->default_value(4), "micro-batches per mini-batch T")(
      "mini-batches", po::value(&mini)->default_value(8), "mini-batches to run and simulate")(
      "batch-size", po::value(&batch)->default_value(64), "samples per mini-batch")(
      "optimizer", po::value(&optimizer)->default_value("adam"), "sgd, momentum, adam, adamw")(
      "backward-weights", po::value(&backward_weights)->default_value("swap"), "swap or recompute")(
      "seed", po::value(&seed)->default_value(1), "seed")("trace-exec", po::value(&trace_exec),
                                                          "write the executor's measured trace")(
      "trace-sim", po::value(&trace_sim), "write the simulator's trace")("json", "print JSON");
  po::variables_map vm;
  if (!Parse(args, desc, vm, "usage: xpipe validate [options]   (CPU threads, synthetic data)")) return 0;
  if (batch % micro != 0) throw InputError("--batch-size", "does not split into the micro-batches");
  ScheduleParams sp;
  sp.kind = ParseScheduleKind(schedule, "--schedule");
  sp.devices = stages;
  sp.micro_batches = micro;
  sp.mini_batches = mini;
  sp.backward_weights = ParseWeightSwitch(backward_weights, "--backward-weights");
  if (sp.backward_weights == WeightSwitch::kNone)
    throw InputError("--backward-weights", "expected swap or recompute");
  const Schedule s = MakeSchedule(sp);
  const exec::Dataset data =
      exec::Synthetic(static_cast<int64_t>(batch) * mini, {1, 16, 16}, 10, seed, 12345);
  exec::ExecConfig ec;
  ec.stages = exec::Partition(exec::MakeModel(model, data.shape, data.classes), s.num_stages, {});
  ec.devices.assign(s.num_stages, torch::kCPU);
  ec.sample_output_shapes = exec::SampleOutputShapes(ec.stages, data.shape);
  ec.micro_batch_size = batch / micro;
  ec.optimizer.kind = ParseOptimizer(optimizer, "--optimizer");
  ec.record_trace = true;
  exec::Executor ex(ec, exec::InitStages(ec.stages, seed));
  const int m = batch / micro;
  const exec::MicroBatchFn fn = [&](int64_t b, int j) {
    const int64_t start = b * batch + static_cast<int64_t>(j) * m;
    return std::make_pair(data.images.slice(0, start, start + m), data.labels.slice(0, start, start + m));
  };
  ex.Run(s, fn, 0);  // warm-up: allocator and caches
  const exec::SegmentResult r = ex.Run(s, fn, 0);

  // Mean measured time of each pass kind per stage.
  std::vector<StageCost> costs(s.num_stages);
  std::vector<int64_t> nf(s.num_stages, 0), nb(s.num_stages, 0);
  TimeNs first = r.trace.spans.empty() ? 0 : r.trace.spans.front().start_ns, last = 0;
  for (const ActionSpan& sp2 : r.trace.spans) {
    const TimeNs d = sp2.end_ns - sp2.start_ns;
    first = std::min(first, sp2.start_ns);
    last = std::max(last, sp2.end_ns);
    if (sp2.action.kind == ActionKind::kForward)
      costs[sp2.action.stage].forward_ns += d, ++nf[sp2.action.stage];
    else if (IsBackwardPass(sp2.action.kind) || sp2.action.kind == ActionKind::kBackwardWeight)
      costs[sp2.action.stage].backward_ns += d,
          nb[sp2.action.stage] += sp2.action.kind != ActionKind::kBackwardWeight;
  }
  for (int k = 0; k < s.num_stages; ++k) {
    costs[k].forward_ns /= std::max<int64_t>(1, nf[k]);
    costs[k].backward_ns /= std::max<int64_t>(1, nb[k]);
  }
  SimConfig cfg;
  cfg.stages = costs;  // activations move in memory between threads: no link cost
  cfg.memory = MemoryModelFor(s, ec.optimizer.kind, false);
  cfg.samples_per_mini_batch = batch;
  cfg.record_trace = !trace_sim.empty();
  const SimResult sim = Simulate(s, cfg);
  const TimeNs measured = last - first;
  const double error = static_cast<double>(sim.makespan_ns - measured) / static_cast<double>(measured);
  if (!trace_exec.empty()) WriteFileAtomic(trace_exec, ToChromeTrace(s, r.trace));
  if (!trace_sim.empty()) WriteFileAtomic(trace_sim, ToChromeTrace(s, sim.trace));
  if (vm.count("json")) {
    nlohmann::json j = {{"schedule", schedule},
                        {"stages", stages},
                        {"micro_batches", micro},
                        {"mini_batches", mini},
                        {"measured_ms", NsToMs(measured)},
                        {"simulated_ms", NsToMs(sim.makespan_ns)},
                        {"relative_error", error}};
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::printf("%s, %s, %d stages x %d micro-batches, %d mini-batches on CPU threads\n", model.c_str(),
              schedule.c_str(), stages, micro, mini);
  for (int k = 0; k < s.num_stages; ++k)
    std::printf("  stage %d: F %.3f ms, B %.3f ms (measured means)\n", k, NsToMs(costs[k].forward_ns),
                NsToMs(costs[k].backward_ns));
  std::printf("measured %.2f ms, simulated %.2f ms, error %+.1f%%\n", NsToMs(measured),
              NsToMs(sim.makespan_ns), 100 * error);
  return 0;
}

}  // namespace xpipe::cli
