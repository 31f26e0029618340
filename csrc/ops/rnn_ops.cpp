// Dynamic quantized LSTM and GRU: the recurrence of one layer in one
// direction, looped over time steps here so a step costs no Python or
// dispatcher overhead. The input-to-hidden projection of all steps is one
// dynamic linear call made by the module before this op (its output is
// `gates_x`); each step then multiplies the hidden state by the packed W_hh
// (int8 with the state quantized dynamically, like the classic kernels, or
// float16), applies the gate kernel of csrc/kernels/rnn, and for an LSTM with
// proj_size multiplies by W_hr.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <vector>

#include "checks.h"
#include "gemm/gemm.h"
#include "gemm_common.h"
#include "quantize/quantize.h"
#include "rnn/rnn.h"

namespace qtorch {
namespace ops {
namespace {

// y[rows][N] = x[rows][K] W^T + bias for one recurrent weight, given as the
// list [packed_weight, col_sums, weight_scales, weight_zero_points] (int8: x is
// quantized per call to uint8 from its min/max, as dynamic Linear does) or
// [packed_weight] (float16). x and y are contiguous rows.
class RecurrentGemm {
 public:
  RecurrentGemm(at::TensorList weight, const c10::optional<at::Tensor>& bias, int64_t out_features,
                int64_t in_features, int64_t max_rows, bool reduce_range, const char* name)
      : n_(out_features), k_(in_features), reduce_range_(reduce_range) {
    TORCH_CHECK_VALUE(weight.size() == 4 || weight.size() == 1, name,
                      " must be [packed_weight, col_sums, weight_scales, weight_zero_points] (int8) or "
                      "[packed_weight] (float16), got a list of ",
                      weight.size(), " tensors");
    fp16_ = weight.size() == 1;
    if (fp16_) {
      check_packed_fp16(weight[0], n_);
      TORCH_CHECK_VALUE(weight[0].size(1) == k_, name, " has in_features ", weight[0].size(1), ", expected ", k_);
      packed_fp16_ = weight[0];
      if (bias.has_value() && bias->defined()) {
        check_float_input(*bias, "bias");
        TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == n_, "bias must be 1-d with ", n_,
                          " elements, got shape ", bias->sizes());
        bias_fp16_ = bias->contiguous();
      }
    } else {
      args_ = check_linear_args(k_, weight[0], weight[1], k_, bias, weight[2], weight[3]);
      TORCH_CHECK_VALUE(args_.n == n_, name, " has ", args_.n, " output features, expected ", n_);
      args_.pipeline.output = GemmOutput::kFloat;
      quantized_ = at::empty({max_rows, k_}, weight[0].options().dtype(at::kByte));
    }
  }

  void operator()(const float* x, int64_t rows, float* y) const {
    if (rows == 0) return;
    if (fp16_) {
      const kernels::GemmF16Fn gemm = kernels::gemm_ukernels().gemm_f32f16;
      const uint16_t* w = reinterpret_cast<const uint16_t*>(packed_fp16_.const_data_ptr());
      const float* bias = bias_fp16_.defined() ? bias_fp16_.const_data_ptr<float>() : nullptr;
      parallel_tiles(rows, n_, k_, [&](int64_t i0, int64_t rows_here, int64_t j0, int64_t j1) {
        gemm(rows_here, j0, j1, x + i0 * k_, k_, w, k_, bias, false, y + i0 * n_, n_);
      });
      return;
    }
    const int64_t count = rows * k_;
    float lo, hi;
    kernels::rnn_ukernels().minmax(count, x, &lo, &hi);
    TORCH_CHECK_VALUE(std::isfinite(lo) && std::isfinite(hi),
                      "h0 must be finite: dynamic quantization takes its range from the hidden state, got min ", lo,
                      " and max ", hi);
    const DynamicParams q = choose_dynamic_params(lo, hi, reduce_range_);
    uint8_t* xq = quantized_.data_ptr<uint8_t>();
    kernels::quantize_ukernels().quantize_u8(count, x, xq, 1.0f / q.scale, q.zero_point);
    OutputPipeline p = args_.pipeline;
    p.a_scale = q.scale;
    p.a_zero_point = q.zero_point;
    run_gemm(xq, rows, k_, args_, p, y, n_);
  }

 private:
  int64_t n_, k_;
  bool reduce_range_;
  bool fp16_ = false;
  LinearArgs args_;
  at::Tensor quantized_;  // uint8 scratch for the quantized input rows
  at::Tensor packed_fp16_, bias_fp16_;
};

// The steps of a layer: step t covers rows [offsets[t], offsets[t] + sizes[t])
// of the time-major input, its first sizes[t] batch entries (a PackedSequence's
// batch_sizes, non-increasing; or `batch` rows per step).
struct Steps {
  std::vector<int64_t> sizes, offsets;
};

Steps check_steps(const at::Tensor& gates_x, int64_t batch, const c10::optional<at::Tensor>& batch_sizes) {
  const int64_t rows = gates_x.size(0);
  Steps s;
  if (batch_sizes.has_value() && batch_sizes->defined()) {
    const at::Tensor& b = *batch_sizes;
    TORCH_CHECK_TYPE(b.scalar_type() == at::kLong, "batch_sizes must be a torch.int64 tensor, got ",
                     dtype_name(b.scalar_type()));
    TORCH_CHECK_VALUE(b.dim() == 1, "batch_sizes must be 1-d, got shape ", b.sizes());
    const at::Tensor bc = b.contiguous();
    const int64_t* p = bc.const_data_ptr<int64_t>();
    int64_t offset = 0;
    for (int64_t t = 0; t < bc.numel(); ++t) {
      TORCH_CHECK_VALUE(p[t] > 0 && p[t] <= batch && (t == 0 || p[t] <= p[t - 1]),
                        "batch_sizes must be positive, non-increasing and at most the batch size ", batch,
                        ", got ", b);
      s.sizes.push_back(p[t]);
      s.offsets.push_back(offset);
      offset += p[t];
    }
    TORCH_CHECK_VALUE(offset == rows, "batch_sizes must sum to the rows of gates_x (", rows, "), got ", offset);
  } else {
    TORCH_CHECK_VALUE(batch > 0 ? rows % batch == 0 : rows == 0, "gates_x must hold steps x batch = k x ", batch,
                      " rows, got ", rows);
    for (int64_t t = 0; batch > 0 && t < rows / batch; ++t) {
      s.sizes.push_back(batch);
      s.offsets.push_back(t * batch);
    }
  }
  return s;
}

// gates_x: float32 [rows, gates * hidden] with unit column stride (a view of
// the projection of both directions is fine).
at::Tensor check_gates_x(const at::Tensor& gates_x, int64_t width) {
  check_float_input(gates_x, "gates_x");
  TORCH_CHECK_VALUE(gates_x.dim() == 2 && gates_x.size(1) == width, "gates_x must be 2-d [rows, ", width,
                    "], got shape ", gates_x.sizes());
  return gates_x.stride(1) == 1 && gates_x.stride(0) >= width ? gates_x : gates_x.contiguous();
}

void check_state(const at::Tensor& state, const char* name, int64_t batch, int64_t features) {
  check_float_input(state, name);
  TORCH_CHECK_VALUE(state.dim() == 2 && (batch < 0 || state.size(0) == batch) &&
                        (features < 0 || state.size(1) == features),
                    name, " must be 2-d [batch, features]", batch >= 0 ? " with batch " : "",
                    batch >= 0 ? std::to_string(batch) : std::string(), " and features ", features, ", got shape ",
                    state.sizes());
}

// Runs the gate kernel over rows [0, batch) in parallel when the step is big
// enough to pay for it (rows are independent: results do not depend on it).
template <typename RowsFn>
void parallel_rows(int64_t batch, int64_t hidden, const RowsFn& fn) {
  constexpr int64_t kMinUnitsPerTask = 1 << 14;
  at::parallel_for(0, batch, std::max<int64_t>(1, kMinUnitsPerTask / std::max<int64_t>(hidden, 1)), fn);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_layer_dynamic(
    const at::Tensor& gates_x_in, const at::Tensor& h0, const at::Tensor& c0, at::TensorList weight_hh,
    const c10::optional<at::Tensor>& bias_hh, at::TensorList weight_hr, const c10::optional<at::Tensor>& batch_sizes,
    bool reverse, bool reduce_range) {
  check_state(c0, "c0", -1, -1);
  const int64_t batch = c0.size(0), hidden = c0.size(1);
  TORCH_CHECK_VALUE(hidden > 0, "c0 must have a positive hidden size, got shape ", c0.sizes());
  const bool projected = !weight_hr.empty();
  check_state(h0, "h0", batch, projected ? -1 : hidden);
  const int64_t out = h0.size(1);
  TORCH_CHECK_VALUE(out > 0, "h0 must have a positive feature size, got shape ", h0.sizes());
  const at::Tensor gates_x = check_gates_x(gates_x_in, 4 * hidden);
  const Steps steps = check_steps(gates_x, batch, batch_sizes);
  const RecurrentGemm hh(weight_hh, bias_hh, 4 * hidden, out, batch, reduce_range, "weight_hh");
  c10::optional<RecurrentGemm> hr;
  if (projected) hr.emplace(weight_hr, c10::nullopt, out, hidden, batch, reduce_range, "weight_hr");

  at::Tensor h = h0.contiguous().clone(), c = c0.contiguous().clone();
  at::Tensor output = at::empty({gates_x.size(0), out}, h0.options());
  at::Tensor gates_h = at::empty({batch, 4 * hidden}, h0.options());
  at::Tensor cell_h = projected ? at::empty({batch, hidden}, h0.options()) : h;
  float* hp = h.data_ptr<float>();
  float* cp = c.data_ptr<float>();
  float* ghp = gates_h.data_ptr<float>();
  float* cell_hp = cell_h.data_ptr<float>();
  float* outp = output.data_ptr<float>();
  const float* gx = gates_x.const_data_ptr<float>();
  const int64_t ldx = gates_x.stride(0);
  const kernels::LstmGatesFn gates = kernels::rnn_ukernels().lstm_gates;
  const int64_t count = int64_t(steps.sizes.size());
  for (int64_t s = 0; s < count; ++s) {
    const int64_t t = reverse ? count - 1 - s : s;
    const int64_t rows = steps.sizes[t], offset = steps.offsets[t];
    hh(hp, rows, ghp);
    parallel_rows(rows, hidden, [&](int64_t b0, int64_t b1) {
      gates(b1 - b0, hidden, gx + (offset + b0) * ldx, ldx, ghp + b0 * 4 * hidden, cp + b0 * hidden,
            cell_hp + b0 * hidden, hidden);
    });
    if (projected) (*hr)(cell_hp, rows, hp);
    std::memcpy(outp + offset * out, hp, sizeof(float) * rows * out);
  }
  return {output, h, c};
}

std::tuple<at::Tensor, at::Tensor> gru_layer_dynamic(const at::Tensor& gates_x_in, const at::Tensor& h0,
                                                     at::TensorList weight_hh, const c10::optional<at::Tensor>& bias_hh,
                                                     const c10::optional<at::Tensor>& batch_sizes, bool reverse,
                                                     bool reduce_range) {
  check_state(h0, "h0", -1, -1);
  const int64_t batch = h0.size(0), hidden = h0.size(1);
  TORCH_CHECK_VALUE(hidden > 0, "h0 must have a positive hidden size, got shape ", h0.sizes());
  const at::Tensor gates_x = check_gates_x(gates_x_in, 3 * hidden);
  const Steps steps = check_steps(gates_x, batch, batch_sizes);
  const RecurrentGemm hh(weight_hh, bias_hh, 3 * hidden, hidden, batch, reduce_range, "weight_hh");

  at::Tensor h = h0.contiguous().clone();
  at::Tensor output = at::empty({gates_x.size(0), hidden}, h0.options());
  at::Tensor gates_h = at::empty({batch, 3 * hidden}, h0.options());
  float* hp = h.data_ptr<float>();
  float* ghp = gates_h.data_ptr<float>();
  float* outp = output.data_ptr<float>();
  const float* gx = gates_x.const_data_ptr<float>();
  const int64_t ldx = gates_x.stride(0);
  const kernels::GruGatesFn gates = kernels::rnn_ukernels().gru_gates;
  const int64_t count = int64_t(steps.sizes.size());
  for (int64_t s = 0; s < count; ++s) {
    const int64_t t = reverse ? count - 1 - s : s;
    const int64_t rows = steps.sizes[t], offset = steps.offsets[t];
    hh(hp, rows, ghp);
    parallel_rows(rows, hidden, [&](int64_t b0, int64_t b1) {
      gates(b1 - b0, hidden, gx + (offset + b0) * ldx, ldx, ghp + b0 * 3 * hidden, hp + b0 * hidden,
            hp + b0 * hidden, hidden);
    });
    std::memcpy(outp + offset * hidden, hp, sizeof(float) * rows * hidden);
  }
  return {output, h};
}

// Fake (meta) kernels: shapes and dtypes only.
std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_layer_dynamic_meta(
    const at::Tensor& gates_x, const at::Tensor& h0, const at::Tensor& c0, at::TensorList,
    const c10::optional<at::Tensor>&, at::TensorList, const c10::optional<at::Tensor>&, bool, bool) {
  return {at::empty({gates_x.size(0), h0.size(1)}, meta_options(h0)), at::empty(h0.sizes(), meta_options(h0)),
          at::empty(c0.sizes(), meta_options(c0))};
}

std::tuple<at::Tensor, at::Tensor> gru_layer_dynamic_meta(const at::Tensor& gates_x, const at::Tensor& h0,
                                                          at::TensorList, const c10::optional<at::Tensor>&,
                                                          const c10::optional<at::Tensor>&, bool, bool) {
  return {at::empty({gates_x.size(0), h0.size(1)}, meta_options(h0)), at::empty(h0.sizes(), meta_options(h0))};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(qtorch, m) {
  m.def("lstm_layer_dynamic(Tensor gates_x, Tensor h0, Tensor c0, Tensor[] weight_hh, Tensor? bias_hh, "
        "Tensor[] weight_hr, Tensor? batch_sizes=None, bool reverse=False, bool reduce_range=True) "
        "-> (Tensor output, Tensor h_n, Tensor c_n)");
  m.def("gru_layer_dynamic(Tensor gates_x, Tensor h0, Tensor[] weight_hh, Tensor? bias_hh, "
        "Tensor? batch_sizes=None, bool reverse=False, bool reduce_range=True) -> (Tensor output, Tensor h_n)");
}

TORCH_LIBRARY_IMPL(qtorch, CPU, m) {
  m.impl("lstm_layer_dynamic", &lstm_layer_dynamic);
  m.impl("gru_layer_dynamic", &gru_layer_dynamic);
}

TORCH_LIBRARY_IMPL(qtorch, Meta, m) {
  m.impl("lstm_layer_dynamic", &lstm_layer_dynamic_meta);
  m.impl("gru_layer_dynamic", &gru_layer_dynamic_meta);
}

}  // namespace ops
}  // namespace qtorch
