// Communication lowering: inserts explicit SEND/RECV actions between
// consecutive stages.
//
// Each F(s, g) with s < S-1 is followed by SEND_F(s, g) to the device of
// stage s+1; each B/I(s, g) with s > 0 by SEND_B(s, g) to the device of stage
// s-1. A device pair (sender, receiver) is one ordered channel, as a NCCL
// communicator or a FIFO is: messages are matched by posting order, with no
// tags. So the receiver posts its RECVs in exactly the order the sender posts
// the SENDs: before a pass that consumes message m of a channel, every message
// of that channel up to m that is not yet posted gets its RECV (in channel
// order). With interleaved stages one channel carries the messages of several
// stages, and its RECVs need not follow the receiver's own compute order;
// matching still holds. A RECV never waits on more than the pass right after
// it waits on (earlier messages of a channel arrive before later ones), so the
// lowered schedule is deadlock-free whenever the compute schedule is.
// Consecutive stages on the same device still get a SEND/RECV pair (a local
// hand-off) so that all dependencies are explicit.
#pragma once

#include "common/message.h"
#include "common/schedule.h"

namespace xpipe {

// REQUIRES: s has no communication actions yet.
Schedule LowerCommunication(const Schedule& s);

// Drops every SEND/RECV: the inverse of LowerCommunication.
Schedule StripCommunication(const Schedule& s);

// True when the schedule holds any SEND/RECV.
bool IsLowered(const Schedule& s);

}  // namespace xpipe
