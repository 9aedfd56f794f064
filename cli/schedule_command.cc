// xpipe schedule: print a generated schedule, or check one written by hand.
#include <iostream>

#include "cli/options.h"
#include "common/error.h"
#include "common/generators.h"
#include "common/lowering.h"
#include "common/schedule_file.h"
#include "common/schedule_io.h"
#include "common/validate.h"

namespace xpipe::cli {
namespace {

int Print(const Schedule& s, const std::string& format) {
  if (format == "grid")
    std::cout << ToGrid(s);
  else if (format == "csv")
    std::cout << ToCsv(s, CsvFlavour::kPyTorch);
  else if (format == "xpipe-csv")
    std::cout << ToCsv(s, CsvFlavour::kXPipe);
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
    throw InputError("--format", "expected grid, csv, xpipe-csv, json or versions (got '" + format + "')");
  return 0;
}

}  // namespace

int ScheduleCommand(const Args& args) {
  po::options_description desc("options");
  std::string kind, format, check, target, predict_from, gpipe_order, file, policy;
  int stages = 4, micro = 2, mini = 3, chunks = 1;
  desc.add_options()("help,h", "show this help")("schedule", po::value(&kind)->default_value("xpipe"),
                                                 ("one of " + ScheduleNames()).c_str())(
      "stages", po::value(&stages)->default_value(4), "pipeline devices N")(
      "micro-batches", po::value(&micro)->default_value(2), "micro-batches per mini-batch T")(
      "mini-batches", po::value(&mini)->default_value(3), "mini-batches")(
      "chunks", po::value(&chunks)->default_value(1), "chunks per device (interleaved-1f1b)")(
      "target", po::value(&target)->default_value("round-trip"),
      "prediction target for predicting schedules")(
      "predict-from", po::value(&predict_from)->default_value("live"), kPredictFromHelp)(
      "format", po::value(&format)->default_value("grid"),
      "grid (unit steps), csv (PyTorch's _load_csv reads it: no U), "
      "xpipe-csv (csv with U<b> cells), json, or versions "
      "(weights each pass uses)")(
      "gpipe-backward-order", po::value(&gpipe_order)->default_value("reverse"),
      "GPipe's backwards: reverse (T-1..0, the GPipe paper) or forward (0..T-1, PyTorch's ScheduleGPipe)")(
      "lowered", "insert SEND/RECV actions")("schedule-file", po::value(&file),
                                             "print this schedule file (CSV or JSON) in --format instead of "
                                             "generating one (PyTorch's CSV -> xpipe's "
                                             "JSON and back)")(
      "policy", po::value(&policy),
      "with --schedule-file: the weights its passes use, as the named schedule uses them")(
      "check", po::value(&check),
      "validate a schedule file (.csv in PyTorch's format, compute-only or lowered, or .json) instead; T "
      "and the stages are inferred, --micro-batches splits a file without U into mini-batches");
  po::variables_map vm;
  if (!Parse(args, desc, vm,
             "usage: xpipe schedule [--schedule NAME --stages N --micro-batches T] "
             "[--format grid|csv|xpipe-csv|json|versions] | --schedule-file FILE [--format ...] | --check "
             "FILE"))
    return 0;
  Schedule s;
  if (vm.count("check")) {
    const ScheduleFile f = ReadScheduleFile(check, vm["micro-batches"].defaulted() ? 0 : micro);
    s = f.schedule;
    const ValidationResult r = Validate(s);
    if (!r.ok) {
      std::cout << r.grid;
      std::cerr << "xpipe schedule: " << check << ": " << r.error << "\n";
      return 2;
    }
    for (const std::string& note : f.notes) std::cerr << "xpipe schedule: note: " << note << "\n";
    std::cout << check << ": ok (" << s.num_devices << " devices, " << s.num_stages << " stages, "
              << s.mini_batches << " mini-batches of " << s.micro_batches << " micro-batches, "
              << s.NumActions() << " actions)\n";
    return 0;
  }
  if (vm.count("policy") && !vm.count("schedule-file")) throw InputError("--policy", "needs --schedule-file");
  if (vm.count("schedule-file")) {
    ScheduleFileOptions o;
    o.micro_batches = vm["micro-batches"].defaulted() ? 0 : micro;
    o.policy = policy;
    o.target = ParsePredictionTarget(target, "--target");
    o.prediction_base = ParsePredictionBase(predict_from, "--predict-from");
    ScheduleFile f = LoadScheduleFile(file, o);
    for (const std::string& note : f.notes) std::cerr << "xpipe schedule: note: " << note << "\n";
    s = std::move(f.schedule);
    const bool lowered = IsLowered(s);
    if (vm.count("lowered") && !lowered) s = LowerCommunication(s);
    if (!vm.count("lowered") && lowered) s = StripCommunication(s);
    return Print(s, format);
  }
  ScheduleParams p;
  p.kind = ParseScheduleKind(kind, "--schedule");
  p.devices = stages;
  p.micro_batches = micro;
  p.mini_batches = mini;
  p.chunks = chunks;
  p.target = ParsePredictionTarget(target, "--target");
  p.prediction_base = ParsePredictionBase(predict_from, "--predict-from");
  if (gpipe_order != "reverse" && gpipe_order != "forward")
    throw InputError("--gpipe-backward-order", "expected reverse or forward (got '" + gpipe_order + "')");
  p.gpipe_backward_forward_order = gpipe_order == "forward";
  s = MakeSchedule(p);
  if (vm.count("lowered")) s = LowerCommunication(s);
  return Print(s, format);
}

}  // namespace xpipe::cli
