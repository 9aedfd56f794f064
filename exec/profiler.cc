#include "exec/profiler.h"

#include <pthread.h>
#include <sched.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <limits>
#include <memory>
#include <thread>

#include "common/cluster.h"
#include "common/error.h"
#include "common/partition.h"

namespace xpipe::exec {
namespace {

TimeNs Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
}

// Keeps the core busy for `ns`, as a stage computing does (a sleep would
// free the core for other threads).
void Spin(TimeNs ns) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// The median of `v` (0 when empty).
TimeNs MedianOf(std::vector<TimeNs> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// The mean of `v` (0 when empty).
TimeNs MeanOf(const std::vector<TimeNs>& v) {
  if (v.empty()) return 0;
  double sum = 0;
  for (const TimeNs t : v) sum += static_cast<double>(t);
  return static_cast<TimeNs>(std::llround(sum / static_cast<double>(v.size())));
}

// Median of `repeats` runs after `warmup` discarded runs of `body`, which
// returns the time it measured.
TimeNs Median(const ProfileOptions& o, const std::function<TimeNs()>& body) {
  std::vector<TimeNs> times;
  for (int r = 0; r < o.warmup + o.repeats; ++r) {
    const TimeNs t = body();
    if (r >= o.warmup) times.push_back(t);
  }
  return MedianOf(std::move(times));
}

}  // namespace

TimeNs MeasurePassOverhead(const ProfileOptions& o) {
  const torch::Tensor w = torch::ones({1});
  return Median(o, [&] {
    const torch::Tensor leaf = w.detach().requires_grad_(true);
    const torch::Tensor y = leaf * 2;
    const auto t0 = std::chrono::steady_clock::now();
    torch::autograd::grad({y}, {leaf}, {torch::ones_like(y)});
    return Since(t0);
  });
}

Profile ProfileModel(const std::string& name, const Model& model, const std::vector<torch::Tensor>& inputs,
                     const ProfileOptions& o) {
  XPIPE_CHECK(!inputs.empty(), "the profiler needs an input");
  const torch::Tensor& sample = inputs.front();
  Profile p;
  p.name = name;
  p.source = "measured by xpipe's profiler (mean of " + std::to_string(o.repeats) + " iterations after " +
             std::to_string(o.warmup) + " warm-up ones, layer by layer inside each, on " +
             std::to_string(inputs.size()) + (inputs.size() == 1 ? " input)" : " distinct inputs in turn)");
  p.hardware = sample.device().is_cuda() ? "CUDA device" : "CPU, one thread";
  p.batch_size = static_cast<int>(sample.size(0));
  p.optimizer = o.optimizer.kind;
  const TimeNs backward_start = MeasurePassOverhead(o);
  const std::vector<Model> layers = Partition(model, static_cast<int>(model.size()), {});
  const std::size_t L = layers.size();
  std::vector<std::vector<torch::Tensor>> w = InitStages(layers, 0);
  for (auto& ws : w)
    for (auto& t : ws) t = t.to(sample.device());
  std::vector<std::vector<torch::Tensor>> accum(L);
  std::vector<std::unique_ptr<Optimizer>> opt(L);
  for (std::size_t i = 0; i < L; ++i) {
    for (const auto& t : w[i]) accum[i].push_back(torch::zeros_like(t));
    opt[i] = std::make_unique<Optimizer>(o.optimizer, w[i]);
  }
  // Whole training iterations as one graph, timed layer by layer (as
  // PipeDream's profiler does): the forward with a time stamp after each
  // layer, the backward with a stamp when each layer's input gradient is
  // ready (a hook on that tensor), the gradients' accumulation, the
  // optimizer steps. The backward's start-up (paid once per pass by every
  // stage) is taken out of the last layer, which pays it here.
  struct Times {
    std::vector<TimeNs> forward, backward, update, copy, predict;
  };
  std::vector<Times> times(L);
  std::vector<Bytes> out_bytes(L);
  for (int r = 0; r < o.warmup + o.repeats; ++r) {
    const bool keep = r >= o.warmup;
    std::vector<std::vector<torch::Tensor>> leaves(L);
    std::vector<torch::Tensor> outputs(L);
    std::vector<std::chrono::steady_clock::time_point> ready(L);  // gradient of layer i's output
    torch::Tensor x = inputs[static_cast<std::size_t>(r) % inputs.size()], loss;
    for (std::size_t i = 0; i < L; ++i) {
      for (const auto& t : w[i]) leaves[i].push_back(t.detach().requires_grad_(true));
      const auto t0 = std::chrono::steady_clock::now();
      torch::Tensor y = ForwardStage(layers[i], x, leaves[i]);
      if (i + 1 == L) {  // what the executor's last stage does with its output
        const torch::Tensor labels = ZeroLabels(y);
        loss = torch::cross_entropy_loss(y, labels);
        (void)loss.item<double>();
        (void)CorrectSamples(y, labels);
      }
      if (keep) times[i].forward.push_back(Since(t0));
      out_bytes[i] = y.numel() * static_cast<Bytes>(y.element_size());
      if (i + 1 < L && y.requires_grad())
        y.register_hook([&ready, i](const torch::Tensor&) { ready[i] = std::chrono::steady_clock::now(); });
      outputs[i] = y;
      x = y;
    }
    std::vector<torch::Tensor> inputs;
    for (const auto& l : leaves) inputs.insert(inputs.end(), l.begin(), l.end());
    const auto start = std::chrono::steady_clock::now();
    ready[L - 1] = start;
    const auto grads = torch::autograd::grad({loss}, inputs, {}, false, false, /*allow_unused=*/true);
    const auto end = std::chrono::steady_clock::now();
    std::size_t g = 0;
    for (std::size_t i = 0; i < L; ++i) {
      if (!outputs[i].requires_grad()) {  // nothing before it learns: no backward
        if (keep) times[i].backward.push_back(0);
        continue;
      }
      // Layer i's backward runs from its output's gradient to its input's.
      const auto from = ready[i];
      const auto to = i > 0 && outputs[i - 1].requires_grad() ? ready[i - 1] : end;
      auto t0 = std::chrono::steady_clock::now();
      {
        torch::NoGradGuard no_grad;
        for (std::size_t j = 0; j < accum[i].size(); ++j, ++g)
          if (grads[g].defined()) accum[i][j].add_(grads[g]);
      }
      TimeNs ns = Since(t0) + std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
      if (i + 1 == L) ns -= backward_start;
      if (keep) times[i].backward.push_back(std::max<TimeNs>(0, ns));
    }
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < L; ++i) {
      if (w[i].empty()) continue;
      auto t0 = std::chrono::steady_clock::now();
      std::vector<torch::Tensor> mean;
      for (auto& t : accum[i]) mean.push_back(t / 4);
      opt[i]->Step(w[i], mean, o.optimizer.lr);
      for (auto& t : accum[i]) t.zero_();
      if (keep) times[i].update.push_back(Since(t0));
      t0 = std::chrono::steady_clock::now();
      std::vector<torch::Tensor> copy;
      for (const auto& t : w[i]) copy.push_back(t.clone());
      if (keep) times[i].copy.push_back(Since(t0));
      // A prediction: W_hat made from W_v (the executor's timed runs do not
      // measure its error; ExecConfig::measure_prediction_errors).
      t0 = std::chrono::steady_clock::now();
      (void)Predict(*opt[i], w[i], o.optimizer.lr, 1);
      if (keep) times[i].predict.push_back(Since(t0));
    }
  }
  for (std::size_t i = 0; i < L; ++i) {
    xpipe::Layer out;
    out.name = "layer" + std::to_string(i);
    out.op = layers[i][0]->Name();
    out.forward_ns = MeanOf(times[i].forward);
    out.backward_ns = MeanOf(times[i].backward);
    out.update_ns = MeanOf(times[i].update);
    out.copy_ns = MeanOf(times[i].copy);
    out.predict_ns = MeanOf(times[i].predict);
    out.activation_bytes = out_bytes[i];
    for (const auto& t : w[i]) out.parameter_bytes += t.numel() * static_cast<Bytes>(t.element_size());
    p.layers.push_back(out);
  }
  return p;
}

double MeasureContention(const Model& model, const torch::Tensor& sample, const ProfileOptions& o) {
  // Each thread has its own weights and input, as two stages have: their
  // working sets add up in the caches they share.
  const std::vector<torch::Tensor> w = InitStages({model}, 0)[0];
  const std::vector<torch::Tensor> w_other = InitStages({model}, 1)[0];
  const torch::Tensor sample_other = sample.clone();
  // One training iteration of the whole model, timed.
  const auto iteration_of = [&](const std::vector<torch::Tensor>& ws, const torch::Tensor& x) {
    std::vector<torch::Tensor> leaves;
    leaves.reserve(ws.size());
    for (const auto& t : ws) leaves.push_back(t.detach().requires_grad_(true));
    const auto t0 = std::chrono::steady_clock::now();
    const torch::Tensor out = ForwardStage(model, x, leaves);
    const torch::Tensor loss = torch::cross_entropy_loss(out, ZeroLabels(out));
    if (!leaves.empty()) torch::autograd::grad({loss}, leaves, {}, false, false, /*allow_unused=*/true);
    return Since(t0);
  };
  const auto iteration = [&] { return iteration_of(w, sample); };
  torch::set_num_threads(1);
  // The two threads on two cores, as the question is: left to the
  // scheduler, they can share one core for a whole round (issue 12).
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  pthread_getaffinity_np(pthread_self(), sizeof(allowed), &allowed);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  const auto pin = [&](int which) {
    if (cpus.size() < 2) return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpus[which], &one);
    pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
  };
  pin(0);
  // Rounds of alone-then-shared, the median slowdown kept: one round can
  // catch both threads on one core for a while (a scheduler transient a
  // pipeline's stage threads, which sleep between passes, do not see) and
  // measured up to 1.46 where its neighbours measured 0 (issue 12).
  std::vector<double> slowdowns;
  for (int round = 0; round < kContentionRounds; ++round) {
    const TimeNs alone = Median(o, iteration);
    std::atomic<bool> stop{false};
    std::thread other([&] {
      pin(1);
      torch::set_num_threads(1);
      while (!stop) iteration_of(w_other, sample_other);
    });
    const TimeNs shared = Median(o, iteration);
    stop = true;
    other.join();
    if (alone > 0) slowdowns.push_back(static_cast<double>(shared) / static_cast<double>(alone) - 1.0);
  }
  pthread_setaffinity_np(pthread_self(), sizeof(allowed), &allowed);
  if (slowdowns.empty()) return 0.0;
  std::nth_element(slowdowns.begin(), slowdowns.begin() + static_cast<std::ptrdiff_t>(slowdowns.size() / 2),
                   slowdowns.end());
  return std::max(0.0, slowdowns[slowdowns.size() / 2]);
}

namespace {

// Least squares t = a + b * bytes over (bytes, ns) points; b <= 0 means the
// time does not grow with the size: then a is the mean and no rate is given.
void Fit(LinkFit& fit) {
  if (fit.points.empty()) return;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double k = static_cast<double>(fit.points.size());
  for (const auto& [bytes, ns] : fit.points) {
    const double bx = static_cast<double>(bytes), ty = static_cast<double>(ns);
    sx += bx, sy += ty, sxx += bx * bx, sxy += bx * ty;
  }
  const double var = k * sxx - sx * sx;
  const double slope = var > 0 ? (k * sxy - sx * sy) / var : 0;  // ns per byte
  if (slope > 0) {
    fit.bytes_per_sec = 1e9 / slope;
    fit.latency_ns = std::max<TimeNs>(0, static_cast<TimeNs>(std::llround((sy - slope * sx) / k)));
  } else {
    fit.bytes_per_sec = 0;
    fit.latency_ns = std::max<TimeNs>(0, static_cast<TimeNs>(std::llround(sy / k)));
  }
}

}  // namespace

LinkFit MeasureReceiveCost(Transport& transport, int peer, bool receiver, const std::vector<int64_t>& floats,
                           const ProfileOptions& o) {
  // The receiver's fixed work: matrix products, about a millisecond.
  const torch::Tensor a = torch::randn({128, 128}), b = torch::randn({128, 128});
  int reps = 1;
  if (receiver) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 16; ++i) (void)torch::mm(a, b);
    reps = static_cast<int>(std::max<TimeNs>(1, TimeNs{16} * kNsPerMs / std::max<TimeNs>(1, Since(t0))));
  }
  const torch::Tensor ready = torch::ones({1});
  // One measurement: the receiver posts the receive, says it is ready and
  // works; the sender sends a little after, so the message comes in while
  // the receiver computes. n == 0: no message (the baseline).
  const auto measure = [&](int64_t n) {
    const torch::Tensor message = torch::ones({std::max<int64_t>(n, 1)});
    return Median(o, [&] {
      if (!receiver) {
        (void)transport.Recv({1}, torch::kCPU, peer)->Wait();
        Spin(50000);
        if (n > 0) transport.Send(message, peer)->Wait();
        return TimeNs{0};
      }
      std::unique_ptr<Transport::Pending> in;
      if (n > 0) in = transport.Recv({n}, torch::kCPU, peer);
      transport.Send(ready, peer)->Wait();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < reps; ++i) (void)torch::mm(a, b);
      const TimeNs took = Since(t0);
      if (in) (void)in->Wait();
      return took;
    });
  };
  LinkFit fit;
  const TimeNs alone = measure(0);
  for (const int64_t n : floats) {
    const TimeNs with = measure(n);
    if (receiver)
      fit.points.emplace_back(n * static_cast<Bytes>(sizeof(float)), std::max<TimeNs>(0, with - alone));
  }
  if (receiver) Fit(fit);
  return fit;
}

LinkFit MeasureReceiveCpu(Transport& transport, int peer, bool receiver, const std::vector<int64_t>& floats,
                          const ProfileOptions& o) {
  const auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<TimeNs>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
  };
  const torch::Tensor ready = torch::ones({1});
  // One message of n floats: the receiver posts it, says it is ready and
  // blocks in the wait, which takes no CPU; the sender sends a little later.
  // What the receiving process spent meanwhile is its transport's work.
  const auto measure = [&](int64_t n) {
    const torch::Tensor message = torch::ones({n});
    return Median(o, [&] {
      if (!receiver) {
        (void)transport.Recv({1}, torch::kCPU, peer)->Wait();
        Spin(kReceiveCpuSendDelayNs);
        transport.Send(message, peer)->Wait();
        return TimeNs{0};
      }
      auto in = transport.Recv({n}, torch::kCPU, peer);
      transport.Send(ready, peer)->Wait();
      const TimeNs t0 = cpu_now();
      (void)in->Wait();
      return cpu_now() - t0;
    });
  };
  LinkFit fit;
  for (const int64_t n : floats) {
    const TimeNs cpu = measure(n);
    if (receiver) fit.points.emplace_back(n * static_cast<Bytes>(sizeof(float)), cpu);
  }
  if (receiver) Fit(fit);
  return fit;
}

LinkFit MeasureLink(Transport& transport, int peer, bool initiator, const std::vector<int64_t>& floats,
                    const ProfileOptions& o) {
  LinkFit fit;
  // Each side works (spins) for `idle` before it sends, so the other has been
  // blocked that long when the message comes, as a stage waiting for its
  // neighbour is: a thread asleep that long wakes slower than one in a tight
  // ping-pong (on a virtual machine, much slower). One-way = (RTT - idle) / 2.
  for (const int64_t n : floats) {
    const torch::Tensor message = torch::ones({n});
    const TimeNs round_trip = Median(o, [&] {
      if (initiator) {
        Spin(o.link_idle_ns);
        const auto t0 = std::chrono::steady_clock::now();
        transport.Send(message, peer)->Wait();
        (void)transport.Recv({n}, torch::kCPU, peer)->Wait();
        return Since(t0);
      }
      const torch::Tensor back = transport.Recv({n}, torch::kCPU, peer)->Wait();
      Spin(o.link_idle_ns);
      transport.Send(back, peer)->Wait();
      return TimeNs{0};
    });
    if (initiator)
      fit.points.emplace_back(n * static_cast<Bytes>(sizeof(float)),
                              std::max<TimeNs>(0, round_trip - o.link_idle_ns) / 2);
  }
  if (initiator) Fit(fit);
  return fit;
}

Delivery MeasureDelivery(Transport& transport, int peer, bool sender, int64_t floats,
                         const ProfileOptions& o) {
  const torch::Tensor message = torch::ones({floats});
  const auto stamp = [] {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
  };
  // The mean, not the median: a message in ten or so is held up for
  // milliseconds (the scheduler, Gloo's threads), and a run pays for those.
  const int repeats = std::max(o.repeats, kDeliveryRepeats);
  TimeNs sum = 0, send_sum = 0;
  for (int r = 0; r < o.warmup + repeats; ++r) {
    if (sender) {
      // As in MeasureLink, the receiver has been waiting a while.
      Spin(o.link_idle_ns);
      const double sent = stamp();
      auto pending = transport.Send(message, peer);
      if (r >= o.warmup) send_sum += static_cast<TimeNs>(stamp() - sent);
      Spin(kDeliverySenderWorkNs);
      pending->Wait();
      // The arrival stamp comes back as the two float32 halves of a double.
      const torch::Tensor back = transport.Recv({2}, torch::kCPU, peer)->Wait().contiguous();
      double arrived = 0;
      std::memcpy(&arrived, back.data_ptr<float>(), sizeof arrived);
      if (r >= o.warmup) sum += std::max<TimeNs>(0, static_cast<TimeNs>(arrived - sent));
      continue;
    }
    (void)transport.Recv({floats}, torch::kCPU, peer)->Wait();
    const double arrived = stamp();
    torch::Tensor back = torch::empty({2}, torch::kFloat32);
    std::memcpy(back.data_ptr<float>(), &arrived, sizeof arrived);
    transport.Send(back, peer)->Wait();
  }
  if (!sender) return {};
  return {sum / repeats, send_sum / repeats};
}

Profile CountedProfile(const std::string& name, const Model& model, const torch::Tensor& sample) {
  torch::NoGradGuard no_grad;
  Profile p;
  p.name = name;
  p.source = "multiply-accumulates counted by xpipe (1 per ns), backward = 2 x forward";
  p.hardware = "none (counted, not timed)";
  p.batch_size = static_cast<int>(sample.size(0));
  const std::vector<Model> layers = Partition(model, static_cast<int>(model.size()), {});
  const auto params = InitStages(layers, 0);
  torch::Tensor x = sample;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const torch::Tensor y = ForwardStage(layers[i], x, params[i]);
    xpipe::Layer out;
    out.name = "layer" + std::to_string(i);
    out.op = layers[i][0]->Name();
    out.forward_ns = layers[i][0]->Macs(x, y);
    out.backward_ns = 2 * out.forward_ns;
    out.activation_bytes = y.numel() * static_cast<Bytes>(y.element_size());
    for (const auto& t : params[i]) out.parameter_bytes += t.numel() * static_cast<Bytes>(t.element_size());
    p.layers.push_back(out);
    x = y;
  }
  return p;
}

std::vector<int> BalancedPartition(const Profile& profile, int stages) {
  Cluster in_memory;  // hand-offs between threads: no link cost
  in_memory.link_bytes_per_sec = 1e18;
  in_memory.link_latency_ns = 0;
  PartitionRequest r;
  r.stages = stages;
  r.micro_batch_size = profile.batch_size;
  r.cluster = &in_memory;
  return AutoPartition(profile, r).layers_per_stage;
}

}  // namespace xpipe::exec
