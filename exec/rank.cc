#include "exec/rank.h"

#include <cstdlib>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "common/error.h"

namespace xpipe::exec {
namespace {

constexpr int kControlTag = 7;

int EnvInt(const char* name, std::optional<int> fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    if (fallback) return *fallback;
    throw InputError(name,
                     "is not set (launch with torchrun, or set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 20)
    throw InputError(name, "expected a whole number, got '" + std::string(v) + "'");
  return static_cast<int>(x);
}

std::string Describe(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

std::optional<LaunchEnv> LaunchEnvFromEnvironment() {
  if (std::getenv("WORLD_SIZE") == nullptr) return std::nullopt;
  LaunchEnv e;
  e.world = EnvInt("WORLD_SIZE", std::nullopt);
  e.rank = EnvInt("RANK", std::nullopt);
  e.local_rank = EnvInt("LOCAL_RANK", e.rank);
  if (const char* a = std::getenv("MASTER_ADDR"); a != nullptr && *a != '\0') e.master_addr = a;
  e.master_port = EnvInt("MASTER_PORT", 29500);
  if (e.world < 1) throw InputError("WORLD_SIZE", "must be at least 1");
  if (e.rank >= e.world)
    throw InputError("RANK", std::to_string(e.rank) + " is not below WORLD_SIZE " + std::to_string(e.world));
  if (e.master_port < 1 || e.master_port > 65535) throw InputError("MASTER_PORT", "is not a port number");
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent != nullptr && std::string(agent) == "True";
  return e;
}

struct Rank::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> control;
};

Rank::Rank(const LaunchEnv& env, TransportKind data, std::chrono::milliseconds timeout)
    : env_(env), impl_(std::make_unique<Impl>()) {
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env.master_port);
    // Under torchrun the agent already serves the store on MASTER_PORT.
    o.isServer = env.rank == 0 && !env.agent_store;
    o.numWorkers = env.agent_store ? std::nullopt : std::optional<std::size_t>(env.world);
    o.waitWorkers = !env.agent_store;
    o.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    // One run's keys apart from the agent's and from earlier runs on the store.
    impl_->store = c10::make_intrusive<c10d::PrefixStore>("xpipe", tcp);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl_->control = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("control", impl_->store), env.rank, env.world, options);
    data_ = data == TransportKind::kGloo ? MakeGlooTransport(impl_->store, env.rank, env.world, timeout)
                                         : MakeNcclTransport(impl_->store, env.rank, env.world, timeout);
  } catch (const CommError&) {
    throw;
  } catch (const std::exception& e) {
    throw CommError(0, "rendezvous at " + env.master_addr + ":" + std::to_string(env.master_port) +
                           " failed: " + Describe(e));
  }
}

Rank::~Rank() = default;

void Rank::Barrier() {
  // A barrier made of point-to-point messages through rank 0, so that a lost
  // rank is named like any other failure.
  Gather({});
  std::vector<torch::Tensor> t = {torch::zeros({1}, torch::kFloat64)};
  try {
    if (rank() == 0) {
      for (int r = 1; r < world(); ++r) impl_->control->send(t, r, kControlTag)->wait();
    } else {
      impl_->control->recv(t, 0, kControlTag)->wait();
    }
  } catch (const std::exception& e) {
    throw CommError(rank() == 0 ? -1 : 0, "barrier failed: " + Describe(e));
  }
}

std::vector<torch::Tensor> Rank::GatherOne(const torch::Tensor& mine, const std::string& what) {
  std::vector<torch::Tensor> out;
  int peer = 0;
  try {
    if (rank() == 0) {
      out.push_back(mine);
      for (peer = 1; peer < world(); ++peer) {
        std::vector<torch::Tensor> n = {torch::zeros({1}, torch::kInt64)};
        impl_->control->recv(n, peer, kControlTag)->wait();
        std::vector<torch::Tensor> v = {torch::zeros({n[0].item<int64_t>()}, mine.options())};
        if (v[0].numel() > 0) impl_->control->recv(v, peer, kControlTag)->wait();
        out.push_back(v[0]);
      }
    } else {
      std::vector<torch::Tensor> n = {torch::tensor({mine.numel()}, torch::kInt64)};
      impl_->control->send(n, 0, kControlTag)->wait();
      std::vector<torch::Tensor> v = {mine};
      if (mine.numel() > 0) impl_->control->send(v, 0, kControlTag)->wait();
    }
  } catch (const std::exception& e) {
    throw CommError(peer,
                    "gathering " + what + " from rank " + std::to_string(peer) + " failed: " + Describe(e));
  }
  return out;
}

std::vector<std::vector<double>> Rank::Gather(const std::vector<double>& mine) {
  std::vector<std::vector<double>> out;
  for (const torch::Tensor& t : GatherOne(torch::tensor(mine, torch::kFloat64), "metrics")) {
    const double* p = t.data_ptr<double>();
    out.emplace_back(p, p + t.numel());
  }
  return out;
}

std::vector<torch::Tensor> Rank::GatherFlat(const std::vector<torch::Tensor>& mine) {
  std::vector<torch::Tensor> flat;
  flat.reserve(mine.size());
  for (const auto& t : mine) flat.push_back(t.detach().to(torch::kCPU, torch::kFloat32).reshape({-1}));
  return GatherOne(flat.empty() ? torch::zeros({0}, torch::kFloat32) : torch::cat(flat), "weights");
}

int Rank::ReportLost(int peer) {
  try {
    // compareSet: the first report stands; later ones read it back.
    const std::string p = std::to_string(peer);
    const auto got = impl_->store->compareSet("lost", {}, std::vector<uint8_t>(p.begin(), p.end()));
    return std::stoi(std::string(got.begin(), got.end()));
  } catch (const std::exception&) {
    return peer;  // the store went with the lost rank: our own view is all there is
  }
}

}  // namespace xpipe::exec
