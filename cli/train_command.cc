// xpipe train: pipeline-parallel training on LibTorch.
#include <cstdio>
#include <iostream>

#include "cli/options.h"
#include "common/error.h"
#include "common/schedule_file.h"
#include "exec/trainer.h"

namespace xpipe::cli {
namespace {

std::string OneLine(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

}  // namespace

int TrainCommand(const Args& args) {
  po::options_description desc("options");
  exec::TrainConfig c;
  std::string schedule, optimizer, lr_schedule, partition, target, predict_from, backward_weights, file,
      policy, prediction;
  desc.add_options()("help,h", "show this help")("model", po::value(&c.model)->default_value("cnn"),
                                                 "mlp, cnn, vgg, resnet, gpt (with --data text:FILE)")(
      "data", po::value(&c.data)->default_value("fashion-mnist"),
      "fashion-mnist, synthetic, or text:FILE (characters of any text file, for --model gpt)")(
      "gpt-layers", po::value(&c.gpt.layers)->default_value(2), "gpt: transformer blocks")(
      "gpt-hidden", po::value(&c.gpt.hidden)->default_value(64), "gpt: hidden size")(
      "gpt-heads", po::value(&c.gpt.heads)->default_value(4), "gpt: attention heads")(
      "gpt-ffn", po::value(&c.gpt.ffn)->default_value(0), "gpt: MLP size (0 = 4 x hidden)")(
      "seq-len", po::value(&c.seq_len)->default_value(64), "text: tokens per sample")(
      "schedule", po::value(&schedule)->default_value("xpipe"), ("one of " + ScheduleNames()).c_str())(
      "schedule-file", po::value(&file),
      "train with this schedule file (CSV as PyTorch or xpipe writes it, or JSON), run back to back; its "
      "devices, stages and T replace --stages and --micro-batches")(
      "policy", po::value(&policy),
      "with --schedule-file: the weights its passes use, as the named schedule uses them (default: the "
      "JSON's "
      "kind, else the live weights)")("stages", po::value(&c.stages)->default_value(4), "pipeline devices N")(
      "micro-batches", po::value(&c.micro_batches)->default_value(4), "micro-batches per mini-batch T")(
      "chunks", po::value(&c.chunks)->default_value(1), "chunks per device (interleaved-1f1b)")(
      "batch-size", po::value(&c.batch_size)->default_value(64), "samples per mini-batch")(
      "epochs", po::value(&c.epochs)->default_value(1), "epochs")(
      "max-steps", po::value(&c.max_steps)->default_value(0), "mini-batches per epoch (0 = all)")(
      "partition", po::value(&partition)->default_value("auto"),
      "layers per stage, e.g. 3,3,3,3; auto (balance counted multiply-accumulates, deterministic) or even "
      "(the same number of layers)")("profile-out", po::value(&c.profile_out),
                                     "measure the model's layers and write an xpipe profile (JSON) "
                                     "that xpipe sim reads")(
      "optimizer", po::value(&optimizer)->default_value("adam"), "sgd, momentum, adam, adamw")(
      "lr", po::value(&c.optimizer.lr)->default_value(1e-3), "learning rate")(
      "lr-schedule", po::value(&lr_schedule)->default_value("constant"), "constant, step, cosine")(
      "momentum", po::value(&c.optimizer.momentum)->default_value(0.9), "momentum (optimizer momentum)")(
      "weight-decay", po::value(&c.optimizer.weight_decay)->default_value(0.01), "decoupled decay (adamw)")(
      "target", po::value(&target)->default_value("round-trip"),
      "prediction target: round-trip, closed-form, "
      "synchronous, own-backward")("predict-from", po::value(&predict_from)->default_value("live"),
                                   kPredictFromHelp)(
      "seed", po::value(&c.seed)->default_value(1),
      "seed: initial weights, data order (CPU runs repeat exactly)")(
      "device", po::value(&c.device)->default_value("cpu"),
      "cpu or cuda (one process per rank: cuda:LOCAL_RANK)")(
      "transport", po::value(&c.transport)->default_value("auto"),
      "between ranks under torchrun: auto (nccl with cuda, else gloo), gloo, nccl")(
      "comm-timeout", po::value(&c.comm_timeout_s)->default_value(300),
      "seconds a rank waits on a live but silent peer (a dead one is noticed at once)")(
      "prediction", po::value(&prediction)->default_value("adaptive"),
      "predicting schedules (xpipe, spectrain, pipeoptim): adaptive (each stage scales its predicted step by "
      "a "
      "factor in [0, 1] fitted to its own past predictions) or fixed (the papers' W - lr s D)")(
      "backward-weights", po::value(&backward_weights)->default_value("swap"),
      "a backward whose weights differ from its forward's: swap (load them under the saved activations) "
      "or recompute (run the forward again with them)")("checkpoint", po::value(&c.checkpoint),
                                                        "checkpoint file")(
      "checkpoint-every", po::value(&c.checkpoint_every)->default_value(0),
      "mini-batches between checkpoints "
      "(the pipeline drains there)")("resume", "continue from --checkpoint if it exists")(
      "log", po::value(&c.log), "JSONL log of every metric")(
      "trace", po::value(&c.trace), "Chrome/Perfetto trace of the first segment (real start/end times)")(
      "save-weights", po::value(&c.save_weights), "write the final weights (JSON header line + raw float32)")(
      "no-eval", "skip test-set evaluation")("synthetic-samples",
                                             po::value(&c.synthetic_samples)->default_value(4096),
                                             "training samples (synthetic)");
  po::variables_map vm;
  if (!Parse(args, desc, vm, "usage: xpipe train [options]")) return 0;
  c.schedule = ParseScheduleKind(schedule, "--schedule");
  c.optimizer.kind = ParseOptimizer(optimizer, "--optimizer");
  // What each number can mean, before anything is sized from it.
  InRange("--lr", c.optimizer.lr, 0, 100);
  InRange("--momentum", c.optimizer.momentum, 0, 1);
  InRange("--weight-decay", c.optimizer.weight_decay, 0, 1);
  InRange("--stages", c.stages, 1, 1024);
  InRange("--micro-batches", c.micro_batches, 1, 65536);
  InRange("--chunks", c.chunks, 1, 64);
  InRange("--batch-size", c.batch_size, 1, 1 << 20);
  InRange("--epochs", c.epochs, 1, 1e6);
  InRange("--max-steps", static_cast<double>(c.max_steps), 0, 1e12);
  InRange("--checkpoint-every", static_cast<double>(c.checkpoint_every), 0, 1e12);
  InRange("--synthetic-samples", static_cast<double>(c.synthetic_samples), 1, 200000);
  InRange("--gpt-layers", static_cast<double>(c.gpt.layers), 1, 1024);
  InRange("--gpt-hidden", static_cast<double>(c.gpt.hidden), 1, 65536);
  InRange("--gpt-heads", static_cast<double>(c.gpt.heads), 1, 1024);
  InRange("--gpt-ffn", static_cast<double>(c.gpt.ffn), 0, 262144);
  InRange("--seq-len", static_cast<double>(c.seq_len), 1, 65536);
  c.lr_schedule = exec::ParseLrSchedule(lr_schedule, "--lr-schedule");
  c.target = ParsePredictionTarget(target, "--target");
  c.prediction_base = ParsePredictionBase(predict_from, "--predict-from");
  c.backward_weights = ParseWeightSwitch(backward_weights, "--backward-weights");
  if (c.backward_weights == WeightSwitch::kNone)
    throw InputError("--backward-weights", "expected swap or recompute");
  if (prediction != "adaptive" && prediction != "fixed")
    throw InputError("--prediction", "expected adaptive or fixed (got '" + prediction + "')");
  c.adaptive_prediction = prediction == "adaptive";
  if (vm.count("policy") && !vm.count("schedule-file")) throw InputError("--policy", "needs --schedule-file");
  if (vm.count("schedule-file")) {
    for (const char* flag : {"schedule", "stages", "chunks"})
      if (!vm[flag].defaulted()) throw InputError(std::string("--") + flag, "comes from --schedule-file");
    ScheduleFileOptions o;
    o.micro_batches = vm["micro-batches"].defaulted() ? 0 : c.micro_batches;
    o.policy = policy;
    o.target = c.target;
    o.prediction_base = c.prediction_base;
    o.backward_weights = c.backward_weights;
    ScheduleFile f = LoadScheduleFile(file, o);
    for (const std::string& note : f.notes) std::cerr << "xpipe train: note: " << note << "\n";
    c.given = std::move(f.schedule);
    c.schedule = c.given->kind;
    c.stages = c.given->num_devices;
    c.micro_batches = c.given->micro_batches;
    c.schedule_name = "file " + file.substr(file.find_last_of('/') + 1) + " (" +
                      std::string(ScheduleName(c.given->kind)) + " weights)";
  }
  exec::RetainHostMemory();
  c.launch = exec::LaunchEnvFromEnvironment();
  const bool leader = !c.launch || c.launch->rank == 0;
  if (partition == "even")
    c.even_partition = true;
  else if (partition != "auto")
    c.partition = IntList("--partition", partition);
  c.resume = vm.count("resume") > 0;
  c.evaluate = vm.count("no-eval") == 0;
  c.progress = true;
  if (leader) {
    std::printf("%s on %s, %s, %d stages, %d micro-batches of %d, %s lr %g, seed %llu, %s\n", c.model.c_str(),
                c.data.c_str(),
                c.given ? c.schedule_name.c_str() : std::string(ScheduleName(c.schedule)).c_str(), c.stages,
                c.micro_batches, c.batch_size / std::max(1, c.micro_batches), optimizer.c_str(),
                c.optimizer.lr, static_cast<unsigned long long>(c.seed), c.device.c_str());
    std::printf("%5s  %10s  %9s  %9s  %8s  %8s  %10s  %9s\n", "epoch", "train loss", "train acc", "test loss",
                "test acc", "seconds", "samples/s", "pred err");
    if (c.launch) std::printf("(%d ranks, one per stage device; this is rank 0)\n", c.launch->world);
  }
  c.on_epoch = [](const exec::EpochStats& s) {
    std::printf("%5d  %10.4f  %8.2f%%  %9.4f  %7.2f%%  %8.1f  %10.1f  %9.3f", s.epoch, s.train_loss,
                100 * s.train_accuracy, s.test_loss, 100 * s.test_accuracy, s.seconds, s.samples_per_sec,
                s.prediction_error);
    if (s.prediction_error > 0) {  // the factor each stage predicted with, on average
      std::printf("  scale");
      for (double f : s.stage_prediction_scale) std::printf(" %.2f", f);
    }
    std::printf("\n");
    std::fflush(stdout);
  };
  try {
    exec::Train(c);
  } catch (const exec::TrainingError& e) {
    std::cerr << "xpipe train: training stopped: " << OneLine(e.what()) << "\n";
    return 1;
  } catch (const exec::CommError& e) {  // the rendezvous did not complete
    std::cerr << "xpipe train: " << OneLine(e.what()) << "\n";
    return 1;
  }
  return 0;
}

}  // namespace xpipe::cli
