// xpipe validate: profile, predict, run, compare (exec/validation.h); and
// xpipe profile --model: the profiling step alone, written as files for
// `xpipe sim`. Both run as threads of one process, or one rank per process
// when launched by torchrun (WORLD_SIZE set), over Gloo.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "common/error.h"
#include "common/generators.h"
#include "common/schedule_io.h"
#include "exec/executor.h"
#include "exec/validation.h"

namespace xpipe::cli {
namespace {

// The options both commands share: what to profile and how.
void AddSetupOptions(po::options_description& desc, exec::ValidationSetup& v, std::string& optimizer,
                     double& link_idle_us) {
  desc.add_options()("model", po::value(&v.model)->default_value("cnn"), "mlp, cnn, vgg, resnet")(
      "stages", po::value(&v.stages)->default_value(2), "pipeline devices N")(
      "micro-batches", po::value(&v.micro_batches)->default_value(4), "micro-batches per mini-batch T")(
      "micro-batch-size", po::value(&v.micro_batch_size)->default_value(32), "samples per micro-batch")(
      "optimizer", po::value(&optimizer)->default_value("adam"), "sgd, momentum, adam, adamw")(
      "device", po::value<std::string>()->default_value("cpu"), "cpu (one thread per stage)")(
      "repeats", po::value(&v.profiling.repeats)->default_value(15),
      "profiler: timed runs per figure (a layer's mean, the runtime's median)")(
      "link-idle-us", po::value(&link_idle_us)->default_value(1000),
      "profiler: how long a receiver has waited when a measured message comes")(
      "seed", po::value(&v.seed)->default_value(1), "seed");
}

void CheckSetup(const po::variables_map& vm, exec::ValidationSetup& v, const std::string& optimizer,
                double link_idle_us) {
  if (!(link_idle_us >= 0 && link_idle_us <= 1e6))
    throw InputError("--link-idle-us", "expected 0 to 1000000");
  v.profiling.link_idle_ns = UsToNs(link_idle_us);
  if (vm["device"].as<std::string>() != "cpu")
    throw InputError("--device", "only cpu is profiled and validated so far (got '" +
                                     vm["device"].as<std::string>() + "')");
  InRange("--repeats", v.profiling.repeats, 1, 10000);
  InRange("--stages", v.stages, 1, 64);
  InRange("--micro-batches", v.micro_batches, 1, 4096);
  InRange("--micro-batch-size", static_cast<double>(v.micro_batch_size), 1, 65536);
  if (v.micro_batch_size * v.micro_batches > 65536)
    throw InputError("--micro-batch-size", "x --micro-batches is more than 65536 samples per mini-batch");
  v.optimizer.kind = ParseOptimizer(optimizer, "--optimizer");
}

// The rank of this process when torchrun launched it, else null.
std::unique_ptr<exec::Rank> JoinIfLaunched(int timeout_s) {
  const auto env = exec::LaunchEnvFromEnvironment();
  if (!env) return nullptr;
  return std::make_unique<exec::Rank>(*env, exec::TransportKind::kGloo, std::chrono::seconds(timeout_s));
}

std::string TracePath(const std::string& base, const std::string& schedule, bool several) {
  if (!several) return base;
  const std::size_t dot = base.rfind('.');
  if (dot == std::string::npos || dot < base.rfind('/') + 1) return base + "-" + schedule;
  return base.substr(0, dot) + "-" + schedule + base.substr(dot);
}

double Pct(TimeNs predicted, TimeNs measured) {
  return measured > 0 ? 100.0 * static_cast<double>(predicted - measured) / static_cast<double>(measured) : 0;
}

}  // namespace

int ProfileModelCommand(const Args& args) {
  po::options_description desc("options");
  exec::ValidationSetup v;
  double link_idle_us = 0;
  std::string optimizer, out, cluster_out;
  desc.add_options()("help,h", "show this help");
  AddSetupOptions(desc, v, optimizer, link_idle_us);
  desc.add_options()("output,o", po::value(&out), "write the JSON profile here (default: stdout)")(
      "cluster-out", po::value(&cluster_out), "write the measured cluster (links, pass overhead) here");
  po::variables_map vm;
  if (!Parse(args, desc, vm,
             "usage: xpipe profile --model M [--micro-batch-size B] [-o PROFILE] [--cluster-out CLUSTER]\n"
             "  measures each layer and this machine's runtime; under torchrun the link is Gloo's"))
    return 0;
  CheckSetup(vm, v, optimizer, link_idle_us);
  exec::RetainHostMemory();
  auto rank = JoinIfLaunched(300);
  const exec::RuntimeProfile rp = exec::ProfileRuntime(v, rank.get());
  if (rank && rank->rank() != 0) return 0;
  const std::string json = ProfileToJson(rp.profile);
  if (out.empty())
    std::cout << json;
  else
    WriteFileAtomic(out, json);
  if (!cluster_out.empty()) WriteFileAtomic(cluster_out, ClusterToJson(rp.cluster));
  return 0;
}

int ValidateCommand(const Args& args) {
  po::options_description desc("options");
  exec::ValidationSetup v;
  double link_idle_us = 0;
  std::string optimizer, schedules, backward_weights, trace, profile_out, cluster_out;
  desc.add_options()("help,h", "show this help");
  AddSetupOptions(desc, v, optimizer, link_idle_us);
  desc.add_options()("schedules", po::value(&schedules)->default_value("gpipe,1f1b-flush,pipedream,xpipe"),
                     ("comma-separated schedules: " + ScheduleNames()).c_str())(
      "mini-batches", po::value(&v.mini_batches)->default_value(16), "mini-batches per measured run")(
      "runs", po::value(&v.runs)->default_value(7),
      "rounds of profile-then-run per schedule (the round of the median error is reported)")(
      "backward-weights", po::value(&backward_weights)->default_value("swap"), "swap or recompute")(
      "trace", po::value(&trace),
      "Perfetto file with the predicted and measured timelines (one per schedule)")(
      "profile-out", po::value(&profile_out), "keep the measured profile")(
      "cluster-out", po::value(&cluster_out), "keep the measured cluster")("json", "print JSON");
  po::variables_map vm;
  if (!Parse(args, desc, vm,
             "usage: xpipe validate [options]   (CPU; threads, or one rank per process under torchrun)\n"
             "  profiles the model and the runtime, predicts each schedule from the profile alone,\n"
             "  runs it on the executor, and compares time per mini-batch and per-stage busy time"))
    return 0;
  CheckSetup(vm, v, optimizer, link_idle_us);
  InRange("--mini-batches", v.mini_batches, 1, 100000);
  InRange("--runs", v.runs, 1, 1000);
  v.backward_weights = ParseWeightSwitch(backward_weights, "--backward-weights");
  if (v.backward_weights == WeightSwitch::kNone)
    throw InputError("--backward-weights", "expected swap or recompute");
  std::vector<ScheduleKind> kinds;
  for (const std::string& name : StringList(schedules))
    kinds.push_back(ParseScheduleKind(name, "--schedules"));
  if (kinds.empty()) throw InputError("--schedules", "names no schedule");

  exec::RetainHostMemory();
  auto rank = JoinIfLaunched(300);
  const bool leader = !rank || rank->rank() == 0;
  const exec::RuntimeProfile rp = exec::ProfileRuntime(v, rank.get());
  if (leader && !profile_out.empty()) WriteFileAtomic(profile_out, ProfileToJson(rp.profile));
  if (leader && !cluster_out.empty()) WriteFileAtomic(cluster_out, ClusterToJson(rp.cluster));
  std::vector<exec::ScheduleValidation> results;
  results.reserve(kinds.size());
  for (ScheduleKind kind : kinds) results.push_back(exec::ValidateSchedule(v, rp, kind, rank.get()));
  if (!leader) return 0;

  const std::string mode = rank ? "gloo ranks" : "threads";
  double abs_sum = 0;
  for (const auto& r : results) abs_sum += std::abs(r.error_pct());
  const double mae = abs_sum / static_cast<double>(results.size());
  for (std::size_t i = 0; i < results.size(); ++i)
    if (!trace.empty())
      WriteFileAtomic(TracePath(trace, std::string(ScheduleName(kinds[i])), results.size() > 1),
                      ToChromeTrace(results[i].schedule, {{"predicted", &results[i].predicted},
                                                          {"measured", &results[i].measured}}));
  if (vm.count("json")) {
    nlohmann::json j = {{"model", v.model},
                        {"mode", mode},
                        {"stages", v.stages},
                        {"micro_batches", v.micro_batches},
                        {"micro_batch_size", v.micro_batch_size},
                        {"mini_batches", v.mini_batches},
                        {"link_latency_us", NsToUs(rp.cluster.link_latency_ns)},
                        {"ping_pong_latency_us", NsToUs(rp.link.latency_ns)},
                        {"delivery_us", NsToUs(rp.delivery_ns)},
                        {"send_call_us", NsToUs(rp.send_ns)},
                        {"send_us", NsToUs(rp.cluster.send_fixed_ns)},
                        {"delivery_bytes", rp.delivery_bytes},
                        {"link_bandwidth_GBps", rp.cluster.link_bytes_per_sec / 1e9},
                        {"pass_overhead_us", NsToUs(rp.cluster.pass_overhead_ns)},
                        {"compute_contention", rp.cluster.compute_contention},
                        {"receive_fixed_us", NsToUs(rp.cluster.receive_fixed_ns)},
                        {"receive_GBps", rp.cluster.receive_bytes_per_sec / 1e9},
                        {"mean_abs_error_pct", mae}};
    j["schedules"] = nlohmann::json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      nlohmann::json stages = nlohmann::json::array();
      for (std::size_t k = 0; k < r.stages.size(); ++k)
        stages.push_back({{"stage", k},
                          {"predicted_busy_ms", NsToMs(r.stages[k].predicted_busy_ns)},
                          {"measured_busy_ms", NsToMs(r.stages[k].measured_busy_ns)},
                          {"error_pct", Pct(r.stages[k].predicted_busy_ns, r.stages[k].measured_busy_ns)}});
      j["schedules"].push_back({{"schedule", std::string(ScheduleName(kinds[i]))},
                                {"micro_batches", r.schedule.micro_batches},
                                {"predicted_ms", NsToMs(r.predicted_ns)},
                                {"measured_ms", NsToMs(r.measured_ns)},
                                {"error_pct", r.error_pct()},
                                {"stages", stages}});
      nlohmann::json& rounds = j["schedules"].back()["rounds"];
      for (std::size_t n = 0; n < r.round_measured_ns.size(); ++n)
        rounds.push_back({{"predicted_ms", NsToMs(r.round_predicted_ns[n])},
                          {"measured_ms", NsToMs(r.round_measured_ns[n])}});
    }
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::printf("%s, %d stages as %s, %d micro-batches of %lld samples, %d mini-batches x %d runs\n",
              v.model.c_str(), v.stages, mode.c_str(), v.micro_batches,
              static_cast<long long>(v.micro_batch_size), v.mini_batches, v.runs);
  std::printf(
      "runtime: link %.1f us + %.2f GB/s, receive %.1f us + %.2f GB/s, pass overhead %.1f us, "
      "contention %.1f%%\n",
      NsToUs(rp.cluster.link_latency_ns), rp.cluster.link_bytes_per_sec / 1e9,
      NsToUs(rp.cluster.receive_fixed_ns), rp.cluster.receive_bytes_per_sec / 1e9,
      NsToUs(rp.cluster.pass_overhead_ns), 100 * rp.cluster.compute_contention);
  std::printf("%-12s %13s %12s %8s   busy per stage, predicted/measured ms\n", "schedule", "predicted ms",
              "measured ms", "error");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    std::printf("%-12s %13.2f %12.2f %+7.1f%%  ", std::string(ScheduleName(kinds[i])).c_str(),
                NsToMs(r.predicted_ns), NsToMs(r.measured_ns), r.error_pct());
    for (const auto& st : r.stages)
      std::printf(" %.2f/%.2f", NsToMs(st.predicted_busy_ns), NsToMs(st.measured_busy_ns));
    std::printf("\n");
  }
  std::printf("mean absolute error %.1f%%\n", mae);
  return 0;
}

}  // namespace xpipe::cli
