// xpipe profile import: PipeDream graph.txt -> xpipe JSON profile.
// xpipe profile transformer: a decoder-only model's config + a device -> profile.
// (xpipe profile --model: cli/validate_command.cc, which needs LibTorch.)
#include <iostream>

#include "cli/options.h"
#include "common/error.h"
#include "common/profile.h"
#include "common/schedule_io.h"
#include "common/transformer.h"

namespace xpipe::cli {
namespace {

// The profile as JSON on stdout, or into `out` atomically.
int WriteProfile(const Profile& p, const std::string& out) {
  const std::string json = ProfileToJson(p);
  if (out.empty())
    std::cout << json;
  else
    WriteFileAtomic(out, json);
  return 0;
}

int ProfileTransformerCommand(const Args& args) {
  po::options_description desc("options");
  TransformerConfig c;
  std::string device, out, precision, name;
  desc.add_options()("help,h", "show this help")("layers", po::value(&c.layers)->required(),
                                                 "transformer blocks")(
      "hidden", po::value(&c.hidden)->required(), "hidden size h")("heads", po::value(&c.heads)->required(),
                                                                   "attention heads a")(
      "ffn", po::value(&c.ffn)->default_value(0), "FFN size (default 4 x hidden)")(
      "vocab", po::value(&c.vocab)->required(), "vocabulary size V")(
      "seq-len", po::value(&c.seq_len)->required(), "sequence length s")(
      "micro-batch-size", po::value(&c.micro_batch_size)->default_value(1),
      "sequences per micro-batch b (the profile's batch; sim scales it)")(
      "precision", po::value(&precision)->default_value("bf16"), "fp32, tf32, bf16 or fp16")(
      "device", po::value(&device)->required(), "device description (JSON, e.g. profiles/devices/h100.json)")(
      "name", po::value(&name), "profile name (default gpt-l<layers>-h<hidden>)")(
      "output,o", po::value(&out), "write the JSON profile here (default: stdout)");
  po::variables_map vm;
  if (!Parse(args, desc, vm,
             "usage: xpipe profile transformer --layers L --hidden H --heads A --vocab V --seq-len S "
             "--device FILE [-o OUT]"))
    return 0;
  c.precision = ParsePrecision(precision, "--precision");
  Profile p = TransformerProfile(c, LoadDeviceSpec(device));
  if (!name.empty()) p.name = name;
  return WriteProfile(p, out);
}

}  // namespace

int ProfileCommand(const Args& args) {
  if (!args.empty() && args.front() == "transformer")
    return ProfileTransformerCommand(Args(args.begin() + 1, args.end()));
  for (const std::string& a : args)
    if (a == "--model" || a.rfind("--model=", 0) == 0) return ProfileModelCommand(args);
  po::options_description desc("options");
  std::string action, file, out, name, source, hardware, optimizer;
  int batch = 0;
  desc.add_options()("help,h", "show this help")("action", po::value(&action), "import")(
      "file", po::value(&file), "PipeDream graph.txt to import")(
      "output,o", po::value(&out), "write the JSON profile here (default: stdout)")(
      "name", po::value(&name), "model name (default: the file name)")(
      "batch-size", po::value(&batch), "samples the profile was measured with")(
      "source", po::value(&source), "where the numbers come from")("hardware", po::value(&hardware),
                                                                   "what they were measured on")(
      "optimizer", po::value(&optimizer)->default_value("adam"), "sgd, momentum, adam, adamw");
  po::positional_options_description pos;
  pos.add("action", 1).add("file", 1);
  po::variables_map vm;
  if (!Parse(args, desc, vm,
             "usage: xpipe profile import FILE [-o OUT] [--name N --batch-size B]\n"
             "       xpipe profile transformer --layers L --hidden H ... --device FILE   (see its --help)\n"
             "       xpipe profile --model M ...   (measure a model here: xpipe profile --model cnn --help)",
             &pos))
    return 0;
  if (action != "import") throw InputError("profile", "expected 'import FILE'");
  if (file.empty()) throw InputError("profile import", "missing FILE");
  Profile p = ImportPipeDreamGraph(ReadFile(file), file);
  p.name = name.empty() ? file : name;
  if (vm.count("batch-size")) {
    if (batch < 1) throw InputError("--batch-size", "must be positive");
    p.batch_size = batch;
  }
  p.source = source;
  p.hardware = hardware;
  p.optimizer = ParseOptimizer(optimizer, "--optimizer");
  return WriteProfile(p, out);
}

}  // namespace xpipe::cli
