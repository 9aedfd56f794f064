#include "exec/transport.h"

#include <c10/cuda/CUDAStream.h>
#include <sched.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

namespace xpipe::exec {
namespace {

// ---------------------------------------------------------------------------
// In-process: one FIFO per ordered rank pair. A receive posted as the n-th of
// its channel takes the n-th message sent on it.

class Fifo {
 public:
  void Push(torch::Tensor t) {
    std::lock_guard<std::mutex> lock(mu_);
    sent_.emplace(next_sent_++, std::move(t));
    cv_.notify_all();
  }
  std::int64_t Ticket() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_ticket_++;
  }
  bool Has(std::int64_t ticket) {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_ || sent_.count(ticket) > 0;
  }
  // Empty optional when the hub was closed.
  std::optional<torch::Tensor> Take(std::int64_t ticket) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || sent_.count(ticket) > 0; });
    if (closed_) return std::nullopt;
    auto it = sent_.find(ticket);
    torch::Tensor t = std::move(it->second);
    sent_.erase(it);
    return t;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  bool closed() {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::int64_t, torch::Tensor> sent_;
  std::int64_t next_sent_ = 0, next_ticket_ = 0;
  bool closed_ = false;
};

class DonePending : public Transport::Pending {
 public:
  torch::Tensor Wait() override { return {}; }
  bool Done() override { return true; }
};

class FifoRecv : public Transport::Pending {
 public:
  FifoRecv(Fifo& fifo, torch::Device device, int src)
      : fifo_(fifo), ticket_(fifo.Ticket()), device_(device), src_(src) {}
  torch::Tensor Wait() override {
    auto t = fifo_.Take(ticket_);
    if (!t)
      throw CommError(src_, "the pipeline was stopped while receiving from rank " + std::to_string(src_));
    return t->device() == device_ ? *t : t->to(device_);
  }
  bool Done() override { return fifo_.Has(ticket_); }

 private:
  Fifo& fifo_;
  std::int64_t ticket_;
  torch::Device device_;
  int src_;
};

class Hub;

class HubEndpoint : public Transport {
 public:
  HubEndpoint(Hub& hub, int rank) : hub_(hub), rank_(rank) {}
  int rank() const override { return rank_; }
  std::unique_ptr<Pending> Send(const torch::Tensor& t, int dst) override;
  std::unique_ptr<Pending> Recv(const std::vector<int64_t>& shape, torch::Device device, int src) override;

 private:
  Hub& hub_;
  int rank_;
};

class Hub : public InProcessHub {
 public:
  explicit Hub(int ranks) : ranks_(ranks), fifos_(static_cast<std::size_t>(ranks) * ranks) {}
  std::unique_ptr<Transport> Endpoint(int rank) override {
    return std::make_unique<HubEndpoint>(*this, rank);
  }
  void Close() override {
    for (auto& f : fifos_) f.Close();
  }
  Fifo& Channel(int from, int to) { return fifos_.at(static_cast<std::size_t>(from) * ranks_ + to); }

 private:
  int ranks_;
  std::deque<Fifo> fifos_;  // deque: Fifo is not movable
};

std::unique_ptr<Transport::Pending> HubEndpoint::Send(const torch::Tensor& t, int dst) {
  Fifo& f = hub_.Channel(rank_, dst);
  if (f.closed())
    throw CommError(dst, "the pipeline was stopped while sending to rank " + std::to_string(dst));
  // Another thread reads it on another stream: the producing kernels must be done.
  if (t.is_cuda()) c10::cuda::getCurrentCUDAStream(t.device().index()).synchronize();
  f.Push(t);
  return std::make_unique<DonePending>();
}

std::unique_ptr<Transport::Pending> HubEndpoint::Recv(const std::vector<int64_t>& /*shape*/,
                                                      torch::Device device, int src) {
  return std::make_unique<FifoRecv>(hub_.Channel(src, rank_), device, src);
}

// ---------------------------------------------------------------------------
// c10d: a Backend per ordered channel (Gloo: one for all, since Gloo keeps the
// two directions of a pair apart; NCCL: one per channel). A rank's messages to
// itself (consecutive stages on one device) go through a local FIFO.

std::string Describe(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

class WorkPending : public Transport::Pending {
 public:
  WorkPending(c10::intrusive_ptr<c10d::Work> work, torch::Tensor wire, torch::Device device, int peer,
              bool receive, std::chrono::milliseconds timeout)
      : work_(std::move(work)),
        wire_(std::move(wire)),
        device_(device),
        peer_(peer),
        receive_(receive),
        timeout_(timeout) {}
  torch::Tensor Wait() override {
    try {
      if (!work_->wait(timeout_)) throw std::runtime_error("timed out");
    } catch (const std::exception& e) {
      throw CommError(peer_, std::string(receive_ ? "receive from" : "send to") + " rank " +
                                 std::to_string(peer_) + " failed: " + Describe(e));
    }
    if (!receive_) return {};
    return wire_.device() == device_ ? wire_ : wire_.to(device_);
  }
  bool Done() override { return work_->isCompleted(); }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  torch::Tensor wire_;
  torch::Device device_;
  int peer_;
  bool receive_;
  std::chrono::milliseconds timeout_;
};

class C10dTransport : public Transport {
 public:
  using ChannelFn = std::function<c10::intrusive_ptr<c10d::Backend>(int from, int to)>;
  // host_staging: the backend moves host memory (Gloo); the wire tensors are
  // on the CPU, and the backend's socket I/O threads need a CPU core too.
  C10dTransport(int rank, ChannelFn channel, bool host_staging, std::chrono::milliseconds timeout)
      : rank_(rank), channel_(std::move(channel)), host_staging_(host_staging), timeout_(timeout) {}
  int rank() const override { return rank_; }

  std::unique_ptr<Pending> Send(const torch::Tensor& t, int dst) override {
    if (dst == rank_) {
      local_.Push(t);
      return std::make_unique<DonePending>();
    }
    std::vector<torch::Tensor> wire = {host_staging_ ? t.to(torch::kCPU).contiguous() : t.contiguous()};
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = channel_(rank_, dst)->send(wire, dst, /*tag=*/0);
    } catch (const std::exception& e) {
      throw CommError(dst, "send to rank " + std::to_string(dst) + " failed: " + Describe(e));
    }
    YieldToIo();
    return std::make_unique<WorkPending>(std::move(work), wire[0], t.device(), dst, false, timeout_);
  }

  std::unique_ptr<Pending> Recv(const std::vector<int64_t>& shape, torch::Device device, int src) override {
    if (src == rank_) return std::make_unique<FifoRecv>(local_, device, src);
    std::vector<torch::Tensor> wire = {
        torch::empty(shape, torch::TensorOptions().device(host_staging_ ? torch::kCPU : device))};
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = channel_(src, rank_)->recv(wire, src, /*tag=*/0);
    } catch (const std::exception& e) {
      throw CommError(src, "receive from rank " + std::to_string(src) + " failed: " + Describe(e));
    }
    YieldToIo();
    return std::make_unique<WorkPending>(std::move(work), wire[0], device, src, true, timeout_);
  }

  // Gloo writes a message from the sender's thread at once only if the
  // receiver's "ready" note for it has come in; else the sender's I/O thread
  // writes it when the note comes, on cores the stages are computing on.
  // Receives posted a few passes ahead have their notes there in time
  // (issue 12: 2 Gloo ranks, mlp GPipe 12.6 -> 11.2 ms per mini-batch).
  int ReceivesAhead() const override { return host_staging_ ? kGlooReceivesAhead : 1; }

 private:
  static constexpr int kGlooReceivesAhead = 4;
  // A send, or a receive's "ready" note, wakes the peer's Gloo I/O thread
  // with a synchronous socket wake-up, which Linux places on this core (the
  // waker is expected to sleep). A stage thread goes on computing instead,
  // and on a machine whose cores all compute the woken thread waited for the
  // pass to end or for a scheduler tick: milliseconds per message (issue 12;
  // experiments/gloo_delivery.py). Giving up the core once lets it run now.
  void YieldToIo() const {
    if (host_staging_) sched_yield();
  }

  int rank_;
  ChannelFn channel_;
  bool host_staging_;
  std::chrono::milliseconds timeout_;
  Fifo local_;
};

}  // namespace

std::unique_ptr<InProcessHub> MakeInProcessHub(int ranks) { return std::make_unique<Hub>(ranks); }

std::unique_ptr<Transport> MakeGlooTransport(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                             int world, std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(
      c10::make_intrusive<c10d::PrefixStore>("xpipe/gloo/data", store), rank, world, options);
  return std::make_unique<C10dTransport>(
      rank, [pg](int, int) { return c10::static_intrusive_pointer_cast<c10d::Backend>(pg); },
      /*host_staging=*/true, timeout);
}

std::unique_ptr<Transport> MakeNcclTransport(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                             int world, std::chrono::milliseconds timeout) {
  // Created on first use by the two ranks of a channel, each over its own
  // store prefix, so the channel's communicator is its own.
  auto groups = std::make_shared<std::map<std::pair<int, int>, c10::intrusive_ptr<c10d::Backend>>>();
  auto channel = [store, rank, world, timeout, groups](int from, int to) {
    auto& pg = (*groups)[{from, to}];
    if (!pg) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout;
      pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>(
              "xpipe/nccl/" + std::to_string(from) + "->" + std::to_string(to), store),
          rank, world, options);
    }
    return pg;
  };
  return std::make_unique<C10dTransport>(rank, channel, /*host_staging=*/false, timeout);
}

}  // namespace xpipe::exec
