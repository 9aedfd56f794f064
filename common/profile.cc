#include "common/profile.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <sstream>

#include "common/error.h"
#include "common/json_util.h"
#include "common/schedule_io.h"

namespace xpipe {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 4> kOptimizers = {"sgd", "momentum", "adam", "adamw"};

const json& Get(const json& j, const char* field, const std::string& where) {
  if (!j.is_object() || !j.contains(field))
    throw InputError(where, std::string("missing field '") + field + "'");
  return j.at(field);
}

double Number(const json& j, const char* field, const std::string& where, bool allow_negative = false) {
  const json& v = Get(j, field, where);
  if (!v.is_number()) throw InputError(where + "." + field, "expected a number");
  const double x = v.get<double>();
  if (!allow_negative && x < 0) throw InputError(where + "." + field, "must not be negative");
  return x;
}

std::string Text(const json& j, const char* field, const std::string& where) {
  const json& v = Get(j, field, where);
  if (!v.is_string()) throw InputError(where + "." + field, "expected a string");
  return v.get<std::string>();
}

}  // namespace

std::string_view OptimizerName(OptimizerKind kind) { return kOptimizers[static_cast<int>(kind)]; }

OptimizerKind ParseOptimizer(std::string_view name, const std::string& where) {
  for (std::size_t i = 0; i < kOptimizers.size(); ++i)
    if (kOptimizers[i] == name) return static_cast<OptimizerKind>(i);
  throw InputError(where,
                   "unknown optimizer '" + std::string(name) + "' (expected sgd, momentum, adam, adamw)");
}

int OptimizerStateCopies(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kSgd:
      return 0;
    case OptimizerKind::kMomentum:
      return 1;
    default:
      return 2;
  }
}

std::vector<Bytes> Profile::CutBytes() const {
  const int L = static_cast<int>(layers.size());
  std::vector<Bytes> diff(L + 2, 0);
  // Producer p contributes to every cut c with p < c <= (its last consumer).
  std::vector<int> last_consumer(L, -1);
  if (edges.empty()) {
    for (int p = 0; p + 1 < L; ++p) last_consumer[p] = p + 1;
  } else {
    for (const auto& [p, c] : edges) last_consumer[p] = std::max(last_consumer[p], c);
  }
  for (int p = 0; p < L; ++p) {
    if (last_consumer[p] <= p) continue;
    diff[p + 1] += layers[p].activation_bytes;
    diff[last_consumer[p] + 1] -= layers[p].activation_bytes;
  }
  std::vector<Bytes> cut(L + 1, 0);
  Bytes run = 0;
  for (int c = 1; c < L; ++c) {
    run += diff[c];
    cut[c] = run;
  }
  return cut;
}

Profile ParseProfile(const std::string& text, const std::string& where) {
  const json j = ParseJsonText(text, where);
  Profile p;
  p.name = Text(j, "name", where);
  if (j.contains("source")) p.source = Text(j, "source", where);
  if (j.contains("hardware")) p.hardware = Text(j, "hardware", where);
  const double batch = Number(j, "batch_size", where);
  if (batch < 1 || batch != static_cast<int>(batch))
    throw InputError(where + ".batch_size", "must be a positive integer");
  p.batch_size = static_cast<int>(batch);
  if (j.contains("optimizer"))
    p.optimizer = ParseOptimizer(Text(j, "optimizer", where), where + ".optimizer");
  const json& layers = Get(j, "layers", where);
  if (!layers.is_array() || layers.empty()) throw InputError(where + ".layers", "expected a non-empty array");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string at = where + ".layers[" + std::to_string(i) + "]";
    const json& l = layers[i];
    Layer layer;
    layer.name = Text(l, "name", at);
    if (l.contains("op")) layer.op = Text(l, "op", at);
    layer.forward_ns = MsToNs(Number(l, "forward_ms", at));
    layer.backward_ns = MsToNs(Number(l, "backward_ms", at));
    layer.activation_bytes = static_cast<Bytes>(Number(l, "activation_bytes", at));
    layer.parameter_bytes = static_cast<Bytes>(Number(l, "parameter_bytes", at));
    for (auto [field, ns] : {std::pair{"update_ms", &layer.update_ns}, std::pair{"copy_ms", &layer.copy_ns},
                             std::pair{"predict_ms", &layer.predict_ns}})
      if (l.contains(field)) *ns = MsToNs(Number(l, field, at));
    layer.is_input = l.contains("input") && l.at("input").is_boolean() && l.at("input").get<bool>();
    p.layers.push_back(std::move(layer));
  }
  const int L = static_cast<int>(p.layers.size());
  if (j.contains("edges")) {
    const json& e = j.at("edges");
    if (!e.is_array()) throw InputError(where + ".edges", "expected an array of [producer, consumer]");
    for (std::size_t i = 0; i < e.size(); ++i) {
      const std::string at = where + ".edges[" + std::to_string(i) + "]";
      if (!e[i].is_array() || e[i].size() != 2 || !e[i][0].is_number_integer() ||
          !e[i][1].is_number_integer())
        throw InputError(at, "expected [producer, consumer] layer indices");
      const int a = e[i][0].get<int>(), b = e[i][1].get<int>();
      if (a < 0 || b < 0 || a >= L || b >= L) throw InputError(at, "layer index out of range");
      if (a >= b) throw InputError(at, "edges must go forward in the layer order (producer < consumer)");
      p.edges.emplace_back(a, b);
    }
  }
  if (j.contains("partition")) {
    const json& part = j.at("partition");
    if (!part.is_array()) throw InputError(where + ".partition", "expected layers per stage");
    int total = 0;
    for (const json& n : part) {
      if (!n.is_number_integer() || n.get<int>() < 1)
        throw InputError(where + ".partition", "each stage needs a positive number of layers");
      p.partition.push_back(n.get<int>());
      total += n.get<int>();
    }
    if (total != L)
      throw InputError(where + ".partition",
                       "covers " + std::to_string(total) + " layers, profile has " + std::to_string(L));
  }
  return p;
}

Profile LoadProfile(const std::string& path) { return ParseProfile(ReadFile(path), path); }

std::string ProfileToJson(const Profile& p) {
  json j;
  j["name"] = p.name;
  j["source"] = p.source;
  j["hardware"] = p.hardware;
  j["batch_size"] = p.batch_size;
  j["optimizer"] = std::string(OptimizerName(p.optimizer));
  // One layer per line and the edges on one line: diffable and readable.
  std::string out = j.dump(1);
  out.pop_back();  // the closing brace
  out.pop_back();  // and its newline
  out += ",\n \"layers\": [\n";
  for (std::size_t i = 0; i < p.layers.size(); ++i) {
    const Layer& l = p.layers[i];
    json o;
    o["name"] = l.name;
    o["op"] = l.op;
    o["forward_ms"] = NsToMs(l.forward_ns);
    o["backward_ms"] = NsToMs(l.backward_ns);
    o["activation_bytes"] = l.activation_bytes;
    o["parameter_bytes"] = l.parameter_bytes;
    if (l.update_ns > 0) o["update_ms"] = NsToMs(l.update_ns);
    if (l.copy_ns > 0) o["copy_ms"] = NsToMs(l.copy_ns);
    if (l.predict_ns > 0) o["predict_ms"] = NsToMs(l.predict_ns);
    if (l.is_input) o["input"] = true;
    out += "  " + o.dump() + (i + 1 < p.layers.size() ? ",\n" : "\n");
  }
  json edges = json::array();
  for (const auto& [a, b] : p.edges) edges.push_back({a, b});
  out += " ],\n \"edges\": " + edges.dump();
  if (!p.partition.empty()) out += ",\n \"partition\": " + json(p.partition).dump();
  out += "\n}\n";
  return out;
}

Profile ImportPipeDreamGraph(const std::string& text, const std::string& where) {
  struct Node {
    Layer layer;
    long number = 0;
  };
  std::map<std::string, int> id;
  std::vector<Node> nodes;
  std::vector<std::pair<std::string, std::string>> raw_edges;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  const auto value = [&](const std::string& attrs, const std::string& key, const std::string& at) -> double {
    const std::size_t k = attrs.find(key + "=");
    if (k == std::string::npos) throw InputError(at, "missing " + key);
    std::size_t v = k + key.size() + 1;
    if (attrs[v] == '[') {  // a list of sizes (multi-output layers): their sum
      const std::size_t close = attrs.find(']', v);
      if (close == std::string::npos) throw InputError(at, "unterminated list in " + key);
      double sum = 0;
      std::string item;
      std::istringstream list(attrs.substr(v + 1, close - v - 1));
      while (std::getline(list, item, ';')) sum += std::strtod(item.c_str(), nullptr);
      return sum;
    }
    char* end = nullptr;
    const double x = std::strtod(attrs.c_str() + v, &end);
    if (end == attrs.c_str() + v) throw InputError(at, "bad number for " + key);
    if (x < 0) throw InputError(at, key + " must not be negative");
    return x;
  };
  while (std::getline(in, line)) {
    ++lineno;
    const std::string at = where + ":" + std::to_string(lineno);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const bool edge = line[0] == '\t' || line[0] == ' ';
    const std::size_t sep = line.find(" -- ");
    if (sep == std::string::npos) throw InputError(at, "expected 'a -- b'");
    const auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t\r"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    if (edge) {
      raw_edges.emplace_back(trim(line.substr(0, sep)), trim(line.substr(sep + 4)));
      continue;
    }
    const std::size_t sep2 = line.rfind(" -- ");
    if (sep2 == sep) throw InputError(at, "expected 'node -- op -- attributes'");
    Node n;
    n.layer.name = trim(line.substr(0, sep));
    n.layer.op = trim(line.substr(sep + 4, sep2 - sep - 4));
    const std::string attrs = line.substr(sep2 + 4);
    n.layer.forward_ns = MsToNs(value(attrs, "forward_compute_time", at));
    n.layer.backward_ns = MsToNs(value(attrs, "backward_compute_time", at));
    n.layer.activation_bytes = static_cast<Bytes>(std::llround(value(attrs, "activation_size", at)));
    n.layer.parameter_bytes = static_cast<Bytes>(std::llround(value(attrs, "parameter_size", at)));
    n.layer.is_input = n.layer.op.rfind("Input", 0) == 0;
    n.number = std::strtol(n.layer.name.c_str() + std::min<std::size_t>(4, n.layer.name.size()), nullptr, 10);
    if (id.count(n.layer.name)) throw InputError(at, "node " + n.layer.name + " defined twice");
    id[n.layer.name] = static_cast<int>(nodes.size());
    nodes.push_back(std::move(n));
  }
  if (nodes.empty()) throw InputError(where, "no nodes");
  const int L = static_cast<int>(nodes.size());
  std::vector<std::vector<int>> out(L);
  std::vector<int> indegree(L, 0);
  for (const auto& [a, b] : raw_edges) {
    if (!id.count(a) || !id.count(b))
      throw InputError(
          where, std::string("edge ").append(a).append(" -- ").append(b).append(" names an unknown node"));
    out[id[a]].push_back(id[b]);
    ++indegree[id[b]];
  }
  // Kahn's algorithm, smallest node number first.
  using Item = std::pair<long, int>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> ready;
  for (int i = 0; i < L; ++i)
    if (indegree[i] == 0) ready.push({nodes[i].number, i});
  std::vector<int> order, position(L, -1);
  while (!ready.empty()) {
    const int i = ready.top().second;
    ready.pop();
    position[i] = static_cast<int>(order.size());
    order.push_back(i);
    for (int c : out[i])
      if (--indegree[c] == 0) ready.push({nodes[c].number, c});
  }
  if (static_cast<int>(order.size()) != L) throw InputError(where, "the graph has a cycle");
  Profile p;
  p.name = where;
  p.batch_size = 1;
  for (int i : order) p.layers.push_back(nodes[i].layer);
  for (const auto& [a, b] : raw_edges) p.edges.emplace_back(position[id[a]], position[id[b]]);
  std::sort(p.edges.begin(), p.edges.end());
  return p;
}

}  // namespace xpipe
