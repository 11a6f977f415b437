// Config normalization and typed access (see Attrs.h).
#include "compiler/ir/Attrs.h"

#include <cassert>
#include <cmath>

namespace fgc {

AttrValue makeInt(int64_t v) { AttrValue a; a.set_i(v); return a; }
AttrValue makeFloat(double v) { AttrValue a; a.set_f(v); return a; }
AttrValue makeString(std::string v) { AttrValue a; a.set_s(std::move(v)); return a; }
AttrValue makeBool(bool v) { AttrValue a; a.set_b(v); return a; }
AttrValue makeNone() { AttrValue a; a.set_none(true); return a; }

AttrValue makeInts(const std::vector<int64_t> &v) {
  AttrValue a;
  auto *l = a.mutable_ints();
  for (int64_t x : v)
    l->add_values(x);
  return a;
}

AttrValue makeFloats(const std::vector<double> &v) {
  AttrValue a;
  auto *l = a.mutable_floats();
  for (double x : v)
    l->add_values(x);
  return a;
}

AttrValue makeStrings(const std::vector<std::string> &v) {
  AttrValue a;
  auto *l = a.mutable_strings();
  for (const auto &x : v)
    l->add_values(x);
  return a;
}

AttrValue makeObject(const std::string &className, const AttrMap &attrs) {
  AttrValue a;
  auto *o = a.mutable_obj();
  o->set_class_name(className);
  for (const auto &[k, v] : attrs)
    (*o->mutable_attrs())[k] = v;
  return a;
}

AttrSpec intAttr(std::string name, int64_t def) {
  return {std::move(name), AttrKind::Int, makeInt(def)};
}
AttrSpec requiredInt(std::string name) {
  AttrSpec s{std::move(name), AttrKind::Int, {}};
  s.required = true;
  return s;
}
AttrSpec floatAttr(std::string name, double def) {
  return {std::move(name), AttrKind::Float, makeFloat(def)};
}
AttrSpec boolAttr(std::string name, bool def) {
  return {std::move(name), AttrKind::Bool, makeBool(def)};
}
AttrSpec stringAttr(std::string name, std::string def, std::vector<std::string> choices) {
  AttrSpec s{std::move(name), AttrKind::String, makeString(std::move(def))};
  s.choices = std::move(choices);
  return s;
}
AttrSpec intsAttr(std::string name, std::vector<int64_t> def, int length) {
  AttrSpec s{std::move(name), AttrKind::Ints, makeInts(def)};
  s.length = length;
  return s;
}
AttrSpec requiredInts(std::string name, int length) {
  AttrSpec s{std::move(name), AttrKind::Ints, {}};
  s.required = true;
  s.length = length;
  return s;
}
AttrSpec nullableInts(std::string name) {
  AttrSpec s{std::move(name), AttrKind::Ints, makeNone()};
  s.nullable = true;
  return s;
}
AttrSpec nullableInt(std::string name) {
  AttrSpec s{std::move(name), AttrKind::Int, makeNone()};
  s.nullable = true;
  return s;
}
AttrSpec objectAttr(std::string name, std::string className) {
  AttrSpec s{std::move(name), AttrKind::Object,
             className.empty() ? makeNone() : makeObject(className)};
  s.nullable = className.empty();
  return s;
}

static const char *kindName(AttrKind k) {
  switch (k) {
  case AttrKind::Int: return "an integer";
  case AttrKind::Float: return "a number";
  case AttrKind::String: return "a string";
  case AttrKind::Bool: return "a boolean";
  case AttrKind::Ints: return "a tuple of integers";
  case AttrKind::Floats: return "a tuple of numbers";
  case AttrKind::Strings: return "a list of strings";
  case AttrKind::Object: return "an object (class_name + config)";
  }
  return "?";
}

// Keras accepts initializer names as strings ("glorot_uniform"); fgc stores the object form.
std::string initializerClassFromName(const std::string &name) {
  static const std::map<std::string, std::string> aliases = {
      {"uniform", "RandomUniform"},         {"normal", "RandomNormal"},
      {"random_uniform", "RandomUniform"},  {"random_normal", "RandomNormal"},
      {"truncated_normal", "TruncatedNormal"}, {"zeros", "Zeros"},
      {"zero", "Zeros"},                    {"ones", "Ones"},
      {"one", "Ones"}};
  if (auto it = aliases.find(name); it != aliases.end())
    return it->second;
  std::string out;
  bool upper = true;
  for (char c : name) {
    if (c == '_') {
      upper = true;
      continue;
    }
    out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    upper = false;
  }
  return out;
}

// Converts `v` to the spec's kind where Keras would accept it; nullopt when it cannot.
static std::optional<AttrValue> coerce(const AttrSpec &spec, const AttrValue &v) {
  if (v.value_case() == AttrValue::kNone)
    return spec.nullable ? std::optional<AttrValue>(v) : std::nullopt;
  switch (spec.kind) {
  case AttrKind::Int:
    if (v.value_case() == AttrValue::kI)
      return v;
    // Integral and within int64 (2^63 itself is not): anything else has no int64 value.
    if (v.value_case() == AttrValue::kF && std::floor(v.f()) == v.f() &&
        std::fabs(v.f()) < 0x1p63)
      return makeInt(static_cast<int64_t>(v.f()));
    return std::nullopt;
  case AttrKind::Float:
    if (v.value_case() == AttrValue::kF)
      return v;
    if (v.value_case() == AttrValue::kI)
      return makeFloat(static_cast<double>(v.i()));
    return std::nullopt;
  case AttrKind::String:
    if (v.value_case() != AttrValue::kS)
      return std::nullopt;
    if (!spec.choices.empty()) {
      bool ok = false;
      for (const auto &c : spec.choices)
        ok |= c == v.s();
      if (!ok)
        return std::nullopt;
    }
    return v;
  case AttrKind::Bool:
    return v.value_case() == AttrValue::kB ? std::optional<AttrValue>(v) : std::nullopt;
  case AttrKind::Ints: {
    std::vector<int64_t> vals;
    if (v.value_case() == AttrValue::kI)
      vals.assign(spec.length > 0 ? spec.length : 1, v.i());
    else if (v.value_case() == AttrValue::kInts)
      vals.assign(v.ints().values().begin(), v.ints().values().end());
    else
      return std::nullopt;
    if (spec.length > 0 && static_cast<int>(vals.size()) != spec.length)
      return std::nullopt;
    return makeInts(vals);
  }
  case AttrKind::Floats:
    if (v.value_case() == AttrValue::kFloats)
      return v;
    if (v.value_case() == AttrValue::kF)
      return makeFloats({v.f()});
    return std::nullopt;
  case AttrKind::Strings:
    if (v.value_case() == AttrValue::kStrings)
      return v;
    if (v.value_case() == AttrValue::kS)
      return makeStrings({v.s()});
    return std::nullopt;
  case AttrKind::Object:
    if (v.value_case() == AttrValue::kObj) {
      if (v.obj().class_name().empty())
        return std::nullopt;
      return v;
    }
    if (v.value_case() == AttrValue::kS)
      return makeObject(initializerClassFromName(v.s()));
    return std::nullopt;
  }
  return std::nullopt;
}

Expected<AttrMap> normalizeConfig(const std::vector<AttrSpec> &specs, const AttrMap &given,
                                  const std::string &what, bool keepUnknown) {
  AttrMap out;
  for (const auto &[key, value] : given) {
    const AttrSpec *spec = nullptr;
    for (const auto &s : specs)
      if (s.name == key)
        spec = &s;
    if (!spec && keepUnknown) {
      out[key] = value;
      continue;
    }
    if (!spec) {
      std::string known;
      for (const auto &s : specs)
        known += (known.empty() ? "" : ", ") + s.name;
      return Error::format("{}: unknown config key '{}' (known keys: {})", what, key, known);
    }
    auto converted = coerce(*spec, value);
    if (!converted) {
      std::string expected = kindName(spec->kind);
      if (spec->length > 0)
        expected += fmt::format(" of length {}", spec->length);
      if (!spec->choices.empty()) {
        expected += " (one of";
        for (const auto &c : spec->choices)
          expected += " '" + c + "'";
        expected += ")";
      }
      return Error::format("{}: config key '{}' must be {}, got {}", what, key, expected,
                           attrToString(value));
    }
    out[key] = *converted;
  }
  for (const auto &s : specs) {
    if (out.count(s.name))
      continue;
    if (s.required)
      return Error::format("{}: missing required config key '{}'", what, s.name);
    out[s.name] = s.defaultValue;
  }
  return out;
}

AttrMap nonDefaultConfig(const std::vector<AttrSpec> &specs, const AttrMap &config) {
  AttrMap out;
  for (const auto &[key, value] : config) {
    bool isDefault = false;
    for (const auto &s : specs)
      if (s.name == key && !s.required && attrEquals(s.defaultValue, value))
        isDefault = true;
    if (!isDefault)
      out[key] = value;
  }
  return out;
}

bool attrEquals(const AttrValue &a, const AttrValue &b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

static std::string formatDouble(double d) {
  std::string s = fmt::format("{}", d);
  if (s.find_first_of(".eEn") == std::string::npos)
    s += ".0";
  return s;
}

std::string attrToString(const AttrValue &v) {
  switch (v.value_case()) {
  case AttrValue::kI: return std::to_string(v.i());
  case AttrValue::kF: return formatDouble(v.f());
  case AttrValue::kS: return "'" + v.s() + "'";
  case AttrValue::kB: return v.b() ? "True" : "False";
  case AttrValue::kNone: return "None";
  case AttrValue::kInts: {
    std::vector<int64_t> vals(v.ints().values().begin(), v.ints().values().end());
    std::string s = "(";
    for (size_t i = 0; i < vals.size(); ++i)
      s += (i ? ", " : "") + (vals[i] < 0 ? std::string("None") : std::to_string(vals[i]));
    return s + (vals.size() == 1 ? ",)" : ")");
  }
  case AttrValue::kFloats: {
    std::string s = "(";
    for (int i = 0; i < v.floats().values_size(); ++i)
      s += (i ? ", " : "") + formatDouble(v.floats().values(i));
    return s + (v.floats().values_size() == 1 ? ",)" : ")");
  }
  case AttrValue::kStrings: {
    std::string s = "[";
    for (int i = 0; i < v.strings().values_size(); ++i)
      s += (i ? ", '" : "'") + v.strings().values(i) + "'";
    return s + "]";
  }
  case AttrValue::kObj: {
    std::string s = v.obj().class_name() + "(";
    std::map<std::string, AttrValue> sorted(v.obj().attrs().begin(), v.obj().attrs().end());
    bool first = true;
    for (const auto &[k, x] : sorted) {
      s += (first ? "" : ", ") + k + "=" + attrToString(x);
      first = false;
    }
    return s + ")";
  }
  default: return "<unset>";
  }
}

const AttrValue &Attrs::get(const std::string &key) const {
  auto it = map_->find(key);
  assert(it != map_->end() && "attribute not declared by the op");
  return it->second;
}
int64_t Attrs::i(const std::string &key) const { return get(key).i(); }
double Attrs::f(const std::string &key) const { return get(key).f(); }
const std::string &Attrs::s(const std::string &key) const { return get(key).s(); }
bool Attrs::b(const std::string &key) const { return get(key).b(); }
bool Attrs::isNone(const std::string &key) const {
  return get(key).value_case() == AttrValue::kNone;
}
std::vector<int64_t> Attrs::ints(const std::string &key) const {
  const auto &v = get(key);
  return {v.ints().values().begin(), v.ints().values().end()};
}
std::vector<double> Attrs::floats(const std::string &key) const {
  const auto &v = get(key);
  return {v.floats().values().begin(), v.floats().values().end()};
}

} // namespace fgc
