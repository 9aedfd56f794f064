#include "common/schedule_io.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/dry_run.h"
#include "common/error.h"
#include "common/json_util.h"

namespace xpipe {
namespace {

using nlohmann::json;

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  for (char c : line) {
    if (c == ',') {
      cells.push_back(cell);
      cell.clear();
    } else if (c != '\r' && c != '"' && c != ' ') {
      cell += c;
    }
  }
  cells.push_back(cell);
  return cells;
}

// Fills stages / devices / mini-batches of a schedule read from text whose
// header does not carry them.
void InferHeader(Schedule& s, const std::string& where) {
  int max_stage = -1, max_mini = -1;
  s.stage_device.clear();
  for (std::size_t d = 0; d < s.device_actions.size(); ++d)
    for (const Action& a : s.device_actions[d]) {
      max_stage = std::max(max_stage, a.stage);
      max_mini = std::max(max_mini, a.mini_batch);
    }
  s.num_devices = static_cast<int>(s.device_actions.size());
  std::size_t actions = 0;
  for (const auto& row : s.device_actions) actions += row.size();
  if (static_cast<std::size_t>(max_stage) >= actions)
    throw InputError(where, "stage " + std::to_string(max_stage) + " named, but the file holds only " +
                                std::to_string(actions) + " actions");
  s.num_stages = max_stage + 1;
  s.mini_batches = std::max(1, max_mini + 1);
  s.stage_device.assign(s.num_stages, 0);
  for (std::size_t d = 0; d < s.device_actions.size(); ++d)
    for (const Action& a : s.device_actions[d]) s.stage_device[a.stage] = static_cast<int>(d);
}

// Before anything is sized from a file's numbers: every (stage, mini-batch,
// micro-batch) needs a forward, so a schedule whose counts ask for more
// passes than the file holds actions is wrong, and nothing is allocated for it.
void CheckCounts(const Schedule& s, const std::string& where) {
  std::size_t actions = 0;
  for (const auto& row : s.device_actions) actions += row.size();
  const double passes = static_cast<double>(s.num_stages) * s.mini_batches * s.micro_batches;
  if (s.num_stages < 1 || s.mini_batches < 1 || s.micro_batches < 1 || s.num_devices < 1)
    throw InputError(where, "stages, devices, mini-batches and micro-batches must be at least 1");
  if (passes > static_cast<double>(actions))
    throw InputError(
        where, "its numbers ask for " + std::to_string(s.num_stages) + " stages x " +
                   std::to_string(s.mini_batches) + " mini-batches x " + std::to_string(s.micro_batches) +
                   " micro-batches of forwards, but it holds only " + std::to_string(actions) + " actions");
  if (static_cast<int>(s.stage_device.size()) != s.num_stages)
    throw InputError(
        where, "stage_device must name a device for each of the " + std::to_string(s.num_stages) + " stages");
  for (int d : s.stage_device)
    if (d < 0 || d >= s.num_devices) throw InputError(where, "stage_device names a device out of range");
  for (const auto& row : s.device_actions)
    for (const Action& a : row)
      if (a.stage < 0 || a.stage >= s.num_stages || a.mini_batch < 0 || a.mini_batch >= s.mini_batches ||
          a.micro_batch < 0 || a.micro_batch >= s.micro_batches)
        throw InputError(where, "action " + ToText(a, s.micro_batches) + " is outside the declared " +
                                    std::to_string(s.num_stages) + " stages x " +
                                    std::to_string(s.mini_batches) + " mini-batches x " +
                                    std::to_string(s.micro_batches) + " micro-batches");
}

}  // namespace

std::string ToCsv(const Schedule& s) {
  const DryRunResult grid = DryRun(s);
  std::ostringstream out;
  for (int d = 0; d < s.num_devices; ++d) {
    const auto& row = s.device_actions[d];
    std::vector<std::string> cells;
    TimeNs t = 0;
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (grid.ok()) {
        for (; t < grid.start[d][i]; ++t) cells.emplace_back();  // idle step
        t = std::max(t, grid.end[d][i]);
      }
      cells.push_back(ToText(row[i], s.micro_batches));
    }
    for (std::size_t c = 0; c < cells.size(); ++c) out << (c ? "," : "") << cells[c];
    out << '\n';
  }
  return out.str();
}

Schedule ParseCsv(const std::string& text, int micro_batches, const std::string& where) {
  if (micro_batches < 1) throw InputError("--micro-batches", "must be at least 1");
  Schedule s;
  s.micro_batches = micro_batches;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto& row = s.device_actions.emplace_back();
    int col = 0;
    for (const std::string& cell : SplitCsvLine(line)) {
      ++col;
      if (cell.empty()) continue;
      row.push_back(
          ParseAction(cell, micro_batches, where + ":" + std::to_string(lineno) + ":" + std::to_string(col)));
    }
  }
  while (!s.device_actions.empty() && s.device_actions.back().empty()) s.device_actions.pop_back();
  if (s.device_actions.empty()) throw InputError(where, "no actions");
  InferHeader(s, where);
  CheckCounts(s, where);
  return s;
}

std::string ToJson(const Schedule& s) {
  json j;
  j["kind"] = std::string(ScheduleName(s.kind));
  j["devices"] = s.num_devices;
  j["stages"] = s.num_stages;
  j["micro_batches"] = s.micro_batches;
  j["mini_batches"] = s.mini_batches;
  j["stage_device"] = s.stage_device;
  json rows = json::array();
  for (const auto& row : s.device_actions) {
    json r = json::array();
    for (const Action& a : row) {
      json o;
      o["action"] = ToText(a, s.micro_batches);
      o["mini_batch"] = a.mini_batch;
      o["micro_batch"] = a.micro_batch;
      o["weights"] = std::string(WeightSourceName(a.weights));
      o["version"] = a.version;
      o["horizon"] = a.horizon;
      if (a.reuse_prediction) o["reuse_prediction"] = true;
      if (a.weight_switch != WeightSwitch::kNone)
        o["switch"] = std::string(WeightSwitchName(a.weight_switch));
      r.push_back(std::move(o));
    }
    rows.push_back(std::move(r));
  }
  j["actions"] = std::move(rows);
  return j.dump(1) + "\n";
}

Schedule ParseJson(const std::string& text, const std::string& where) {
  const json j = ParseJsonText(text, where);
  Schedule s;
  const JsonObject top(
      j, where, {"kind", "devices", "stages", "micro_batches", "mini_batches", "stage_device", "actions"});
  const std::string kind = top.Text("kind");
  s.kind = kind == "custom" ? ScheduleKind::kCustom : ParseScheduleKind(kind, top.At("kind"));
  s.num_devices = static_cast<int>(top.Integer("devices", 1, 1 << 20));
  s.num_stages = static_cast<int>(top.Integer("stages", 1, 1 << 20));
  s.micro_batches = static_cast<int>(top.Integer("micro_batches", 1, INT32_MAX));
  s.mini_batches = static_cast<int>(top.Integer("mini_batches", 1, INT32_MAX));
  const json& sd = top.Array("stage_device");
  for (const json& d : sd) {
    if (!d.is_number_integer() || d.get<long long>() < 0 || d.get<long long>() >= s.num_devices)
      throw InputError(top.At("stage_device"),
                       "expected device numbers from 0 to " + std::to_string(s.num_devices - 1));
    s.stage_device.push_back(static_cast<int>(d.get<long long>()));
  }
  const json& rows = top.Array("actions");
  for (std::size_t d = 0; d < rows.size(); ++d) {
    auto& row = s.device_actions.emplace_back();
    if (!rows[d].is_array())
      throw InputError(where + ": actions[" + std::to_string(d) + "]", "expected an array");
    for (std::size_t i = 0; i < rows[d].size(); ++i) {
      const std::string at = where + ": actions[" + std::to_string(d) + "][" + std::to_string(i) + "]";
      const json& o = rows[d][i];
      const JsonObject fields(o, at,
                              {"action", "mini_batch", "micro_batch", "weights", "version", "horizon",
                               "reuse_prediction", "switch"});
      Action a = ParseAction(fields.Text("action"), s.micro_batches, at);
      a.mini_batch = static_cast<std::int32_t>(fields.Integer("mini_batch", 0, INT32_MAX));
      a.micro_batch = static_cast<std::int32_t>(fields.Integer("micro_batch", 0, INT32_MAX));
      a.weights = ParseWeightSource(fields.Text("weights"), at + ".weights");
      a.version = static_cast<std::int32_t>(fields.Integer("version", 0, INT32_MAX));
      a.horizon = static_cast<std::int32_t>(fields.Integer("horizon", 0, INT32_MAX));
      a.reuse_prediction = fields.Bool("reuse_prediction", false);
      if (fields.Has("switch")) a.weight_switch = ParseWeightSwitch(fields.Text("switch"), at);
      row.push_back(a);
    }
  }
  if (s.num_devices != static_cast<int>(s.device_actions.size()))
    throw InputError(where + ": devices", std::to_string(s.num_devices) + " devices but " +
                                              std::to_string(s.device_actions.size()) + " rows of actions");
  CheckCounts(s, where);
  return s;
}

std::string ToGrid(const Schedule& s) {
  const DryRunResult grid = DryRun(s);
  if (!grid.ok()) return "(schedule deadlocks; no grid)\n";
  const auto label = [&](const Action& a) {
    std::string m = std::to_string(a.mini_batch + 1);
    if (s.micro_batches > 1) {
      if (s.micro_batches <= 26)
        m += static_cast<char>('a' + a.micro_batch);
      else
        m += "." + std::to_string(a.micro_batch);
    }
    std::string stage = s.num_stages != s.num_devices ? "s" + std::to_string(a.stage) : "";
    return stage + std::string(KindName(a.kind)) + m;
  };
  const TimeNs makespan = grid.Makespan();
  // A grid is for reading: past 4 million cells it is neither readable nor small.
  if (static_cast<double>(makespan) * s.num_devices > 4e6)
    throw InputError("--format", "a grid of " + std::to_string(s.num_devices) + " devices x " +
                                     std::to_string(makespan) +
                                     " steps is too large to print; use csv or json");
  std::vector<std::vector<std::string>> cells(s.num_devices, std::vector<std::string>(makespan, "."));
  std::size_t width = 1;
  for (int d = 0; d < s.num_devices; ++d) {
    const auto& row = s.device_actions[d];
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (!IsCompute(a.kind)) continue;
      std::string c = label(a);
      if (i + 1 < row.size() && row[i + 1].kind == ActionKind::kUpdate) c += "*";
      cells[d][grid.start[d][i]] = c;
      width = std::max(width, c.size());
    }
  }
  std::ostringstream out;
  for (int d = 0; d < s.num_devices; ++d) {
    out << "GPU" << d;
    for (const auto& c : cells[d]) out << ' ' << c << std::string(width - c.size(), ' ');
    out << '\n';
  }
  return out.str();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void CheckWritable(const std::string& path, const std::string& flag) {
  const std::string probe = path + ".tmp";
  {
    std::ofstream out(probe, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(flag, "cannot write '" + path + "'");
  }
  std::remove(probe.c_str());
}

void WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path, "cannot write file");
    out << contents;
    out.flush();
    if (!out) throw InputError(path, "write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw InputError(path, "cannot rename temporary file");
}

}  // namespace xpipe
