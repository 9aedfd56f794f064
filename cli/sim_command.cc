// xpipe sim: simulate one or more schedules on a profile and a cluster.
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "cli/options.h"
#include "common/error.h"
#include "common/schedule_file.h"
#include "common/schedule_io.h"
#include "common/trace.h"
#include "sim/baseline.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/sweep.h"

namespace xpipe::cli {

int SimCommand(const Args& args) {
  po::options_description desc("options");
  std::string profile, cluster, schedules, partition, trace, target, predict_from, out, engine,
      backward_weights, file, policies, baseline, tolerance;
  std::vector<std::string> sweeps;
  int stages = 4, micro = 4, mini = 0, chunks = 1, batch = 0, threads = 0, data_parallel = 1, nodes = 0;
  std::string placement;
  double bandwidth = 0, latency = -1, memory_gib = 0, jitter = 0;
  std::string speeds;
  std::uint64_t seed = 1;
  desc.add_options()("help,h", "show this help")("profile", po::value(&profile)->required(),
                                                 "model profile (JSON, see docs/profile-format.md)")(
      "cluster", po::value(&cluster), "cluster description (JSON); default: 12 GB/s chain, 10 us")(
      "schedules", po::value(&schedules)->default_value("xpipe,gpipe,pipedream,1f1b-flush"),
      ("comma-separated schedules: " + ScheduleNames()).c_str())(
      "schedule-file", po::value(&file),
      "simulate this schedule file instead (CSV as PyTorch or xpipe writes it, or JSON); devices, stages, T "
      "and mini-batches are the file's")("policy", po::value(&policies),
                                         "with --schedule-file: the weights its passes use, as the named "
                                         "schedules use them (comma-separated, one row each: e.g. "
                                         "gpipe,stale,pipedream,xpipe); default: the JSON's kind, else the "
                                         "live weights")("stages", po::value(&stages)->default_value(4),
                                                         "pipeline devices N")(
      "micro-batches", po::value(&micro)->default_value(4),
      "micro-batches per mini-batch T "
      "(pipedream and spectrain always run T = 1)")("mini-batches", po::value(&mini),
                                                    "mini-batches to simulate (default 4N + 4)")(
      "chunks", po::value(&chunks)->default_value(1), "model chunks per device (interleaved-1f1b)")(
      "batch-size", po::value(&batch), "samples per mini-batch (default: the profile's batch)")(
      "partition", po::value(&partition),
      "layers per stage, e.g. 10,12,9,8 (default: the profile's, "
      "else automatic)")("memory-limit-gib", po::value(&memory_gib),
                         "per-device memory limit for the automatic partition")(
      "bandwidth-gbps", po::value(&bandwidth), "override the link bandwidth (GB/s)")(
      "latency-us", po::value(&latency), "override the link latency (us)")(
      "speeds", po::value(&speeds), "relative speed per device, e.g. 1,1,0.5,1")(
      "no-overlap", "transfers keep the sending device busy (no copy engine)")(
      "data-parallel", po::value(&data_parallel)->default_value(1),
      "pipeline replicas D: each stage's gradients are all-reduced (ring) over its D GPUs at its update")(
      "overlap-allreduce",
      "with --data-parallel: the all-reduce overlaps the stage's backward (as DDP's buckets)")(
      "nodes", po::value(&nodes), "override the cluster's node count (a cluster file with nodes)")(
      "placement", po::value(&placement),
      "pipeline-first (each replica fills nodes) or data-first (a device's replicas adjacent, Megatron's "
      "order)")("shared-bus", "all transfers share one link")(
      "recompute", "keep only each stage's input per micro-batch (activation recomputation)")(
      "jitter", po::value(&jitter), "random +- fraction on every compute action (seeded)")(
      "seed", po::value(&seed), "seed for --jitter")(
      "engine", po::value(&engine)->default_value("auto"),
      "auto (dataflow on a chain, else event), dataflow, or event: the event-queue reference")(
      "target", po::value(&target)->default_value("round-trip"),
      "prediction target: round-trip, closed-form, synchronous, own-backward")(
      "predict-from", po::value(&predict_from)->default_value("live"), kPredictFromHelp)(
      "backward-weights", po::value(&backward_weights)->default_value("swap"),
      "a backward whose weights differ from its forward's: swap (two weight copies) or recompute (one more "
      "forward)")("detail", "print the per-stage table of every schedule")(
      "stats", "print the simulator's own speed on stderr: actions/s, events/s, wall time, peak memory")(
      "json", "print JSON instead of tables")(
      "baseline", po::value(&baseline),
      "compare with a saved `xpipe sim --json`: a table of ratios; exit 1 when a schedule's throughput, peak "
      "memory or staleness is worse than --tolerance")(
      "tolerance", po::value(&tolerance)->default_value("0%"), "with --baseline: e.g. 2% or 0.02")(
      "trace", po::value(&trace), "write a Chrome/Perfetto trace of the first schedule")(
      "sweep", po::value(&sweeps)->composing(),
      "sweep an axis, e.g. --sweep stages=2,4,8 (repeatable; "
      "axes: schedule stages micro-batches mini-batches batch-size bandwidth latency speed straggler "
      "data-parallel "
      "chunks)")("out", po::value(&out), "write the sweep CSV here instead of stdout")(
      "threads", po::value(&threads), "sweep threads (default: all cores)");
  po::variables_map vm;
  if (!Parse(args, desc, vm, "usage: xpipe sim --profile FILE [options]")) return 0;

  const double tol = ParseTolerance(tolerance);
  const std::string baseline_text = vm.count("baseline") ? ReadFile(baseline) : "";
  if (vm.count("baseline") && !sweeps.empty())
    throw InputError("--baseline", "compares schedules, not sweeps");
  Scenario base;
  base.profile = LoadProfile(profile);
  if (vm.count("cluster")) base.cluster = LoadCluster(cluster);
  if (vm.count("bandwidth-gbps"))
    base.cluster.link_bytes_per_sec = InRange("--bandwidth-gbps", bandwidth, 1e-9, 1e6) * 1e9;
  if (vm.count("latency-us")) base.cluster.link_latency_ns = UsToNs(InRange("--latency-us", latency, 0, 1e9));
  if (vm.count("speeds")) {
    base.cluster.speed = DoubleList("--speeds", speeds);
    for (double s : base.cluster.speed) InRange("--speeds", s, 1e-3, 1e3);
  }
  if (vm.count("memory-limit-gib")) InRange("--memory-limit-gib", memory_gib, 0, 1048576);
  if (vm.count("threads")) InRange("--threads", threads, 0, 256);
  if (vm.count("batch-size")) InRange("--batch-size", batch, 1, 1e9);
  if (vm.count("no-overlap")) base.cluster.overlap_compute = false;
  if (vm.count("shared-bus")) base.cluster.topology = Topology::kSharedBus;
  base.data_parallel = static_cast<int>(InRange("--data-parallel", data_parallel, 1, 65536));
  base.overlap_allreduce = vm.count("overlap-allreduce") > 0;
  if (vm.count("nodes")) {
    if (base.cluster.gpus_per_node == 0)
      throw InputError("--nodes", "the cluster has no nodes (give a cluster file with \"nodes\")");
    base.cluster.nodes = static_cast<int>(InRange("--nodes", nodes, 1, 100000));
    base.cluster.devices = base.cluster.nodes * base.cluster.gpus_per_node;
  }
  if (vm.count("placement")) {
    if (placement == "pipeline-first")
      base.cluster.placement_kind = Placement::kPipelineFirst;
    else if (placement == "data-first")
      base.cluster.placement_kind = Placement::kDataFirst;
    else
      throw InputError("--placement",
                       "expected pipeline-first or data-first, got '" + placement.substr(0, 32) + "'");
  }
  base.recompute = vm.count("recompute") > 0;
  if (jitter < 0 || jitter >= 1) throw InputError("--jitter", "must be in [0, 1)");
  base.jitter = jitter;
  base.seed = seed;
  if (engine == "auto") {
    base.engine = SimEngine::kAuto;
  } else if (engine == "event") {
    base.engine = SimEngine::kEventQueue;
  } else if (engine == "dataflow") {
    if (base.cluster.topology != Topology::kChain)
      throw InputError("--engine", "dataflow runs chains only; a shared bus needs the event engine");
    // (A multi-node cluster whose links carry several channels is refused when simulated.)
    base.engine = SimEngine::kDataflow;
  } else {
    throw InputError("--engine", "expected auto, dataflow or event, got '" + engine + "'");
  }
  base.batch_size = batch;
  if (vm.count("partition") && partition != "auto") base.partition = IntList("--partition", partition);
  if (vm.count("memory-limit-gib"))
    base.memory_limit = static_cast<Bytes>(memory_gib * (1LL << 30));
  else if (base.cluster.device_memory_bytes)
    base.memory_limit = base.cluster.device_memory_bytes;
  base.schedule.devices = stages;
  base.schedule.micro_batches = micro;
  base.schedule.mini_batches = vm.count("mini-batches") ? mini : 4 * stages + 4;
  base.schedule.chunks = chunks;
  base.schedule.target = ParsePredictionTarget(target, "--target");
  base.schedule.prediction_base = ParsePredictionBase(predict_from, "--predict-from");
  base.schedule.backward_weights = ParseWeightSwitch(backward_weights, "--backward-weights");
  if (base.schedule.backward_weights == WeightSwitch::kNone)
    throw InputError("--backward-weights", "expected swap or recompute");

  if (StringList(schedules).empty()) throw InputError("--schedules", "names no schedule");
  std::vector<NamedResult> results;
  if (vm.count("policy") && !vm.count("schedule-file")) throw InputError("--policy", "needs --schedule-file");
  if (vm.count("schedule-file")) {
    if (!vm["schedules"].defaulted()) throw InputError("--schedules", "give --schedules or --schedule-file");
    if (!sweeps.empty()) throw InputError("--sweep", "sweeps generate schedules; not with --schedule-file");
    ScheduleFileOptions fo;
    fo.micro_batches = vm["micro-batches"].defaulted() ? 0 : micro;
    fo.target = base.schedule.target;
    fo.prediction_base = base.schedule.prediction_base;
    fo.backward_weights = base.schedule.backward_weights;
    ScheduleFile f = ReadScheduleFile(file, fo.micro_batches);
    std::vector<std::string> names = StringList(policies);
    if (names.empty()) names.emplace_back();
    for (const std::string& name : names) {
      ScheduleFile one = f;
      fo.policy = name;
      PrepareSchedule(one, file, fo);
      Scenario sc = base;
      sc.given = std::move(one.schedule);
      sc.record_trace = results.empty() && !trace.empty();
      std::string label = file.substr(file.find_last_of('/') + 1);
      if (!name.empty()) label += " (" + name + ")";
      results.emplace_back(label, RunScenario(sc));
    }
    for (const std::string& note : f.notes) std::cerr << "xpipe sim: note: " << note << "\n";
  }
  if (!sweeps.empty()) {
    std::vector<SweepAxis> axes;
    axes.reserve(sweeps.size());
    for (const auto& s : sweeps) axes.push_back(ParseSweepAxis(s));
    base.schedule.kind = ParseScheduleKind(StringList(schedules).front(), "--schedules");
    const std::string csv = RunSweep(base, axes, threads);
    if (out.empty())
      std::cout << csv;
    else
      WriteFileAtomic(out, csv);
    return 0;
  }

  for (const std::string& name :
       vm.count("schedule-file") ? std::vector<std::string>{} : StringList(schedules)) {
    Scenario sc = base;
    sc.schedule.kind = ParseScheduleKind(name, "--schedules");
    std::string label = name;
    if (TraitsOf(sc.schedule.kind).micro_batches == MicroBatchRule::kOne && micro != 1) {
      sc.schedule.micro_batches = 1;  // one micro-batch per mini-batch by definition
      label += " (T=1)";
    }
    if (sc.schedule.kind != ScheduleKind::kInterleaved1F1B) sc.schedule.chunks = 1;
    sc.record_trace = results.empty() && !trace.empty();
    results.emplace_back(label, RunScenario(sc));
  }
  if (!trace.empty())
    WriteFileAtomic(trace, ToChromeTrace(results.front().second.schedule, results.front().second.sim.trace));
  if (vm.count("stats")) {
    for (const auto& [name, r] : results) {
      const SimResult& m = r.sim;
      const double sec = std::max(m.seconds, 1e-9);
      std::fprintf(stderr, "stats: %s: %lld actions%s in %.3f s: %.2f M actions/s", name.c_str(),
                   static_cast<long long>(m.actions), m.event_engine ? "" : " (dataflow engine, no events)",
                   m.seconds, static_cast<double>(m.actions) / sec / 1e6);
      if (m.event_engine)
        std::fprintf(stderr, ", %lld events, %.2f M events/s (event engine)",
                     static_cast<long long>(m.events), static_cast<double>(m.events) / sec / 1e6);
      std::fprintf(stderr, "\n");
    }
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    std::fprintf(stderr, "stats: peak resident memory %.1f MiB (the whole process)\n", u.ru_maxrss / 1024.0);
  }
  if (vm.count("baseline")) {
    const BaselineReport report = CompareWithBaseline(results, baseline_text, baseline, tol);
    std::cout << report.Table();
    const auto worse =
        std::count_if(report.rows.begin(), report.rows.end(), [](const auto& r) { return r.worse; }) +
        static_cast<long>(report.missing.size());
    std::cout << (report.ok() ? "ok: nothing worse than the baseline by more than " + tolerance
                              : std::to_string(worse) + " figure(s) worse than the baseline by more than " +
                                    tolerance)
              << "\n";
    return report.ok() ? 0 : 1;
  }
  if (vm.count("json")) {
    std::cout << ResultsJson(results);
    return 0;
  }
  const ScenarioResult& first = results.front().second;
  const bool given = vm.count("schedule-file") > 0;
  const int T = given ? first.schedule.micro_batches : micro;
  std::cout << base.profile.name << " on " << (given ? first.schedule.num_devices : stages) << " devices";
  if (base.data_parallel > 1) std::cout << " x " << base.data_parallel << " replicas";
  std::cout << ", " << T << " micro-batches of " << (batch > 0 ? batch : base.profile.batch_size) / T
            << " samples, link " << base.cluster.link_bytes_per_sec / 1e9 << " GB/s";
  if (base.cluster.gpus_per_node > 0)
    std::cout << " in a node, " << base.cluster.network.bytes_per_sec / 1e9 << " GB/s "
              << (base.cluster.network.shared_nic ? "shared NIC" : "NIC per GPU") << " between "
              << base.cluster.nodes << " nodes of " << base.cluster.gpus_per_node;
  std::cout << "; " << (first.auto_partition ? "automatic partition" : "given partition")
            << " (layers per stage)\n\n"
            << CompareTable(results);
  if (vm.count("detail"))
    for (const auto& [name, r] : results) std::cout << "\n" << name << ":\n" << StageTable(r);
  return 0;
}

}  // namespace xpipe::cli
