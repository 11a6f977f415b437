// A plugin for the fgc command line: registers the samples' custom layers, so that
// `fgc --plugin libfgc_sample_layers.so summary|compile ...` reads models that use them.
//
// A plugin defines `extern "C" int fgc_register_plugin(void)`, returning 0 on success. It is
// built as a module that links nothing of fgc (the API is resolved from the fgc executable).
#include "../custom_dense/CustomDense.h"
#include "../custom_opaque/SwishDense.h"
#include "../custom_rnn/CustomRNN.h"
#include "../custom_rnn/ScanRNN.h"

extern "C" int fgc_register_plugin(void) {
  fgc::keras::register_custom_layer<CustomDense>("CustomDense");
  fgc::keras::register_custom_layer<CustomRNN>("CustomRNN");
  fgc::keras::register_custom_layer<ScanRNN>("ScanRNN");
  // ... and the opaque op Swish, whose kernels the plugin defines: the JIT finds them by name.
  registerSwishDense(/*withAddresses=*/false);
  return 0;
}
