// Typed Python bindings of the qtorch:: operators: how eager Python calls them.
//
// A call through torch.ops.qtorch.<op> matches its Python arguments against the
// schema and boxes them onto a stack each time, which costs ~1 us: as much as a
// whole op on a 1x1024 tensor, and more than a native quantized op's entire call.
// These bindings take typed arguments and call the same registered operator
// through the dispatcher, so argument checks, Meta kernels, tracing and profiling
// are those of torch.ops.qtorch. qtorch/_ops.py maps each binding back to its
// operator for TorchScript and torch.compile, so scripted and exported models
// still hold qtorch:: operators.
//
// This module needs libtorch_python; the operator library itself (qtorch/_C)
// does not, so C++ programs load that one alone.
#include <torch/extension.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

namespace py = pybind11;
using at::IntArrayRef;
using at::ScalarType;
using at::Tensor;
using OptionalTensor = c10::optional<Tensor>;
using Tensors2 = std::tuple<Tensor, Tensor>;
using Tensors3 = std::tuple<Tensor, Tensor, Tensor>;

// pybind11 has no casters for these list views: they arrive as vectors, which
// convert to the views the operators take.
template <class T>
struct FromPython {
  using type = T;
};
template <>
struct FromPython<at::TensorList> {
  using type = std::vector<Tensor>;
};
template <>
struct FromPython<at::ArrayRef<double>> {
  using type = std::vector<double>;
};

py::object python_default(const c10::Argument& argument) {
  const c10::IValue& value = *argument.default_value();
  if (value.isNone()) return py::none();
  if (value.isBool()) return py::bool_(value.toBool());
  if (value.isInt()) return py::int_(value.toInt());
  if (value.isDouble()) return py::float_(value.toDouble());
  throw std::logic_error("qtorch op bindings: no Python form for the default of argument " + argument.name());
}

// The keyword form of argument I: plain, or with the schema's default value.
template <size_t I, size_t FirstDefault>
auto keyword(const c10::Argument& argument) {
  if constexpr (I < FirstDefault) {
    return py::arg(argument.name().c_str());
  } else {
    return py::arg_v(argument.name().c_str(), python_default(argument));
  }
}

template <class Signature, size_t Defaults>
struct Binding;

// Binds qtorch::<name> as <name>(args...), with the schema's argument names and
// its last `Defaults` default values. typed<>() checks Signature against the
// registered kernels, so a binding that drifts from its op fails at import.
template <class Ret, class... Args, size_t Defaults>
struct Binding<Ret(Args...), Defaults> {
  static void define(py::module_& m, const char* name) {
    const c10::OperatorHandle& handle =
        c10::Dispatcher::singleton().findSchemaOrThrow(("qtorch::" + std::string(name)).c_str(), "");
    const std::vector<c10::Argument>& arguments = handle.schema().arguments();
    size_t defaults = 0;
    for (const c10::Argument& argument : arguments) defaults += argument.default_value().has_value();
    if (arguments.size() != sizeof...(Args) || defaults != Defaults) {
      throw std::logic_error(std::string("qtorch op bindings: the binding of ") + name +
                             " does not match its schema's arguments and defaults");
    }
    define(m, name, handle.typed<Ret(Args...)>(), arguments, std::index_sequence_for<Args...>());
  }

  template <size_t... I>
  static void define(py::module_& m, const char* name, c10::TypedOperatorHandle<Ret(Args...)> op,
                     const std::vector<c10::Argument>& arguments, std::index_sequence<I...>) {
    [[maybe_unused]] constexpr size_t first_default = sizeof...(Args) - Defaults;
    // wrap_pybind_function_no_gil: torch's exception classes and warnings, and
    // the GIL released while the op runs, as torch.ops does.
    m.def(name,
          torch::wrap_pybind_function_no_gil(
              [op](typename FromPython<Args>::type... values) -> Ret { return op.call(values...); }),
          keyword<I, first_default>(arguments[I])...);
  }
};

template <class Signature, size_t Defaults = 0>
void bind(py::module_& m, const char* name) {
  Binding<Signature, Defaults>::define(m, name);
}

}  // namespace

PYBIND11_MODULE(_op_bindings, m) {
  m.doc() = "Typed bindings of the qtorch:: operators (torch.ops.qtorch) for eager calls; see qtorch/_ops.py.";
  using Q = const Tensor&;
  using OT = const OptionalTensor&;

  // library.cpp
  bind<std::string()>(m, "kernel_isa");
  bind<std::vector<std::string>()>(m, "supported_isas");
  bind<void(const std::string&)>(m, "set_kernel_isa");

  // quantize_ops.cpp
  bind<Tensor(Q, double, int64_t, ScalarType)>(m, "quantize_per_tensor");
  bind<Tensor(Q, Q, Q, int64_t, ScalarType)>(m, "quantize_per_channel");
  bind<Tensor(Q, double, int64_t)>(m, "dequantize_per_tensor");
  bind<Tensor(Q, Q, Q, int64_t)>(m, "dequantize_per_channel");
  bind<Tensor(Q, double, int64_t, double, int64_t, ScalarType)>(m, "requantize_per_tensor");
  bind<Tensors3(Q, ScalarType, bool), 1>(m, "quantize_per_row_dynamic");

  // linear_ops.cpp
  bind<Tensors2(Q)>(m, "linear_prepack");
  bind<Tensor(Q, int64_t, int64_t)>(m, "linear_unpack");
  bind<Tensor(Q, Q, Q, int64_t, OT, double, int64_t, Q, Q, double, int64_t, bool), 1>(m, "linear");
  bind<Tensor(Q, Q, Q, int64_t, OT, double, int64_t, Q, Q, double, int64_t, bool), 1>(m, "linear_relu");
  bind<Tensor(Q, Q, Q, int64_t, OT, Q, Q, bool, bool), 2>(m, "linear_dynamic");
  bind<Tensor(Q)>(m, "linear_prepack_fp16");
  bind<Tensor(Q, int64_t)>(m, "linear_unpack_fp16");
  bind<Tensor(Q, Q, int64_t, OT, bool), 1>(m, "linear_dynamic_fp16");

  // conv_ops.cpp
  using Conv = Tensor(Q, double, int64_t, Q, Q, Q, Q, OT, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, int64_t,
                      double, int64_t);
  bind<Tensors2(Q, Q, int64_t)>(m, "conv2d_prepack");
  bind<Tensor(Q, IntArrayRef, int64_t)>(m, "conv2d_unpack");
  bind<Conv>(m, "conv2d");
  bind<Conv>(m, "conv2d_relu");

  // elementwise_ops.cpp
  using Binary = Tensor(Q, double, int64_t, Q, double, int64_t, double, int64_t);
  using Unary = Tensor(Q, double, int64_t, double, int64_t);
  using UnaryWithScalar = Tensor(Q, double, int64_t, double, double, int64_t);
  for (const char* name : {"add", "add_relu", "mul", "mul_relu"}) bind<Binary>(m, name);
  for (const char* name : {"relu", "relu6", "hardswish", "hardsigmoid", "sigmoid"}) bind<Unary>(m, name);
  for (const char* name : {"add_scalar", "mul_scalar", "leaky_relu"}) bind<UnaryWithScalar>(m, name);
  bind<Tensor(Q, double, int64_t, double, double, double, int64_t)>(m, "hardtanh");
  bind<Tensor(at::TensorList, at::ArrayRef<double>, IntArrayRef, int64_t, double, int64_t)>(m, "cat");

  // pool_ops.cpp
  bind<Tensor(Q, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, bool)>(m, "max_pool2d");
  bind<Tensor(Q, IntArrayRef, IntArrayRef, IntArrayRef, bool, bool, std::optional<int64_t>, double, int64_t, double,
              int64_t)>(m, "avg_pool2d");
  bind<Tensor(Q, IntArrayRef, double, int64_t, double, int64_t)>(m, "adaptive_avg_pool2d");
  bind<Tensor(Q, IntArrayRef, std::optional<double>, std::optional<double>), 2>(m, "upsample_nearest2d");
  bind<Tensor(Q, IntArrayRef, bool, std::optional<double>, std::optional<double>), 2>(m, "upsample_bilinear2d");

  // rnn_ops.cpp
  bind<Tensors3(Q, Q, Q, at::TensorList, OT, at::TensorList, OT, bool, bool), 3>(m, "lstm_layer_dynamic");
  bind<Tensors2(Q, Q, at::TensorList, OT, OT, bool, bool), 3>(m, "gru_layer_dynamic");
}
