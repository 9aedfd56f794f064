// Units used throughout xpipe.
//
// Time is an integer count of nanoseconds and sizes are integer bytes, carried
// in variables whose names end in _ns / _bytes. Floating point appears only at
// the edges: reading profiles (milliseconds, GB/s) and printing reports.
#pragma once

#include <cmath>
#include <cstdint>

namespace xpipe {

using TimeNs = std::int64_t;
using Bytes = std::int64_t;

constexpr TimeNs kNsPerUs = 1000;
constexpr TimeNs kNsPerMs = 1000 * kNsPerUs;
constexpr TimeNs kNsPerSec = 1000 * kNsPerMs;

inline TimeNs MsToNs(double ms) { return static_cast<TimeNs>(std::llround(ms * kNsPerMs)); }
inline TimeNs UsToNs(double us) { return static_cast<TimeNs>(std::llround(us * kNsPerUs)); }
inline double NsToMs(TimeNs ns) { return static_cast<double>(ns) / kNsPerMs; }
inline double NsToUs(TimeNs ns) { return static_cast<double>(ns) / kNsPerUs; }
inline double NsToSec(TimeNs ns) { return static_cast<double>(ns) / kNsPerSec; }

// Time to move `bytes` over a link of `bytes_per_sec`, rounded up to whole ns.
inline TimeNs TransferNs(Bytes bytes, double bytes_per_sec) {
  if (bytes <= 0) return 0;
  return static_cast<TimeNs>(std::ceil(static_cast<double>(bytes) * kNsPerSec / bytes_per_sec));
}

}  // namespace xpipe
