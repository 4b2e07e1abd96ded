#include "model/shifted_conv2d.h"

namespace sparser::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Geometry {
  int64_t k, H, W;
  int64_t pad() const { return k / 2; }
  int64_t padded_width() const { return W + k - 1; }
  int64_t rows() const { return H * padded_width(); }  // output pixels, k-1 dropped per row
  int64_t padded_rows() const { return (H + k - 1) * padded_width() + k - 1; }  // + the last tap's overrun
  int64_t offset(int64_t dy, int64_t dx) const { return dy * padded_width() + dx; }
};

// The image's pixels within a B×padded_rows×C buffer: a B×H×W×C view.
torch::Tensor interior(const torch::Tensor& padded, const Geometry& g) {
  const auto B = padded.size(0), C = padded.size(2);
  return padded.narrow(1, 0, (g.H + g.k - 1) * g.padded_width())
      .view({B, g.H + g.k - 1, g.padded_width(), C})
      .narrow(1, g.pad(), g.H)
      .narrow(2, g.pad(), g.W);
}

// The output pixels among the g.rows() rows (B×rows×N): a B×H×W×N view.
torch::Tensor output_pixels(const torch::Tensor& rows, const Geometry& g) {
  return rows.view({rows.size(0), g.H, g.padded_width(), rows.size(2)}).narrow(2, 0, g.W);
}

// B×H×W×C (any strides) into B×padded_rows×C, zero around; k = 1 needs no padding.
torch::Tensor padded_rows(const torch::Tensor& pixels, const Geometry& g) {
  const auto B = pixels.size(0), C = pixels.size(3);
  if (g.k == 1) return pixels.reshape({B, g.H * g.W, C});
  auto padded = torch::zeros({B, g.padded_rows(), C}, pixels.options());
  interior(padded, g).copy_(pixels);
  return padded;
}

struct ShiftedConv2dFunction : torch::autograd::Function<ShiftedConv2dFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight) {
    const Geometry g{weight.size(2), input.size(2), input.size(3)};
    const auto B = input.size(0), O = weight.size(0);
    const auto x = padded_rows(input.permute({0, 2, 3, 1}), g);
    // taps[dy][dx] = C×O, the transposed kernel slice of tap (dy, dx).
    const auto taps = weight.to(input.scalar_type()).permute({2, 3, 1, 0}).contiguous();
    auto out = torch::empty({B, g.rows(), O}, input.options());
    for (int64_t b = 0; b < B; ++b) {
      auto out_b = out[b];
      for (int64_t dy = 0; dy < g.k; ++dy)
        for (int64_t dx = 0; dx < g.k; ++dx) {
          const auto tap_input = x[b].narrow(0, g.offset(dy, dx), g.rows());
          if (dy == 0 && dx == 0) at::mm_out(out_b, tap_input, taps[0][0]);
          else out_b.addmm_(tap_input, taps[dy][dx]);
        }
    }
    ctx->save_for_backward({x, taps});
    ctx->saved_data["geometry"] = std::vector<int64_t>{g.k, g.H, g.W};
    ctx->saved_data["weight_type"] = static_cast<int64_t>(weight.scalar_type());
    return output_pixels(out, g).contiguous().permute({0, 3, 1, 2});
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &taps = saved[1];
    const auto weight_type = static_cast<torch::ScalarType>(ctx->saved_data["weight_type"].toInt());
    const auto dims = ctx->saved_data["geometry"].toIntVector();
    const Geometry g{dims[0], dims[1], dims[2]};
    const auto B = x.size(0), C = x.size(2), O = taps.size(3);
    // The output gradient on the padded-width grid, zero in the dropped columns (their
    // rows then add nothing to the weight or input gradients).
    const auto grad_pixels = grads[0].permute({0, 2, 3, 1}).to(x.scalar_type());
    torch::Tensor grad_rows;
    if (g.k == 1) {
      grad_rows = grad_pixels.reshape({B, g.rows(), O});
    } else {
      grad_rows = torch::zeros({B, g.rows(), O}, x.options());
      output_pixels(grad_rows, g).copy_(grad_pixels);
    }
    torch::Tensor grad_input, grad_weight;
    if (ctx->needs_input_grad(1)) {
      auto grad_taps = torch::zeros_like(taps);
      for (int64_t dy = 0; dy < g.k; ++dy)
        for (int64_t dx = 0; dx < g.k; ++dx)
          for (int64_t b = 0; b < B; ++b)
            grad_taps[dy][dx].addmm_(x[b].narrow(0, g.offset(dy, dx), g.rows()).t(), grad_rows[b]);
      grad_weight = grad_taps.permute({3, 2, 0, 1}).contiguous().to(weight_type);
    }
    if (ctx->needs_input_grad(0)) {
      auto grad_x = torch::zeros({B, g.padded_rows(), C}, x.options());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t dy = 0; dy < g.k; ++dy)
          for (int64_t dx = 0; dx < g.k; ++dx)
            grad_x[b].narrow(0, g.offset(dy, dx), g.rows()).addmm_(grad_rows[b], taps[dy][dx].t());
      grad_input = interior(grad_x, g).contiguous().permute({0, 3, 1, 2});
    }
    return {grad_input, grad_weight};
  }
};

}  // namespace

bool shifted_conv2d_applies(const torch::Tensor& input, const torch::Tensor& weight, int64_t stride, int64_t padding) {
  const auto k = weight.size(2);
  return input.is_cpu() && input.dim() == 4 && stride == 1 && weight.size(3) == k && k % 2 == 1 &&
         padding == k / 2 && input.is_floating_point();
}

torch::Tensor shifted_conv2d(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias) {
  TORCH_CHECK(shifted_conv2d_applies(input, weight, 1, weight.size(2) / 2), "shifted_conv2d: not a stride-1 'same' ",
              "convolution with an odd square kernel on the CPU");
  // The products run in the input's dtype, as LibTorch's autocast runs convolutions.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto out = ShiftedConv2dFunction::apply(input, weight);
  return bias.defined() ? out + bias.to(input.scalar_type()).view({1, -1, 1, 1}) : out;
}

}  // namespace sparser::model
