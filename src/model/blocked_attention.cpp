#include "model/blocked_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace sparser::model {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Calls body(head, first query, rows, buffer, buffer) for every block of query rows of
// every head, with two T×keys scratch buffers narrowed to the block. Many short heads
// (windows: 300 × 196 queries) run in parallel, a thread each, in blocks of ~1 MB (a
// core's L2). Few long heads (global attention: 12 × 4096) run one at a time in blocks of
// ~4 MB, every product and softmax using all threads: the matrix products then pack the
// head's keys and values once per 256 query rows instead of once per 64 (~10 % faster
// on these machines, interleaved measurements).
template <typename Body>
void for_each_block(int64_t heads, int64_t queries, int64_t keys, const torch::TensorOptions& options,
                    const Body& body) {
  const auto walk = [&](int64_t begin, int64_t end, int64_t block_bytes) {
    const auto row_bytes = static_cast<int64_t>(options.dtype().itemsize()) * std::max<int64_t>(keys, 1);
    const auto T = std::clamp<int64_t>(block_bytes / row_bytes, 16, 1024);
    auto first = torch::empty({T, keys}, options), second = torch::empty({T, keys}, options);
    for (int64_t b = begin; b < end; ++b)
      for (int64_t n0 = 0; n0 < queries; n0 += T) {
        const auto rows = std::min(T, queries - n0);
        body(b, n0, rows, first.narrow(0, 0, rows), second.narrow(0, 0, rows));
      }
  };
  if (queries >= 1024) walk(0, heads, 1 << 22);
  else at::parallel_for(0, heads, 1, [&](int64_t begin, int64_t end) { walk(begin, end, 1 << 20); });
}

struct Shapes {
  int64_t qh, qw, kh, kw;
};

// The bias terms of every query: rel_h[b, n, i] = q[b, n]·rel_h_table[row(n), i], and
// likewise for columns; the bias of (n, key (i, j)) is rel_h[b, n, i] + rel_w[b, n, j].
std::pair<torch::Tensor, torch::Tensor> bias_terms(const torch::Tensor& q, const torch::Tensor& rel_h,
                                                   const torch::Tensor& rel_w, const Shapes& s) {
  const auto BH = q.size(0), d = q.size(2);
  const auto grid = q.view({BH, s.qh, s.qw, d});
  return {torch::einsum("bhwc,hkc->bhwk", {grid, rel_h}).reshape({BH, s.qh * s.qw, s.kh}),
          torch::einsum("bhwc,wkc->bhwk", {grid, rel_w}).reshape({BH, s.qh * s.qw, s.kw})};
}

// scores = q_block·kᵀ + bias, T×(kh·kw), into `scores` (scaled q given).
void block_scores(torch::Tensor& scores, const torch::Tensor& q_block, const torch::Tensor& k,
                  const torch::Tensor& bias_h, const torch::Tensor& bias_w, const Shapes& s) {
  at::mm_out(scores, q_block, k.t());
  const auto T = q_block.size(0);
  scores.view({T, s.kh, s.kw}).add_(bias_h.unsqueeze(2)).add_(bias_w.unsqueeze(1));
}

struct BlockedAttentionFunction : torch::autograd::Function<BlockedAttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q_in, const torch::Tensor& k_in,
                               const torch::Tensor& v_in, const torch::Tensor& rel_h, const torch::Tensor& rel_w,
                               double scale, std::vector<int64_t> sizes) {
    const Shapes s{sizes[0], sizes[1], sizes[2], sizes[3]};
    const auto q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const auto BH = q.size(0), Nq = q.size(1), Nk = k.size(1);
    const auto scaled_q = q * scale;
    const auto [bias_h, bias_w] = bias_terms(q, rel_h, rel_w, s);
    auto out = torch::empty({BH, Nq, v.size(2)}, v.options());
    for_each_block(BH, Nq, Nk, q.options(), [&](int64_t b, int64_t n0, int64_t rows, torch::Tensor scores,
                                                torch::Tensor p) {
      block_scores(scores, scaled_q[b].narrow(0, n0, rows), k[b], bias_h[b].narrow(0, n0, rows),
                   bias_w[b].narrow(0, n0, rows), s);
      // LibTorch's row softmax: vectorised, three passes (max, exp and sum, scale).
      at::_softmax_out(p, scores, 1, /*half_to_float=*/false);
      auto out_block = out[b].narrow(0, n0, rows);
      at::mm_out(out_block, p, v[b]);
    });
    ctx->save_for_backward({q, k, v, rel_h, rel_w, out});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["sizes"] = sizes;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &rel_h = saved[3], &rel_w = saved[4];
    const auto& out = saved[5];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const Shapes s{sizes[0], sizes[1], sizes[2], sizes[3]};
    const auto grad_out = grads[0].contiguous();
    const auto BH = q.size(0), Nq = q.size(1), Nk = k.size(1);
    const auto scaled_q = q * scale;
    const auto [bias_h, bias_w] = bias_terms(q, rel_h, rel_w, s);
    // Row sums of grad_out ⊙ out: the softmax backward's correction term.
    const auto correction = (grad_out * out).sum(-1);
    auto grad_scaled_q = torch::empty_like(q), grad_k = torch::zeros_like(k), grad_v = torch::zeros_like(v);
    auto grad_bias_h = torch::empty_like(bias_h), grad_bias_w = torch::empty_like(bias_w);
    for_each_block(BH, Nq, Nk, q.options(), [&](int64_t b, int64_t n0, int64_t rows, torch::Tensor p,
                                                torch::Tensor ds) {
      const auto q_block = scaled_q[b].narrow(0, n0, rows);
      const auto grad_out_block = grad_out[b].narrow(0, n0, rows);
      block_scores(ds, q_block, k[b], bias_h[b].narrow(0, n0, rows), bias_w[b].narrow(0, n0, rows), s);
      at::_softmax_out(p, ds, 1, /*half_to_float=*/false);
      grad_v[b].addmm_(p.t(), grad_out_block);
      at::mm_out(ds, grad_out_block, v[b].t());
      ds.sub_(correction[b].narrow(0, n0, rows).unsqueeze(1)).mul_(p);
      auto grad_q_block = grad_scaled_q[b].narrow(0, n0, rows);
      at::mm_out(grad_q_block, ds, k[b]);
      grad_k[b].addmm_(ds.t(), q_block);
      const auto ds_grid = ds.view({rows, s.kh, s.kw});
      grad_bias_h[b].narrow(0, n0, rows).copy_(ds_grid.sum(2));
      grad_bias_w[b].narrow(0, n0, rows).copy_(ds_grid.sum(1));
    });
    // q reaches the scores directly (scaled) and through the bias terms.
    const auto d = q.size(2);
    auto grad_q = grad_scaled_q * scale;
    grad_q.view({BH, s.qh, s.qw, d})
        .add_(torch::einsum("bhwk,hkc->bhwc", {grad_bias_h.view({BH, s.qh, s.qw, s.kh}), rel_h}))
        .add_(torch::einsum("bhwk,wkc->bhwc", {grad_bias_w.view({BH, s.qh, s.qw, s.kw}), rel_w}));
    return {grad_q, grad_k, grad_v, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor blocked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& rel_h, const torch::Tensor& rel_w, double scale,
                                std::pair<int64_t, int64_t> q_hw, std::pair<int64_t, int64_t> k_hw) {
  TORCH_CHECK(!rel_h.requires_grad() && !rel_w.requires_grad(),
              "blocked_attention: the relative-position tables get no gradient here");
  // In the tables' precision (float32): under bfloat16 autocast q, k, v arrive in bf16,
  // and the softmax statistics want float32 anyway (autocast runs softmax in float32).
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto type = rel_h.scalar_type();
  const auto out = BlockedAttentionFunction::apply(
      q.to(type), k.to(type), v.to(type), rel_h.detach(), rel_w.detach(), scale,
      std::vector<int64_t>{q_hw.first, q_hw.second, k_hw.first, k_hw.second});
  return out.to(q.scalar_type());
}

}  // namespace sparser::model
