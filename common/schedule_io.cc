#include "common/schedule_io.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/dry_run.h"
#include "common/error.h"
#include "common/json_util.h"
#include "common/lowering.h"

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

std::string ToCsv(const Schedule& s, CsvFlavour flavour) {
  // Lowered files have no idle steps: PyTorch's compute_comms loader takes
  // every cell for an action.
  const bool lowered = IsLowered(s);
  const DryRunResult grid = lowered ? DryRunResult{} : DryRun(s);
  std::ostringstream out;
  for (int d = 0; d < s.num_devices; ++d) {
    const auto& row = s.device_actions[d];
    std::vector<std::string> cells;
    TimeNs t = 0;
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (flavour == CsvFlavour::kPyTorch) {
        if (a.kind == ActionKind::kUpdate) continue;
        // PyTorch posts no message between stages on one rank.
        if (IsComm(a.kind)) {
          const int peer = PeerStage(a);
          if (peer >= 0 && peer < s.num_stages && s.stage_device[peer] == d) continue;
        }
      }
      if (!lowered && grid.ok()) {
        for (; t < grid.start[d][i]; ++t) cells.emplace_back();  // idle step
        t = std::max(t, grid.end[d][i]);
      }
      cells.push_back(ToText(a, s.micro_batches));
    }
    for (std::size_t c = 0; c < cells.size(); ++c) out << (c ? "," : "") << cells[c];
    out << '\n';
  }
  return out.str();
}

namespace {

// One cell of a CSV as PyTorch writes it: an action, nothing (idle), an
// OVERLAP_F_B of several (run in the order written, as PyTorch's runtime runs
// them without a custom function), or an FSDP / data-parallel action xpipe
// does not model (UNSHARD, RESHARD, REDUCE_GRAD: counted and dropped). U
// cells carry a mini-batch, every other action a global micro-batch g.
void ParseCell(std::string_view cell, const std::string& where, std::vector<Action>& out, int& dropped) {
  constexpr std::string_view kOverlap = "OVERLAP_F_B";
  if (!cell.empty() && cell.front() == '(') {
    const std::size_t close = cell.find(')');
    if (close == std::string_view::npos || cell.substr(close + 1) != kOverlap)
      throw InputError(where, "bad action '" + std::string(cell) + "': expected (A;B)OVERLAP_F_B");
    std::string_view inner = cell.substr(1, close - 1);
    while (!inner.empty()) {
      const std::size_t semi = inner.find(';');
      const std::string_view part = inner.substr(0, semi);
      if (part.empty() || part.front() == '(')
        throw InputError(where, "bad action '" + std::string(cell) + "': expected actions inside ( )");
      ParseCell(part, where, out, dropped);
      inner = semi == std::string_view::npos ? std::string_view{} : inner.substr(semi + 1);
    }
    return;
  }
  std::size_t digits = 0;
  while (digits < cell.size() && cell[digits] >= '0' && cell[digits] <= '9') ++digits;
  for (std::string_view fsdp : {"UNSHARD", "RESHARD", "REDUCE_GRAD"}) {
    const std::string_view rest = cell.substr(digits);
    if (digits > 0 && rest.substr(0, fsdp.size()) == fsdp &&
        rest.find_first_not_of("0123456789", fsdp.size()) == std::string_view::npos) {
      ++dropped;
      return;
    }
  }
  // The global index is split by T later, once T is known: parse with T = 1.
  out.push_back(ParseAction(cell, 1, where));
}

// After the last backward pass of each (stage, mini-batch) in its device's
// order (and the sends right after it), the optimizer step: a file from
// PyTorch has none, as a flush after each mini-batch (REDUCE_GRAD's place).
// Only where all T micro-batches finish their backward: elsewhere the
// validator names the pass that is missing, not a misplaced U.
void AddUpdates(Schedule& s) {
  for (auto& row : s.device_actions) {
    std::map<std::pair<int, int>, std::size_t> last;  // (stage, mini-batch) -> index after it
    std::map<std::pair<int, int>, int> finished;      // B and W passes
    for (std::size_t i = 0; i < row.size(); ++i) {
      const Action& a = row[i];
      if (a.kind == ActionKind::kBackward || a.kind == ActionKind::kBackwardWeight)
        ++finished[{a.stage, a.mini_batch}];
      if (a.kind != ActionKind::kBackward && a.kind != ActionKind::kBackwardInput &&
          a.kind != ActionKind::kBackwardWeight)
        continue;
      std::size_t after = i + 1;
      while (after < row.size() && row[after].kind == ActionKind::kSendB && row[after].stage == a.stage &&
             row[after].mini_batch == a.mini_batch)
        ++after;
      last[{a.stage, a.mini_batch}] = after;
    }
    std::vector<std::pair<std::size_t, Action>> inserts;
    for (const auto& [key, at] : last) {
      if (finished[key] != s.micro_batches) continue;
      Action u;
      u.kind = ActionKind::kUpdate;
      u.stage = key.first;
      u.mini_batch = key.second;
      inserts.emplace_back(at, u);
    }
    std::stable_sort(inserts.begin(), inserts.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<Action> merged;
    merged.reserve(row.size() + inserts.size());
    std::size_t next = 0;
    for (std::size_t i = 0; i <= row.size(); ++i) {
      for (; next < inserts.size() && inserts[next].first == i; ++next)
        merged.push_back(inserts[next].second);
      if (i < row.size()) merged.push_back(row[i]);
    }
    row = std::move(merged);
  }
}

}  // namespace

Schedule ParseCsv(const std::string& text, int micro_batches, const std::string& where,
                  std::vector<std::string>* notes) {
  if (micro_batches < 0) throw InputError("--micro-batches", "must be at least 1");
  Schedule s;
  std::istringstream in(text);
  std::string line;
  int lineno = 0, dropped = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto& row = s.device_actions.emplace_back();
    int col = 0;
    for (const std::string& cell : SplitCsvLine(line)) {
      ++col;
      if (cell.empty()) continue;
      ParseCell(cell, where + ":" + std::to_string(lineno) + ":" + std::to_string(col), row, dropped);
    }
  }
  while (!s.device_actions.empty() && s.device_actions.back().empty()) s.device_actions.pop_back();
  if (s.device_actions.empty()) throw InputError(where, "no actions");
  // Actions hold g (or b for U) in mini_batch, as parsed with T = 1.
  std::int64_t max_g = -1, updates = 0, max_u = -1;
  std::size_t actions = 0;
  for (const auto& row : s.device_actions)
    for (const Action& a : row) {
      ++actions;
      if (a.kind == ActionKind::kUpdate) {
        ++updates;
        max_u = std::max<std::int64_t>(max_u, a.mini_batch);
      } else {
        max_g = std::max<std::int64_t>(max_g, a.mini_batch);
      }
    }
  if (max_g < 0) throw InputError(where, "no passes");
  if (static_cast<std::size_t>(max_g) >= actions || static_cast<std::size_t>(max_u + 1) > actions)
    throw InputError(where, "micro-batch " + std::to_string(std::max(max_g, max_u)) +
                                " named, but the file holds only " + std::to_string(actions) + " actions");
  const std::int64_t G = max_g + 1;  // micro-batches in the file
  int T = 0;
  if (updates > 0) {
    // xpipe's flavour: g = b * T + j, and U<b> after mini-batch b's backwards.
    const std::int64_t K = max_u + 1;
    if (G % K != 0)
      throw InputError(where, "holds " + std::to_string(G) + " micro-batches and " + std::to_string(K) +
                                  " mini-batches (U), which do not split evenly");
    T = static_cast<int>(G / K);
    if (micro_batches > 0 && micro_batches != T)
      throw InputError("--micro-batches", std::to_string(micro_batches) + " per mini-batch, but " + where +
                                              " holds " + std::to_string(G) + " micro-batches in " +
                                              std::to_string(K) + " mini-batches (T = " + std::to_string(T) +
                                              ")");
  } else {
    if (micro_batches > 0 && G % micro_batches != 0)
      throw InputError("--micro-batches", where + " holds " + std::to_string(G) +
                                              " micro-batches, which do not split into mini-batches of " +
                                              std::to_string(micro_batches));
    T = micro_batches > 0 ? micro_batches : static_cast<int>(G);
  }
  s.micro_batches = T;
  for (auto& row : s.device_actions)
    for (Action& a : row)
      if (a.kind != ActionKind::kUpdate) {
        const std::int64_t g = a.mini_batch;
        a.mini_batch = static_cast<std::int32_t>(g / T);
        a.micro_batch = static_cast<std::int32_t>(g % T);
      }
  InferHeader(s, where);
  if (updates == 0) {
    AddUpdates(s);
  }
  CheckCounts(s, where);
  if (notes && dropped > 0)
    notes->push_back(where + ": dropped " + std::to_string(dropped) +
                     " UNSHARD/RESHARD/REDUCE_GRAD actions (FSDP and data parallelism are not modelled)");
  if (notes && updates == 0)
    notes->push_back(where + ": no U: " + std::to_string(s.mini_batches) + " mini-batch" +
                     (s.mini_batches > 1 ? "es" : "") + " of " + std::to_string(T) +
                     " micro-batches, each stage's optimizer step after its last backward");
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
