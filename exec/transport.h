// Transport: moves activations and gradients between the ranks of a pipeline
// (one rank per schedule device). The executor performs the lowered
// schedule's SEND and RECV actions through it.
//
// Messages between an ordered pair of ranks form one channel and are matched
// by posting order, with no tags (as NCCL point-to-point is); the lowering
// (common/lowering.h) orders every channel's RECVs as its SENDs. Send and Recv
// only post: the returned Pending is waited on where the data is needed, so
// transfers overlap compute. Three implementations behind one interface:
//   - in-process: ranks are threads of one process (MakeInProcessHub);
//   - c10d Gloo: one process per rank, CPU tensors over TCP (MakeGlooTransport);
//   - c10d NCCL: one process per GPU, CUDA tensors (MakeNcclTransport).
// One Transport per rank; it is used by that rank's thread only.
#pragma once

#include <c10/util/intrusive_ptr.h>
#include <torch/types.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

namespace c10d {
class Store;
}

namespace xpipe::exec {

// A send or receive failed: the peer is gone, the transport was closed, or a
// timeout passed. Names the peer rank.
class CommError : public std::runtime_error {
 public:
  CommError(int peer, const std::string& what) : std::runtime_error(what), peer_(peer) {}
  int peer() const { return peer_; }

 private:
  int peer_;
};

class Transport {
 public:
  // A posted send or receive.
  class Pending {
   public:
    virtual ~Pending() = default;
    // Blocks until done. A receive returns the message (on the buffer's
    // device); a send an undefined tensor. Throws CommError.
    virtual torch::Tensor Wait() = 0;
    // Non-blocking: true once Wait would return at once.
    virtual bool Done() = 0;
  };

  virtual ~Transport() = default;
  virtual int rank() const = 0;
  // Posts `t` to rank `dst`. `t` must not change until the send is done.
  virtual std::unique_ptr<Pending> Send(const torch::Tensor& t, int dst) = 0;
  // Posts a receive from rank `src` of a float32 tensor of `shape` that is
  // wanted on `device` (shapes come from the schedule and the model; none
  // travel). Each transport allocates only what it needs: the in-process one
  // hands over the sender's tensor, Gloo lands it in host memory, NCCL on the
  // device.
  virtual std::unique_ptr<Pending> Recv(const std::vector<int64_t>& shape, torch::Device device, int src) = 0;
  // How many compute passes ahead the executor posts a rank's receives: 1
  // (those of the next pass, posted before this one runs) unless a transport
  // moves a message sooner when its receive is posted well before the send.
  virtual int ReceivesAhead() const { return 1; }
};

// Ranks as threads of one process. Close() makes every waiting and later
// operation of every endpoint throw CommError (one failed thread stops all).
class InProcessHub {
 public:
  virtual ~InProcessHub() = default;
  virtual std::unique_ptr<Transport> Endpoint(int rank) = 0;
  virtual void Close() = 0;
};
std::unique_ptr<InProcessHub> MakeInProcessHub(int ranks);

// One process per rank over c10d. `store` is the rendezvous (a TCPStore from
// the torchrun environment). Gloo sends CPU tensors (CUDA tensors are staged
// through host memory); NCCL sends CUDA tensors on the current stream's device,
// with one communicator per ordered rank pair so that the two directions of a
// pair never wait on each other. A failed peer surfaces as CommError at once
// (its sockets close) or after `timeout`.
std::unique_ptr<Transport> MakeGlooTransport(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                             int world, std::chrono::milliseconds timeout);
std::unique_ptr<Transport> MakeNcclTransport(const c10::intrusive_ptr<c10d::Store>& store, int rank,
                                             int world, std::chrono::milliseconds timeout);

}  // namespace xpipe::exec
