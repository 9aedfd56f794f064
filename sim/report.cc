#include "sim/report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

namespace xpipe {
namespace {

std::string Fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string Join(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// A per-stage list a table can hold at hundreds of stages: in full up to 16
// entries; else as runs ("1 x511, 0") when there are at most 4; else the
// range ("0-7 over 512"). --detail and --json give every entry.
std::string Summary(const std::vector<int>& v) {
  if (v.size() <= 16) return Join(v);
  std::vector<std::pair<int, std::size_t>> runs;
  for (int x : v) {
    if (runs.empty() || runs.back().first != x)
      runs.emplace_back(x, 1);
    else
      ++runs.back().second;
  }
  if (runs.size() <= 4) {
    std::string s;
    for (const auto& [x, n] : runs)
      s += (s.empty() ? "" : ", ") + std::to_string(x) + (n > 1 ? " x" + std::to_string(n) : "");
    return s;
  }
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return std::to_string(*lo) + "-" + std::to_string(*hi) + " over " + std::to_string(v.size());
}

int Gpus(const ScenarioResult& r) { return r.schedule.num_devices * r.data_parallel; }

double MeanBubble(const SimResult& r) {
  if (r.utilisation.empty()) return 0;
  return 1.0 - std::accumulate(r.utilisation.begin(), r.utilisation.end(), 0.0) / r.utilisation.size();
}

double GiB(Bytes b) { return static_cast<double>(b) / (1ULL << 30); }

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> w;
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) {
      if (w.size() <= c) w.push_back(0);
      w[c] = std::max(w[c], r[c].size());
    }
  std::ostringstream out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string line;
    for (std::size_t c = 0; c < rows[i].size(); ++c)
      line += (c ? "  " : "") + rows[i][c] + std::string(w[c] - rows[i][c].size(), ' ');
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
    if (i == 0) {
      std::size_t total = 0;
      for (std::size_t x : w) total += x + 2;
      out << std::string(total - 2, '-') << '\n';
    }
  }
  return out.str();
}

}  // namespace

std::string CompareTable(const std::vector<NamedResult>& results) {
  TimeNs baseline = 0;
  for (const auto& [name, r] : results)
    if (!IsAsynchronous(r.schedule.kind)) {
      baseline = r.sim.mini_batch_ns;
      break;
    }
  std::vector<std::vector<std::string>> rows = {{"schedule", "ms/mini-batch", "samples/s", "per GPU",
                                                 "speed-up", "bubble", "peak mem GiB", "versions",
                                                 "staleness F", "horizon F/B", "partition"}};
  for (const auto& [name, r] : results) {
    std::vector<int> stale, hf, hb;
    for (const auto& v : r.versions) {
      stale.push_back(v.forward_staleness);
      hf.push_back(v.forward_horizon);
      hb.push_back(v.backward_horizon);
    }
    const Bytes peak = *std::max_element(r.sim.peak_memory_bytes.begin(), r.sim.peak_memory_bytes.end());
    const bool predicts = std::any_of(hf.begin(), hf.end(), [](int h) { return h > 0; }) ||
                          std::any_of(hb.begin(), hb.end(), [](int h) { return h > 0; });
    rows.push_back(
        {name, Fmt("%.2f", NsToMs(r.sim.mini_batch_ns)), Fmt("%.1f", r.sim.samples_per_sec),
         Fmt("%.2f", r.sim.samples_per_sec / Gpus(r)),
         baseline > 0 ? Fmt("%.2fx", static_cast<double>(baseline) / r.sim.mini_batch_ns) : "-",
         Fmt("%.1f%%", 100 * MeanBubble(r.sim)),
         Fmt("%.2f", GiB(peak)) + (r.device_memory_bytes && peak > *r.device_memory_bytes ? " !" : ""),
         Summary(r.versions_kept), Summary(stale), predicts ? Summary(hf) + " / " + Summary(hb) : "-",
         Summary(r.partition.layers_per_stage)});
  }
  std::string out = Table(rows);
  for (const auto& [name, r] : results) {
    const Bytes peak = *std::max_element(r.sim.peak_memory_bytes.begin(), r.sim.peak_memory_bytes.end());
    if (r.device_memory_bytes && peak > *r.device_memory_bytes) {
      out +=
          "! = a stage needs more than the device's " + Fmt("%.0f", GiB(*r.device_memory_bytes)) + " GiB\n";
      break;
    }
  }
  return out;
}

std::string StageTable(const ScenarioResult& r) {
  const bool dp = r.data_parallel > 1;
  std::vector<std::vector<std::string>> rows = {{"stage", "layers", "F ms", "B ms", "out MiB", "peak mem GiB",
                                                 "in flight", "util", "versions", "staleness F/B",
                                                 "horizon F/B"}};
  if (dp) rows[0].emplace_back("all-reduce ms");
  for (std::size_t k = 0; k < r.stages.size(); ++k) {
    const StageCost& c = r.stages[k];
    const int d = r.schedule.stage_device[k];
    const StageVersionSummary& v = r.versions[k];
    rows.push_back({std::to_string(k),
                    std::to_string(c.first_layer) + "-" + std::to_string(c.first_layer + c.num_layers - 1),
                    Fmt("%.3f", NsToMs(c.forward_ns)), Fmt("%.3f", NsToMs(c.backward_ns)),
                    Fmt("%.2f", static_cast<double>(c.output_bytes) / (1 << 20)),
                    Fmt("%.2f", GiB(r.sim.peak_memory_bytes[k])), std::to_string(r.sim.peak_in_flight[k]),
                    Fmt("%.1f%%", 100 * r.sim.utilisation[d]), std::to_string(r.versions_kept[k]),
                    std::to_string(v.forward_staleness) + "/" + std::to_string(v.backward_staleness),
                    std::to_string(v.forward_horizon) + "/" + std::to_string(v.backward_horizon)});
    if (dp) rows.back().push_back(Fmt("%.3f", NsToMs(r.sim.allreduce_ns[k])));
  }
  std::string out = Table(rows);
  out += "partition " + Join(r.partition.layers_per_stage) + (r.auto_partition ? " (automatic)" : "") +
         ", bottleneck stage " + std::to_string(r.partition.bottleneck_stage) + " at " +
         Fmt("%.3f", NsToMs(r.partition.bottleneck_ns)) + " ms per micro-batch\n";
  return out;
}

std::string ResultsJson(const std::vector<NamedResult>& results) {
  using nlohmann::json;
  json all = json::array();
  for (const auto& [name, r] : results) {
    json j;
    j["schedule"] = name;
    j["stages"] = r.schedule.num_stages;
    j["devices"] = r.schedule.num_devices;
    j["micro_batches"] = r.schedule.micro_batches;
    j["mini_batches"] = r.schedule.mini_batches;
    j["partition"] = r.partition.layers_per_stage;
    j["auto_partition"] = r.auto_partition;
    j["bottleneck_ms"] = NsToMs(r.partition.bottleneck_ns);
    j["mini_batch_ms"] = NsToMs(r.sim.mini_batch_ns);
    j["makespan_ms"] = NsToMs(r.sim.makespan_ns);
    j["samples_per_sec"] = r.sim.samples_per_sec;
    j["data_parallel"] = r.data_parallel;
    j["gpus"] = Gpus(r);
    j["samples_per_sec_per_gpu"] = r.sim.samples_per_sec / Gpus(r);
    if (r.data_parallel > 1) {
      json ar = json::array();
      for (TimeNs t : r.sim.allreduce_ns) ar.push_back(NsToMs(t));
      j["allreduce_ms"] = std::move(ar);
    }
    j["utilisation"] = r.sim.utilisation;
    j["bubble"] = MeanBubble(r.sim);
    j["peak_memory_bytes"] = r.sim.peak_memory_bytes;
    if (r.device_memory_bytes)
      j["fits_memory"] = *std::max_element(r.sim.peak_memory_bytes.begin(), r.sim.peak_memory_bytes.end()) <=
                         *r.device_memory_bytes;
    j["peak_in_flight"] = r.sim.peak_in_flight;
    j["versions_kept"] = r.versions_kept;
    json st = json::array();
    for (const auto& v : r.versions)
      st.push_back({{"forward_staleness", v.forward_staleness},
                    {"backward_staleness", v.backward_staleness},
                    {"forward_horizon", v.forward_horizon},
                    {"backward_horizon", v.backward_horizon}});
    j["steady_state"] = std::move(st);
    json links = json::object();
    for (std::size_t l = 0; l < r.sim.link_names.size(); ++l)
      links[r.sim.link_names[l]] = r.sim.link_bytes[l];
    j["link_bytes"] = std::move(links);
    j["actions"] = r.sim.actions;
    all.push_back(std::move(j));
  }
  return all.dump(1) + "\n";
}

}  // namespace xpipe
