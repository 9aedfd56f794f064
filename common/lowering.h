// Communication lowering: inserts explicit SEND/RECV actions between
// consecutive stages.
//
// Each F(s, g) with s < S-1 is followed by SEND_F(s, g); each F(s, g) with
// s > 0 is preceded by RECV_F(s, g); backward passes likewise with SEND_B /
// RECV_B in the other direction. Sends are asynchronous (buffered channels),
// and every receive sits directly before the pass that consumes it, so the
// lowered schedule waits on exactly what the compute schedule waits on: it is
// deadlock-free whenever the compute schedule is (DryRun proves the latter).
// Consecutive stages on the same device still get a SEND/RECV pair (a local
// hand-off) so that all dependencies are explicit.
#pragma once

#include "common/schedule.h"

namespace xpipe {

// REQUIRES: s has no communication actions yet.
Schedule LowerCommunication(const Schedule& s);

// Drops every SEND/RECV: the inverse of LowerCommunication.
Schedule StripCommunication(const Schedule& s);

}  // namespace xpipe
