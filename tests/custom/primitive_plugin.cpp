// A plugin for `fgc --plugin`: registers PrimitiveCase (PrimitiveLayers.h), so that fgc compiles
// the model files of tests/custom/models into the generated C++ PrimitiveOpsTest.cpp runs.
#include "PrimitiveLayers.h"

extern "C" int fgc_register_plugin(void) {
  fgc::keras::register_custom_layer<PrimitiveCase>("PrimitiveCase");
  return 0;
}
