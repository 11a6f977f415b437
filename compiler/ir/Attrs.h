// Layer configs: typed attribute maps with Keras's argument names.
//
// Each op declares the attributes it accepts (`AttrSpec`: name, kind, Keras default). Loading a
// layer normalizes its config against those specs once: unknown keys and wrong types are errors,
// scalars broadcast to tuples where Keras accepts both (`kernel_size=3` is `(3, 3)`), defaults
// fill what is absent. After that, `Attrs` reads values without further checks.
#pragma once

#include "compiler/ir/Error.h"
#include "fgc.pb.h"

#include <map>
#include <string>
#include <vector>

namespace fgc {

using AttrValue = schema::AttrValue;
// Ordered, so everything printed from a config is deterministic.
using AttrMap = std::map<std::string, AttrValue>;

enum class AttrKind { Int, Float, String, Bool, Ints, Floats, Strings, Object };

struct AttrSpec {
  std::string name;
  AttrKind kind;
  AttrValue defaultValue; // unset (no oneof case) when `required`
  bool required = false;
  bool nullable = false;               // Keras's None accepted
  int length = 0;                      // Ints: exact tuple length (0: any); a scalar broadcasts
  std::vector<std::string> choices = {}; // String: allowed values (empty: any)
};

// Spec builders, so op definitions read as a table.
AttrSpec intAttr(std::string name, int64_t def);
AttrSpec requiredInt(std::string name);
AttrSpec floatAttr(std::string name, double def);
AttrSpec boolAttr(std::string name, bool def);
AttrSpec stringAttr(std::string name, std::string def, std::vector<std::string> choices = {});
AttrSpec intsAttr(std::string name, std::vector<int64_t> def, int length = 0);
AttrSpec requiredInts(std::string name, int length = 0);
AttrSpec nullableInts(std::string name); // default None
AttrSpec nullableInt(std::string name);  // default None
// An initializer / regularizer / constraint object; `className` empty means default None.
AttrSpec objectAttr(std::string name, std::string className);

AttrValue makeInt(int64_t v);
AttrValue makeFloat(double v);
AttrValue makeString(std::string v);
AttrValue makeBool(bool v);
AttrValue makeInts(const std::vector<int64_t> &v);
AttrValue makeFloats(const std::vector<double> &v);
AttrValue makeStrings(const std::vector<std::string> &v);
AttrValue makeNone();
AttrValue makeObject(const std::string &className, const AttrMap &attrs = {});

// Checks `given` against `specs` and returns the complete config. `what` names the layer in
// errors, e.g. "layer 'dense_1' (Dense)". With `keepUnknown` (custom layers, whose config is
// what their get_config() returns) keys without a spec are kept as they are.
Expected<AttrMap> normalizeConfig(const std::vector<AttrSpec> &specs, const AttrMap &given,
                                  const std::string &what, bool keepUnknown = false);

// The attributes that differ from their defaults (what a saved file needs to hold).
AttrMap nonDefaultConfig(const std::vector<AttrSpec> &specs, const AttrMap &config);

bool attrEquals(const AttrValue &a, const AttrValue &b);
// Keras's string form of an initializer to its class: "glorot_uniform" -> "GlorotUniform",
// "uniform" -> "RandomUniform", "zeros" -> "Zeros".
std::string initializerClassFromName(const std::string &name);
// Python-like rendering for messages and `get_config()` dumps: 3, 0.5, 'relu', (3, 3), None.
std::string attrToString(const AttrValue &v);

// Read access to a normalized config. Reading a key the op did not declare is a programming error.
class Attrs {
public:
  explicit Attrs(const AttrMap &map) : map_(&map) {}
  int64_t i(const std::string &key) const;
  double f(const std::string &key) const;
  const std::string &s(const std::string &key) const;
  bool b(const std::string &key) const;
  std::vector<int64_t> ints(const std::string &key) const;
  std::vector<double> floats(const std::string &key) const;
  bool isNone(const std::string &key) const;
  const AttrValue &get(const std::string &key) const;
  const AttrMap &map() const { return *map_; }

private:
  const AttrMap *map_;
};

} // namespace fgc
