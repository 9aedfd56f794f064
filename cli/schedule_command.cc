// xpipe schedule: print a generated schedule, or check one written by hand.
#include <iostream>

#include "cli/options.h"
#include "common/error.h"
#include "common/generators.h"
#include "common/lowering.h"
#include "common/schedule_io.h"
#include "common/validate.h"

namespace xpipe::cli {

int ScheduleCommand(const Args& args) {
  po::options_description desc("options");
  std::string kind, format, check, target;
  int stages = 4, micro = 2, mini = 3, chunks = 1;
  desc.add_options()("help,h", "show this help")("schedule", po::value(&kind)->default_value("xpipe"),
                                                 ("one of " + ScheduleNames()).c_str())(
      "stages", po::value(&stages)->default_value(4), "pipeline devices N")(
      "micro-batches", po::value(&micro)->default_value(2), "micro-batches per mini-batch T")(
      "mini-batches", po::value(&mini)->default_value(3), "mini-batches")(
      "chunks", po::value(&chunks)->default_value(1), "chunks per device (interleaved-1f1b)")(
      "target", po::value(&target)->default_value("round-trip"),
      "prediction target for predicting schedules")("format", po::value(&format)->default_value("grid"),
                                                    "grid (unit steps), csv (PyTorch), json, or "
                                                    "versions (weights each pass uses)")(
      "lowered", "insert SEND/RECV actions")(
      "check", po::value(&check), "validate a schedule file (.csv in PyTorch's format, or .json) instead");
  po::variables_map vm;
  if (!Parse(args, desc, vm,
             "usage: xpipe schedule [--schedule NAME --stages N --micro-batches T] "
             "[--format grid|csv|json|versions] | --check FILE"))
    return 0;
  Schedule s;
  if (vm.count("check")) {
    const std::string text = ReadFile(check);
    const bool json = check.size() > 5 && check.substr(check.size() - 5) == ".json";
    s = json ? ParseJson(text, check) : ParseCsv(text, micro, check);
    const ValidationResult r = Validate(s);
    if (!r.ok) {
      std::cout << r.grid;
      std::cerr << "xpipe schedule: " << check << ": " << r.error << "\n";
      return 2;
    }
    std::cout << check << ": ok (" << s.num_devices << " devices, " << s.num_stages << " stages, "
              << s.mini_batches << " mini-batches of " << s.micro_batches << " micro-batches, "
              << s.NumActions() << " actions)\n";
    return 0;
  }
  ScheduleParams p;
  p.kind = ParseScheduleKind(kind, "--schedule");
  p.devices = stages;
  p.micro_batches = micro;
  p.mini_batches = mini;
  p.chunks = chunks;
  p.target = ParsePredictionTarget(target, "--target");
  s = MakeSchedule(p);
  if (vm.count("lowered")) s = LowerCommunication(s);
  if (format == "grid")
    std::cout << ToGrid(s);
  else if (format == "csv")
    std::cout << ToCsv(s);
  else if (format == "json")
    std::cout << ToJson(s);
  else if (format == "versions") {
    for (int d = 0; d < s.num_devices; ++d) {
      std::cout << "GPU" << d << ":";
      for (const Action& a : s.device_actions[d]) {
        if (!IsCompute(a.kind)) continue;
        std::cout << ' ' << ToText(a, s.micro_batches) << "@v" << a.version;
        if (a.weights == WeightSource::kPredicted)
          std::cout << (a.reuse_prediction ? "~s" : "+s") << a.horizon;
        else if (a.weights != WeightSource::kCurrent)
          std::cout << '(' << WeightSourceName(a.weights) << ')';
      }
      std::cout << '\n';
    }
  } else
    throw InputError("--format", "expected grid, csv, json or versions (got '" + format + "')");
  return 0;
}

}  // namespace xpipe::cli
