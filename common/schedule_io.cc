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
void InferHeader(Schedule& s) {
  int max_stage = -1, max_mini = -1;
  s.stage_device.clear();
  for (std::size_t d = 0; d < s.device_actions.size(); ++d)
    for (const Action& a : s.device_actions[d]) {
      max_stage = std::max(max_stage, a.stage);
      max_mini = std::max(max_mini, a.mini_batch);
    }
  s.num_devices = static_cast<int>(s.device_actions.size());
  s.num_stages = max_stage + 1;
  s.mini_batches = std::max(1, max_mini + 1);
  s.stage_device.assign(s.num_stages, 0);
  for (std::size_t d = 0; d < s.device_actions.size(); ++d)
    for (const Action& a : s.device_actions[d]) s.stage_device[a.stage] = static_cast<int>(d);
}

template <typename T>
T Field(const json& j, const char* name, const std::string& where) {
  if (!j.is_object() || !j.contains(name))
    throw InputError(where, std::string("missing field '") + name + "'");
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    throw InputError(where, std::string("field '") + name + "' has the wrong type");
  }
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
  InferHeader(s);
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
  const std::string kind = Field<std::string>(j, "kind", where);
  s.kind = kind == "custom" ? ScheduleKind::kCustom : ParseScheduleKind(kind, where + ": kind");
  s.num_devices = Field<int>(j, "devices", where);
  s.num_stages = Field<int>(j, "stages", where);
  s.micro_batches = Field<int>(j, "micro_batches", where);
  s.mini_batches = Field<int>(j, "mini_batches", where);
  s.stage_device = Field<std::vector<int>>(j, "stage_device", where);
  if (s.micro_batches < 1) throw InputError(where + ": micro_batches", "must be at least 1");
  const json rows = Field<json>(j, "actions", where);
  if (!rows.is_array()) throw InputError(where + ": actions", "expected an array of rows");
  for (std::size_t d = 0; d < rows.size(); ++d) {
    auto& row = s.device_actions.emplace_back();
    if (!rows[d].is_array())
      throw InputError(where + ": actions[" + std::to_string(d) + "]", "expected an array");
    for (std::size_t i = 0; i < rows[d].size(); ++i) {
      const std::string at = where + ": actions[" + std::to_string(d) + "][" + std::to_string(i) + "]";
      const json& o = rows[d][i];
      Action a = ParseAction(Field<std::string>(o, "action", at), s.micro_batches, at);
      a.mini_batch = Field<int>(o, "mini_batch", at);
      a.micro_batch = Field<int>(o, "micro_batch", at);
      a.weights = ParseWeightSource(Field<std::string>(o, "weights", at), at + ".weights");
      a.version = Field<int>(o, "version", at);
      a.horizon = Field<int>(o, "horizon", at);
      a.reuse_prediction = o.contains("reuse_prediction") && Field<bool>(o, "reuse_prediction", at);
      if (o.contains("switch")) a.weight_switch = ParseWeightSwitch(Field<std::string>(o, "switch", at), at);
      row.push_back(a);
    }
  }
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
