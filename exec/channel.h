// Channel: a bounded, blocking queue of (micro-batch, tensor) messages
// between two stage workers. A receiver asks for a specific micro-batch;
// messages that arrive ahead of it wait in the channel. Close() wakes every
// waiter (used to stop all workers when one fails). Thread-safe.
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

namespace xpipe::exec {

class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Blocks while full. Returns false when the channel was closed.
  bool Send(int64_t micro_batch, torch::Tensor t) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || waiting_.size() < capacity_; });
    if (closed_) return false;
    waiting_.emplace(micro_batch, std::move(t));
    cv_.notify_all();
    return true;
  }
  // Blocks until `micro_batch` has arrived; nullopt when closed.
  std::optional<torch::Tensor> Receive(int64_t micro_batch) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || waiting_.count(micro_batch) > 0; });
    if (closed_) return std::nullopt;
    auto it = waiting_.find(micro_batch);
    torch::Tensor t = std::move(it->second);
    waiting_.erase(it);
    cv_.notify_all();
    return t;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, torch::Tensor> waiting_;
  std::size_t capacity_;
  bool closed_ = false;
};

}  // namespace xpipe::exec
