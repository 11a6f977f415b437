// The cases of tests/fixtures/runtime_ops/ (tests/reference/runtime_ops.py),
// loaded through the runtime tests' Fixture class.
#pragma once

#include "grad_fixture.h"

namespace fgc::test {

inline Fixture opsCase(const std::string &name) { return Fixture("../runtime_ops/" + name); }

} // namespace fgc::test
