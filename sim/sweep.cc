#include "sim/sweep.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <thread>

#include "common/error.h"

namespace xpipe {
namespace {

const std::vector<std::string> kAxes = {"schedule",   "stages",    "micro-batches", "mini-batches",
                                        "batch-size", "bandwidth", "latency",       "speed",
                                        "straggler",  "chunks",    "data-parallel"};

// A value of `axis`: a finite number in [lo, hi], whole where `whole`.
double ToNumber(const std::string& axis, const std::string& v, double lo, double hi, bool whole = false) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !std::isfinite(x) || x < lo || x > hi ||
      (whole && x != std::floor(x)))
    throw InputError("--sweep " + axis, "bad value '" + v.substr(0, 32) + "' (expected " +
                                            (whole ? "a whole " : "a ") + "number from " +
                                            std::to_string(lo) + " to " + std::to_string(hi) + ")");
  return x;
}

int Count(const std::string& axis, const std::string& v) {
  return static_cast<int>(ToNumber(axis, v, 1, 1e9, /*whole=*/true));
}

void Apply(Scenario& sc, const std::string& axis, const std::string& v) {
  if (axis == "schedule")
    sc.schedule.kind = ParseScheduleKind(v, "--sweep schedule");
  else if (axis == "stages")
    sc.schedule.devices = Count(axis, v);
  else if (axis == "micro-batches")
    sc.schedule.micro_batches = Count(axis, v);
  else if (axis == "mini-batches")
    sc.schedule.mini_batches = Count(axis, v);
  else if (axis == "batch-size")
    sc.batch_size = Count(axis, v);
  else if (axis == "bandwidth")
    sc.cluster.link_bytes_per_sec = ToNumber(axis, v, 1e-9, 1e6) * 1e9;
  else if (axis == "latency")
    sc.cluster.link_latency_ns = UsToNs(ToNumber(axis, v, 0, 1e9));
  else if (axis == "speed")
    sc.cluster.speed.assign(std::max(1, sc.schedule.devices), ToNumber(axis, v, 1e-3, 1e3));
  else if (axis == "straggler") {
    sc.cluster.speed.resize(std::max(1, sc.schedule.devices), 1.0);
    sc.cluster.speed.back() = ToNumber(axis, v, 1e-3, 1e3);
  } else if (axis == "chunks") {
    sc.schedule.chunks = Count(axis, v);
  } else if (axis == "data-parallel") {
    sc.data_parallel = Count(axis, v);
  }
}

std::string Csv(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

SweepAxis ParseSweepAxis(const std::string& spec) {
  const std::size_t eq = spec.find('=');
  if (eq == std::string::npos) throw InputError("--sweep", "expected AXIS=V1,V2,... (got '" + spec + "')");
  SweepAxis a;
  a.name = spec.substr(0, eq);
  if (std::find(kAxes.begin(), kAxes.end(), a.name) == kAxes.end()) {
    std::string names;
    for (const auto& n : kAxes) names += (names.empty() ? "" : ", ") + n;
    throw InputError("--sweep", "unknown axis '" + a.name + "' (expected one of " + names + ")");
  }
  std::stringstream ss(spec.substr(eq + 1));
  std::string v;
  while (std::getline(ss, v, ','))
    if (!v.empty()) a.values.push_back(v);
  if (a.values.empty()) throw InputError("--sweep " + a.name, "no values");
  return a;
}

std::string RunSweep(const Scenario& base, const std::vector<SweepAxis>& axes, int threads) {
  // Counted in doubles: a product of value counts can overflow size_t.
  double product = 1;
  for (const auto& a : axes) product *= static_cast<double>(a.values.size());
  if (product > 10000) throw InputError("--sweep", "more than 10,000 points; sweep fewer values");
  std::size_t points = 1;
  for (const auto& a : axes) points *= a.values.size();
  std::vector<std::string> rows(points);
  std::atomic<std::size_t> next{0};
  const auto work = [&]() {
    for (std::size_t p = next++; p < points; p = next++) {
      Scenario sc = base;
      sc.record_trace = false;
      std::vector<std::string> chosen(axes.size());
      std::size_t rest = p;
      for (std::size_t i = axes.size(); i-- > 0;) {
        chosen[i] = axes[i].values[rest % axes[i].values.size()];
        rest /= axes[i].values.size();
      }
      std::ostringstream row;
      for (const auto& c : chosen) row << Csv(c) << ',';
      try {
        for (std::size_t i = 0; i < axes.size(); ++i) Apply(sc, axes[i].name, chosen[i]);
        const ScenarioResult r = RunScenario(sc);
        const auto& u = r.sim.utilisation;
        const double bubble = 1.0 - std::accumulate(u.begin(), u.end(), 0.0) / u.size();
        std::string part;
        for (int n : r.partition.layers_per_stage) part += (part.empty() ? "" : " ") + std::to_string(n);
        const double gpus = static_cast<double>(r.schedule.num_devices) * sc.data_parallel;
        row << NsToMs(r.sim.mini_batch_ns) << ',' << r.sim.samples_per_sec << ','
            << r.sim.samples_per_sec / gpus << ',' << bubble << ','
            << *std::max_element(r.sim.peak_memory_bytes.begin(), r.sim.peak_memory_bytes.end()) << ','
            << NsToMs(r.partition.bottleneck_ns) << ',' << part << ',';
      } catch (const InputError& e) {
        row << ",,,,,,," << Csv(e.what());
      }
      rows[p] = row.str();
    }
  };
  const int n = threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(n));
  for (int t = 0; t < n; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  std::ostringstream out;
  for (const auto& a : axes) out << a.name << ',';
  out << "mini_batch_ms,samples_per_sec,samples_per_sec_per_gpu,bubble,peak_memory_bytes,bottleneck_ms,"
         "partition,"
         "error\n";
  for (const auto& r : rows) out << r << '\n';
  return out.str();
}

}  // namespace xpipe
