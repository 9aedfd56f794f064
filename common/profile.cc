#include "common/profile.h"

#include <algorithm>
#include <array>
#include <cmath>
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

// What a profile's numbers may be: a layer's time up to 1e7 ms (2.8 hours;
// sums over layers and micro-batches stay far from int64 nanoseconds' limit),
// bytes up to 1 PiB.
constexpr double kMaxLayerMs = 1e7;

// Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points
// past U+10FFFF): names go into JSON, which holds nothing else.
bool IsUtf8(const std::string& s) {
  const auto byte = [&](std::size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0; };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = byte(i);
    int n = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;
      if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;
    } else {
      return false;
    }
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (int k = 2; k <= n; ++k)
      if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return false;
    i += n + 1;
  }
  return true;
}
constexpr double kMaxBytes = 1125899906842624.0;  // 2^50

// Sums over all layers must fit int64 (nanoseconds, bytes) with room for
// scaling by micro-batches and transfers: each total at most 2^60.
void CheckTotals(const Profile& p, const std::string& where) {
  constexpr double kMaxTotal = 1152921504606846976.0;  // 2^60
  double time = 0, activations = 0, parameters = 0;
  for (const Layer& l : p.layers) {
    time += static_cast<double>(l.forward_ns) + static_cast<double>(l.backward_ns) +
            static_cast<double>(l.update_ns) + static_cast<double>(l.copy_ns) +
            static_cast<double>(l.predict_ns);
    activations += static_cast<double>(l.activation_bytes);
    parameters += static_cast<double>(l.parameter_bytes);
  }
  if (time > 1e17) throw InputError(where, "the layers' times add up to more than 1e11 ms");
  if (activations > kMaxTotal || parameters > kMaxTotal)
    throw InputError(where, "the layers' bytes add up to more than 2^60");
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
  const JsonObject top(j, where,
                       {"name", "source", "hardware", "batch_size", "optimizer", "optimizer_copies", "layers",
                        "edges", "partition"});
  Profile p;
  p.name = top.Text("name");
  p.source = top.Text("source", "");
  p.hardware = top.Text("hardware", "");
  p.batch_size = static_cast<int>(top.Integer("batch_size", 1, 1000000000));
  if (top.Has("optimizer")) p.optimizer = ParseOptimizer(top.Text("optimizer"), top.At("optimizer"));
  if (top.Has("optimizer_copies"))
    p.optimizer_copies = static_cast<int>(top.Integer("optimizer_copies", 0, 64));
  const json& layers = top.Array("layers");
  if (layers.empty()) throw InputError(top.At("layers"), "expected a non-empty array");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const JsonObject l(
        layers[i], where + ".layers[" + std::to_string(i) + "]",
        {"name", "op", "forward_ms", "backward_ms", "activation_bytes", "parameter_bytes", "update_ms",
         "copy_ms", "predict_ms", "input", "saved_bytes", "saved_bytes_recompute", "forward_flops"});
    Layer layer;
    layer.name = l.Text("name");
    layer.op = l.Text("op", "");
    layer.forward_ns = MsToNs(l.Number("forward_ms", 0, kMaxLayerMs));
    layer.backward_ns = MsToNs(l.Number("backward_ms", 0, kMaxLayerMs));
    layer.activation_bytes = static_cast<Bytes>(l.Number("activation_bytes", 0, kMaxBytes));
    layer.parameter_bytes = static_cast<Bytes>(l.Number("parameter_bytes", 0, kMaxBytes));
    layer.update_ns = MsToNs(l.Number("update_ms", 0, kMaxLayerMs, 0));
    layer.copy_ns = MsToNs(l.Number("copy_ms", 0, kMaxLayerMs, 0));
    layer.predict_ns = MsToNs(l.Number("predict_ms", 0, kMaxLayerMs, 0));
    layer.is_input = l.Bool("input", false);
    if (l.Has("saved_bytes")) layer.saved_bytes = static_cast<Bytes>(l.Number("saved_bytes", 0, kMaxBytes));
    if (l.Has("saved_bytes_recompute"))
      layer.saved_bytes_recompute = static_cast<Bytes>(l.Number("saved_bytes_recompute", 0, kMaxBytes));
    layer.forward_flops = static_cast<std::int64_t>(l.Number("forward_flops", 0, 9e18, 0));
    p.layers.push_back(std::move(layer));
  }
  CheckTotals(p, where);
  const int L = static_cast<int>(p.layers.size());
  if (top.Has("edges")) {
    const json& e = top.Array("edges");
    for (std::size_t i = 0; i < e.size(); ++i) {
      const std::string at = where + ".edges[" + std::to_string(i) + "]";
      if (!e[i].is_array() || e[i].size() != 2 || !e[i][0].is_number_integer() ||
          !e[i][1].is_number_integer())
        throw InputError(at, "expected [producer, consumer] layer indices");
      const long long a = e[i][0].get<long long>(), b = e[i][1].get<long long>();
      if (a < 0 || b < 0 || a >= L || b >= L) throw InputError(at, "layer index out of range");
      if (a >= b) throw InputError(at, "edges must go forward in the layer order (producer < consumer)");
      p.edges.emplace_back(static_cast<int>(a), static_cast<int>(b));
    }
  }
  if (top.Has("partition")) {
    const json& part = top.Array("partition");
    long long total = 0;
    for (const json& n : part) {
      if (!n.is_number_integer() || n.get<long long>() < 1 || n.get<long long>() > L)
        throw InputError(top.At("partition"),
                         "each stage needs between 1 and " + std::to_string(L) + " layers");
      p.partition.push_back(static_cast<int>(n.get<long long>()));
      total += n.get<long long>();
    }
    if (total != L)
      throw InputError(top.At("partition"),
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
  if (p.optimizer_copies) j["optimizer_copies"] = *p.optimizer_copies;
  // One layer per line and the edges on one line: diffable and readable.
  std::string out = j.dump(1);
  out.pop_back();  // the closing brace
  out.pop_back();  // and its newline
  out += ",\n \"layers\": [\n";
  // A computed profile gives every layer's FLOPs, the embedding's 0 included.
  const bool flops =
      std::any_of(p.layers.begin(), p.layers.end(), [](const Layer& l) { return l.forward_flops > 0; });
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
    if (l.saved_bytes) o["saved_bytes"] = *l.saved_bytes;
    if (l.saved_bytes_recompute) o["saved_bytes_recompute"] = *l.saved_bytes_recompute;
    if (flops) o["forward_flops"] = l.forward_flops;
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
  // A number after "key=" (or the sum of a [a; b; ...] list): finite, not
  // negative, at most `max`.
  const auto value = [&](const std::string& attrs, const std::string& key, const std::string& at,
                         double max) -> double {
    const std::size_t k = attrs.find(key + "=");
    if (k == std::string::npos) throw InputError(at, "missing " + key);
    const std::size_t v = k + key.size() + 1;
    const auto number = [&](const char* begin, const char** stop) {
      char* end = nullptr;
      const double x = std::strtod(begin, &end);
      if (end == begin) throw InputError(at, "bad number for " + key);
      if (!std::isfinite(x) || x < 0 || x > max)
        throw InputError(at,
                         key + " must be a number from 0 to " + std::to_string(static_cast<long long>(max)));
      *stop = end;
      return x;
    };
    const char* stop = nullptr;
    if (v < attrs.size() && attrs[v] == '[') {  // a list of sizes (multi-output layers): their sum
      const std::size_t close = attrs.find(']', v);
      if (close == std::string::npos) throw InputError(at, "unterminated list in " + key);
      const std::string list = attrs.substr(v + 1, close - v - 1);
      double sum = 0;
      std::size_t from = 0;
      while (from <= list.size()) {
        const std::size_t semi = std::min(list.find(';', from), list.size());
        const std::string item = list.substr(from, semi - from);
        if (item.find_first_not_of(' ') != std::string::npos) sum += number(item.c_str(), &stop);
        from = semi + 1;
      }
      if (sum > max) throw InputError(at, key + " is too large");
      return sum;
    }
    return number(attrs.c_str() + v, &stop);
  };
  while (std::getline(in, line)) {
    ++lineno;
    const std::string at = where + ":" + std::to_string(lineno);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const bool edge = line[0] == '\t' || line[0] == ' ';
    if (!IsUtf8(line)) throw InputError(at, "text that is not UTF-8");
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
    n.layer.forward_ns = MsToNs(value(attrs, "forward_compute_time", at, kMaxLayerMs));
    n.layer.backward_ns = MsToNs(value(attrs, "backward_compute_time", at, kMaxLayerMs));
    n.layer.activation_bytes =
        static_cast<Bytes>(std::llround(value(attrs, "activation_size", at, kMaxBytes)));
    n.layer.parameter_bytes = static_cast<Bytes>(std::llround(value(attrs, "parameter_size", at, kMaxBytes)));
    n.layer.is_input = n.layer.op.rfind("Input", 0) == 0;
    n.number = std::strtol(n.layer.name.c_str() + std::min<std::size_t>(4, n.layer.name.size()), nullptr, 10);
    if (id.count(n.layer.name)) throw InputError(at, "node " + n.layer.name + " defined twice");
    id[n.layer.name] = static_cast<int>(nodes.size());
    nodes.push_back(std::move(n));
  }
  if (nodes.empty()) throw InputError(where, "no nodes");
  {
    Profile all;
    for (const Node& n : nodes) all.layers.push_back(n.layer);
    CheckTotals(all, where);
  }
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
