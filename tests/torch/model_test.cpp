#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/state_dict.h"
#include "model/fixture_parity.h"
#include "model/hooked_layers.h"
#include "model/image_encoder.h"
#include "model/shifted_conv2d.h"
#include "test_models.h"
#include "train/flop_count.h"
#include "train/provenance.h"

using namespace sparser;

namespace {

// key → shape string, from shared/fixtures/sam_vit_*_state_dict.txt.
std::vector<std::pair<std::string, std::string>> official_key_list(const std::string& preset) {
  std::ifstream in(std::string(SPARSER_FIXTURES_DIR) + "/sam_" + preset + "_state_dict.txt");
  EXPECT_TRUE(in) << "missing key list for " << preset;
  std::vector<std::pair<std::string, std::string>> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find(' ');
    keys.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return keys;
}

}  // namespace

class PresetKeys : public ::testing::TestWithParam<std::string> {};

TEST_P(PresetKeys, BuildsExactlyTheOfficialKeysAndShapesInOrder) {
  const auto preset = GetParam();
  model::Sam sam(model::sam_preset(preset));
  const auto ours = checkpoint::module_state(*sam);
  const auto official = official_key_list(preset);
  ASSERT_EQ(ours.size(), official.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].first, official[i].first) << "entry " << i;
    EXPECT_EQ(checkpoint::shape_string(ours[i].second), official[i].second) << ours[i].first;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, PresetKeys, ::testing::Values("vit_b", "vit_l", "vit_h"));

TEST(ModelParity, TinyFixtureWithinTolerance) {
  const auto results = model::run_fixture_parity(fixtures::fixture_dir());
  // input, encoder_trunk, image_embeddings, dense_pe, and 5 outputs for each of the 4 cases.
  EXPECT_EQ(results.size(), 4u + 5 * 4);
  for (const auto& r : results) EXPECT_LE(r.max_abs_error, 1e-4) << r.output;
}

// A fixture's prompt set that cannot be run (labels without coordinates) is named, with
// LibTorch's reason but not its backtrace.
TEST(ModelParity, AMalformedCaseIsNamed) {
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / ("sparser_parity_case_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* file : {"config.toml", "weights.pth", "cases.h5"})
    fs::copy_file(fs::path(fixtures::fixture_dir()) / file, dir / file);
  {
    io::Hdf5File cases((dir / "cases.h5").string(), io::Hdf5File::Mode::ReadWrite);
    cases.write<float>("cases/zz_coordinates_only/point_coords", {10.f, 20.f}, {1, 1, 2});
    cases.write_int_attribute("cases/zz_coordinates_only", "multimask_output", 0);
  }
  try {
    model::run_fixture_parity(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind((dir / "cases.h5").string() + ": cases/zz_coordinates_only: ", 0), 0u) << message;
    EXPECT_NE(message.find("point prompts need both coordinates and labels"), std::string::npos) << message;
    EXPECT_EQ(message.find("frame #"), std::string::npos) << message;
  }
  fs::remove_all(dir);
}

// The names PARSER's layer patterns are checked against when a config is read, before any
// model is built: those of the model itself.
TEST(ImageEncoderLayerNames, AreTheModelsHookableEncoderLayers) {
  for (const auto& config : {fixtures::tiny_model_section().sam, model::sam_preset("vit_b")}) {
    model::Sam sam(config);
    std::vector<std::string> built;
    for (const auto& item : sam->named_modules("", /*include_self=*/false))
      if (std::dynamic_pointer_cast<model::HookedLayer>(item.value()) && item.key().rfind("image_encoder.", 0) == 0)
        built.push_back(item.key());
    EXPECT_EQ(model::image_encoder_layer_names(config), built) << config.preset;
  }
}

TEST(WindowPartition, PadsToWholeWindowsAndRoundTrips) {
  auto x = torch::randn({2, 10, 7, 3});
  auto [windows, padded] = model::window_partition(x, 4);
  EXPECT_EQ(padded, (std::pair<int64_t, int64_t>{12, 8}));
  EXPECT_EQ(windows.sizes(), torch::IntArrayRef({2 * 3 * 2, 4, 4, 3}));
  // The padding is zeros: the last window row of image 0 holds rows 8..11, of which 10, 11 are padding.
  EXPECT_TRUE(torch::equal(windows[4].slice(0, 2), torch::zeros({2, 4, 3})));
  EXPECT_TRUE(torch::equal(model::window_unpartition(windows, 4, padded, {10, 7}), x));
}

TEST(RelativePosition, InterpolatesTablesOfAnotherSize) {
  auto table = torch::arange(7, torch::kFloat).unsqueeze(1).repeat({1, 2});  // for size 4
  auto same = model::get_rel_pos(4, 4, table);
  EXPECT_EQ(same.sizes(), torch::IntArrayRef({4, 4, 2}));
  // Entry (i, j) is table[i - j + 3].
  EXPECT_FLOAT_EQ(same[0][3][0].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(same[3][0][0].item<float>(), 6.f);
  auto resized = model::get_rel_pos(6, 6, table);  // needs 11 entries: linearly resampled
  EXPECT_EQ(resized.sizes(), torch::IntArrayRef({6, 6, 2}));
  EXPECT_NEAR(resized[5][0][0].item<float>(), 6.f, 1e-5);
}

TEST(Encoder, WindowedBlockPadsThenAttendsWithinEachWindowThenCrops) {
  // A 10×10 grid with window 4: the official block zero-pads the normalised tokens to
  // 12×12, attends within each of the 3×3 windows (padding tokens included, unmasked)
  // and crops back. Computed here window by window, against the batched block.
  torch::manual_seed(0);
  model::Block block(/*dim=*/8, /*num_heads=*/2, /*mlp_ratio=*/2.0, /*window_size=*/4, /*grid_size=*/10);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : block->parameters()) p.normal_(0, 0.5);
  }
  const auto x = torch::randn({1, 10, 10, 8});
  torch::NoGradGuard no_grad;
  const auto padded = torch::zeros({1, 12, 12, 8});
  padded.narrow(1, 0, 10).narrow(2, 0, 10).copy_(block->norm1(x));
  auto attended = torch::zeros({1, 12, 12, 8});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j)
      attended.narrow(1, 4 * i, 4).narrow(2, 4 * j, 4).copy_(block->attn(padded.narrow(1, 4 * i, 4).narrow(2, 4 * j, 4)));
  const auto y = x + attended.narrow(1, 0, 10).narrow(2, 0, 10);
  const auto reference = y + block->mlp(block->norm2(y));
  EXPECT_LT((block->forward(x) - reference).abs().max().item<float>(), 1e-5);
  // A global block attends over the whole grid.
  model::Block global(8, 2, 2.0, /*window_size=*/0, /*grid_size=*/10);
  const auto g = x + global->attn(global->norm1(x));
  EXPECT_LT((global->forward(x) - (g + global->mlp(global->norm2(g)))).abs().max().item<float>(), 1e-5);
}

TEST(PostProcess, CropsPaddingAndResizesToOriginal) {
  auto section = fixtures::tiny_model_section();
  model::Sam sam(section.sam);
  // A logit map that is +1 on the valid (unpadded) region and -1 on the padding.
  auto low = -torch::ones({1, 1, 32, 32});
  low.slice(2, 0, 32).slice(3, 0, 24).fill_(1.0);  // input 128x96 of 128x128 → 24 of 32 columns valid
  auto masks = sam->postprocess_masks(low, {128, 96}, {100, 75});
  EXPECT_EQ(masks.sizes(), torch::IntArrayRef({1, 1, 100, 75}));
  // Every original pixel maps into the valid region, far from the padding edge except the last columns.
  EXPECT_GT(masks.slice(3, 0, 70).min().item<float>(), 0.f);
}

TEST(Preprocess, NormalisesAndZeroPadsToModelSize) {
  model::Sam sam(fixtures::tiny_model_section().sam);
  auto image = torch::full({1, 3, 100, 75}, 123.675f);
  image.select(1, 1).fill_(116.28f), image.select(1, 2).fill_(103.53f);
  auto x = sam->preprocess(image);
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({1, 3, 128, 128}));
  EXPECT_NEAR(x.abs().max().item<float>(), 0.f, 1e-5);  // mean pixel → 0, padding → 0
  EXPECT_THROW(sam->preprocess(torch::zeros({1, 3, 129, 10})), c10::Error);
}

TEST(Activation, GeluGradientDoesNotDependOnTheGradientsLayout) {
  // Guards the workaround in model/common.cpp for LibTorch builds whose float32
  // gelu_backward mishandles non-contiguous gradients.
  const auto incoming = torch::randn({2, 8, 64}).transpose(1, 2);  // not contiguous
  auto gradient_of = [&](const torch::Tensor& grad) {
    auto x = torch::linspace(-4, 4, 2 * 64 * 8).reshape({2, 64, 8}).requires_grad_(true);
    model::activate(x, model::Activation::GELU).backward(grad);
    return x.grad();
  };
  EXPECT_TRUE(torch::allclose(gradient_of(incoming), gradient_of(incoming.contiguous()), 1e-6, 1e-6));
}

TEST(MaskDecoder, Float32GradientsMatchFloat64) {
  // The decoder's backward in float32 against the same model in float64: catches
  // layout-dependent kernel bugs that parity of the forward pass cannot see. Two boxes
  // with three masks each, and training's case: one mask per box, for one box and two.
  auto base = fixtures::tiny_model();
  auto model64 = fixtures::tiny_model();
  model64.sam->to(torch::kDouble);
  const auto two_boxes = torch::tensor({{10.f, 20.f, 90.f, 100.f}, {30.f, 5.f, 60.f, 70.f}});
  for (const auto& [boxes, multimask_output] : {std::pair{2, true}, std::pair{1, false}, std::pair{2, false}}) {
    const bool multimask = multimask_output;  // a lambda cannot capture a structured binding in C++17
    model::Prompts prompts;
    prompts.boxes = two_boxes.narrow(0, 0, boxes);
    auto embedding_gradient = [&](model::SamImpl& sam, torch::ScalarType type) {
      torch::manual_seed(0);
      auto embedding = torch::randn({1, 32, 8, 8}).to(type).requires_grad_(true);
      model::Prompts p = prompts;
      p.boxes = p.boxes->to(type);
      const auto out = sam.decode(embedding, p, multimask);
      const auto weights =
          torch::linspace(-1, 1, out.low_res_logits.numel()).to(type).view(out.low_res_logits.sizes());
      ((out.low_res_logits * weights).sum() + out.iou_predictions.sum()).backward();
      return embedding.grad().to(torch::kDouble);
    };
    const auto g32 = embedding_gradient(*base.sam, torch::kFloat);
    const auto g64 = embedding_gradient(*model64.sam, torch::kDouble);
    EXPECT_LT((g32 - g64).abs().max().item<double>(), 1e-4 * std::max(1.0, g64.abs().max().item<double>()))
        << boxes << " boxes, multimask " << multimask;
  }
}

TEST(MaskDecoder, GradientsMatchFiniteDifferencesInFloat64) {
  // The decoder's hand-written backward passes (folded attention, the single-mask
  // product) against central differences of its forward, in float64: the derivative
  // along a random direction in (image embedding, every decoder parameter).
  auto model = fixtures::tiny_model();
  model.sam->to(torch::kDouble);
  auto& decoder = *model.sam->mask_decoder;
  const auto two_boxes = torch::tensor({{10., 20., 90., 100.}, {30., 5., 60., 70.}}, torch::kDouble);
  for (const auto& [boxes, multimask_output] : {std::pair{2, true}, std::pair{1, false}, std::pair{2, false}}) {
    const bool multimask = multimask_output;  // a lambda cannot capture a structured binding in C++17
    model::Prompts prompts;
    prompts.boxes = two_boxes.narrow(0, 0, boxes);
    torch::manual_seed(3);
    auto embedding = torch::randn({1, 32, 8, 8}, torch::kDouble).requires_grad_(true);
    auto objective = [&] {
      const auto out = model.sam->decode(embedding, prompts, multimask);
      const auto weights =
          torch::linspace(-1, 1, out.low_res_logits.numel(), torch::kDouble).view(out.low_res_logits.sizes());
      return (out.low_res_logits * weights).sum() + out.iou_predictions.sum();
    };
    std::vector<torch::Tensor> inputs{embedding};
    for (auto& p : decoder.parameters()) {
      p.mutable_grad() = torch::Tensor();
      inputs.push_back(p);
    }
    objective().backward();
    std::vector<torch::Tensor> directions;
    double analytic = 0;
    for (const auto& x : inputs) {
      directions.push_back(torch::randn_like(x));
      // Parameters the outputs do not use (the other masks' hypernetworks) get no gradient.
      if (x.grad().defined()) analytic += (x.grad() * directions.back()).sum().item<double>();
    }
    auto shifted_objective = [&](double step) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < inputs.size(); ++i) inputs[i].add_(directions[i], step);
      const double value = objective().item<double>();
      for (size_t i = 0; i < inputs.size(); ++i) inputs[i].sub_(directions[i], step);
      return value;
    };
    // Small: the MLPs' ReLUs put kinks within 1e-5 of the tiny model's point.
    const double h = 1e-7;
    const double numeric = (shifted_objective(h) - shifted_objective(-h)) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
        << boxes << " boxes, multimask " << multimask;
  }
}

TEST(MaskDecoder, FoldedAttentionEqualsThePerHeadComputationWithGradients) {
  // The decoder's attention folds the few tokens' projections into the image side's
  // products; the official computation (project, split heads, softmax, merge, project)
  // is the reference. Both directions, with the image shared by the prompt sets or not.
  torch::manual_seed(2);
  model::DecoderAttention attention(/*embedding_dim=*/32, /*num_heads=*/4, /*downsample_rate=*/2);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : attention->parameters()) p.normal_(0, 0.3);
  }
  auto official = [&](const torch::Tensor& q_in, const torch::Tensor& k_in, const torch::Tensor& v_in) {
    const int64_t H = 4;
    auto heads = [&](const torch::Tensor& x) {
      return x.reshape({x.size(0), x.size(1), H, -1}).transpose(1, 2);  // B×H×N×d
    };
    const auto q = heads(attention->q_proj(q_in)), k = heads(attention->k_proj(k_in)),
               v = heads(attention->v_proj(v_in));
    const auto attn = (torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(q.size(3)))).softmax(-1);
    const auto out = torch::matmul(attn, v).transpose(1, 2);
    return attention->out_proj(out.reshape({out.size(0), out.size(1), -1}));
  };
  const auto image = torch::randn({2, 20, 32}), tokens = torch::randn({2, 3, 32}), values = torch::randn({2, 20, 32});
  for (const bool shared_image : {false, true}) {
    const auto x = shared_image ? image.narrow(0, 0, 1) : image;
    const auto v = shared_image ? values.narrow(0, 0, 1) : values;
    // (queries, keys, values): image → tokens, then tokens → image.
    for (const bool few_keys : {true, false}) {
      auto run = [&](bool folded) {
        std::vector<torch::Tensor> inputs{(few_keys ? x : tokens).clone().requires_grad_(true),
                                          (few_keys ? tokens : x).clone().requires_grad_(true),
                                          (few_keys ? tokens : v).clone().requires_grad_(true)};
        for (auto& p : attention->parameters()) p.mutable_grad() = torch::Tensor();
        auto out = folded ? attention(inputs[0], inputs[1], inputs[2]) : official(inputs[0], inputs[1], inputs[2]);
        if (out.size(0) == 1) out = out.expand({2, -1, -1});
        (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
        std::vector<torch::Tensor> all{out.detach().flatten()};
        for (const auto& t : inputs) all.push_back(t.grad().flatten());
        for (const auto& p : attention->parameters()) all.push_back(p.grad().flatten());
        return torch::cat(all);
      };
      const auto folded = run(true), reference = run(false);
      EXPECT_LT((folded - reference).abs().max().item<float>(), 1e-5 * reference.abs().max().item<float>())
          << "shared image " << shared_image << ", few keys " << few_keys;
    }
    // Keys = image + positional encoding: the image's gradient through the keys and as
    // the values, taken together in to_image.
    const auto pe = torch::randn({1, 20, 32});
    auto to_image = [&](bool folded) {
      auto q = tokens.clone().requires_grad_(true), image = x.clone().requires_grad_(true);
      for (auto& p : attention->parameters()) p.mutable_grad() = torch::Tensor();
      const auto out = folded ? attention->to_image(q, image, image + pe) : official(q, image + pe, image);
      (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
      std::vector<torch::Tensor> all{out.detach().flatten(), q.grad().flatten(), image.grad().flatten()};
      for (const auto& p : attention->parameters()) all.push_back(p.grad().flatten());
      return torch::cat(all);
    };
    const auto folded = to_image(true), reference = to_image(false);
    EXPECT_LT((folded - reference).abs().max().item<float>(), 1e-5 * reference.abs().max().item<float>())
        << "to_image, shared image " << shared_image;
  }
}

TEST(Encoder, BlockedAttentionEqualsTheWholeAttentionMapWithGradients) {
  // The blocked computation (frozen position tables) against the official one (taken
  // when the tables train). Heads in parallel: a 24×24 grid makes two query blocks per
  // head, a 6×6 one; one head at a time (≥ 1024 queries): 40×40 makes three, the last short.
  for (const int64_t grid : {24, 6, 40}) {
    torch::manual_seed(1);
    model::EncoderAttention blocked(/*dim=*/32, /*num_heads=*/4, grid, grid);
    model::EncoderAttention direct(32, 4, grid, grid);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : blocked->parameters()) p.normal_(0, 0.3);
      for (const auto& item : blocked->named_parameters()) direct->named_parameters()[item.key()].copy_(item.value());
    }
    blocked->rel_pos_h.set_requires_grad(false);
    blocked->rel_pos_w.set_requires_grad(false);
    const auto x = torch::randn({2, grid, grid, 32});
    auto gradients = [&](model::EncoderAttention& attention) {
      auto input = x.clone().requires_grad_(true);
      const auto out = attention(input);
      (out * torch::linspace(-1, 1, out.numel()).view(out.sizes())).sum().backward();
      return std::make_tuple(out.detach(), input.grad(), attention->qkv->weight.grad().clone());
    };
    const auto [out_b, grad_x_b, grad_w_b] = gradients(blocked);
    const auto [out_d, grad_x_d, grad_w_d] = gradients(direct);
    EXPECT_LT((out_b - out_d).abs().max().item<float>(), 1e-5) << grid;
    EXPECT_LT((grad_x_b - grad_x_d).abs().max().item<float>(), 1e-4 * grad_x_d.abs().max().item<float>()) << grid;
    EXPECT_LT((grad_w_b - grad_w_d).abs().max().item<float>(), 1e-4 * grad_w_d.abs().max().item<float>()) << grid;
  }
}

TEST(Convolution, ShiftedProductsEqualLibTorchsConvolutionWithGradients) {
  // 1×1 and 3×3 (the neck's), 5×5; with and without bias; NCHW and channels-last input;
  // a non-square image and two images, so rows wrap into the padding.
  for (const int64_t k : {1, 3, 5})
    for (const bool with_bias : {false, true})
      for (const bool channels_last : {false, true}) {
        torch::manual_seed(k);
        auto x = torch::randn({2, 6, 7, 5});
        if (channels_last) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
        const auto weight = torch::randn({4, 6, k, k});
        const auto bias = with_bias ? torch::randn({4}) : torch::Tensor();
        const auto weight_of_output = torch::randn({2, 4, 7, 5});
        auto run = [&](bool shifted) {
          auto input = x.clone().requires_grad_(true);
          auto w = weight.clone().requires_grad_(true);
          auto b = with_bias ? bias.clone().requires_grad_(true) : torch::Tensor();
          const auto out = shifted ? model::shifted_conv2d(input, w, b) : torch::conv2d(input, w, b, 1, k / 2);
          (out * weight_of_output).sum().backward();
          return std::vector<torch::Tensor>{out.detach(), input.grad(), w.grad(), with_bias ? b.grad() : torch::zeros(1)};
        };
        const auto ours = run(true), reference = run(false);
        const char* names[] = {"output", "input gradient", "weight gradient", "bias gradient"};
        for (size_t i = 0; i < ours.size(); ++i) {
          ASSERT_EQ(ours[i].sizes(), reference[i].sizes()) << names[i];
          EXPECT_LT((ours[i] - reference[i]).abs().max().item<float>(), 1e-4 * (1 + reference[i].abs().max().item<float>()))
              << names[i] << ", k " << k << ", bias " << with_bias << ", channels-last " << channels_last;
        }
      }
  EXPECT_TRUE(model::shifted_conv2d_applies(torch::zeros({1, 2, 4, 4}), torch::zeros({2, 2, 3, 3}), 1, 1));
  EXPECT_FALSE(model::shifted_conv2d_applies(torch::zeros({1, 2, 4, 4}), torch::zeros({2, 2, 3, 3}), 2, 1));
  EXPECT_FALSE(model::shifted_conv2d_applies(torch::zeros({1, 2, 4, 4}), torch::zeros({2, 2, 3, 3}), 1, 0));
  EXPECT_FALSE(model::shifted_conv2d_applies(torch::zeros({1, 2, 4, 4}), torch::zeros({2, 2, 2, 2}), 1, 1));
}

TEST(Platform, MatrixProductsUseAnOptimisedBlas) {
  // Debian's LibTorch calls the system BLAS: with the reference implementation matrix
  // products are ~18× slower (scripts/install_deps.sh selects OpenBLAS).
  EXPECT_TRUE(train::blas_is_optimised()) << train::blas_library();
}

TEST(FlopCount, CountsTheTokensTheMaskDecoderCarriesForOneBox) {
  // sparser_bench's model FLOPs of the decoder scale with this count.
  auto sam = fixtures::tiny_model().sam;
  model::Prompts box;
  box.boxes = torch::tensor({{4.0f, 8.0f, 60.0f, 90.0f}});
  torch::NoGradGuard no_grad;
  const auto corners = sam->prompt_encoder->forward(box).sparse.size(1);
  const auto tokens = sam->mask_decoder->iou_token->weight.size(0) + sam->mask_decoder->mask_tokens->weight.size(0);
  EXPECT_EQ(train::decoder_tokens_per_box(fixtures::tiny_model_section().sam), tokens + corners);
  EXPECT_EQ(train::decoder_tokens_per_box(model::sam_preset("vit_b")), 7);
}
