// The qtorch operator library and its ISA controls. Op families add their
// schemas with TORCH_LIBRARY_FRAGMENT in their own files.
#include <torch/library.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/isa.h"

namespace qtorch {
namespace ops {
namespace {

std::string kernel_isa() {
  try {
    return isa_name(active_isa());
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
}

std::vector<std::string> supported_isa_names() {
  std::vector<std::string> names;
  for (Isa isa : supported_isas()) names.emplace_back(isa_name(isa));
  return names;
}

void set_kernel_isa(const std::string& name) {
  try {
    set_active_isa(parse_isa(name));
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  }
}

}  // namespace

TORCH_LIBRARY(qtorch, m) {
  m.def("kernel_isa() -> str", &kernel_isa);
  m.def("supported_isas() -> str[]", &supported_isa_names);
  m.def("set_kernel_isa(str isa) -> ()", &set_kernel_isa);
}

}  // namespace ops
}  // namespace qtorch
