// The simulator's two engines (internal to sim/; callers use Simulate).
//
// The event engine keeps a clock and an event queue ordered by (time,
// sequence number) and runs anything: it is needed where transfers from
// different senders share a link and so depend on each other's timing.
//
// The dataflow engine needs no clock. Where every link carries one channel (a
// chain), each resource, a device's compute stream or a channel, is used in
// an order the schedule fixes, so each action's start is the later of its
// device being free and its input having arrived, and each transfer's start
// the later of its sender finishing and its channel being free. The engine
// evaluates those in dependency order, one device at a time as far as its
// inputs allow, a few array reads per action.
#pragma once

#include "sim/sim_model.h"
#include "sim/simulator.h"

namespace xpipe::sim {

// REQUIRES: as Simulate; w == Wire(s, c).
SimResult RunEventEngine(const Schedule& s, const SimConfig& c, Wiring w);
// REQUIRES: as Simulate; w == Wire(s, c) and w.one_channel_per_link.
SimResult RunDataflowEngine(const Schedule& s, const SimConfig& c, Wiring w);

}  // namespace xpipe::sim
