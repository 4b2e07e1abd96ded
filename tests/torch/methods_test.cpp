#include <gtest/gtest.h>

#include <filesystem>

#include "checkpoint/state_dict.h"
#include "methods/apply_method.h"
#include "methods/parser.h"
#include "methods/step_scope.h"
#include "methods/trainable.h"
#include "test_models.h"

using namespace sparser;
using fixtures::method_label;
using fixtures::parser_variant;
using methods::MethodName;

namespace {

const std::vector<MethodName> kTrainingMethods{MethodName::DecoderOnly, MethodName::Parser, MethodName::Lora,
                                               MethodName::Adapter, MethodName::Fact};

// Every method, and PARSER with each choice of what trains.
std::vector<methods::MethodConfig> training_configs() {
  std::vector<methods::MethodConfig> configs;
  for (auto name : kTrainingMethods) configs.push_back(fixtures::method_named(name));
  configs.push_back(parser_variant("conv", methods::ParserTrain::Bases));
  configs.push_back(parser_variant("transformer", methods::ParserTrain::Both));
  return configs;
}

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

// One Adam step on a loss of the tiny model's outputs.
void train_one_step(model::SamImpl& sam, const torch::Tensor& input) {
  auto params = methods::trainable_parameters(sam);
  std::vector<torch::Tensor> tensors;
  for (auto& [name, t] : params) tensors.push_back(t);
  torch::optim::Adam adam(tensors, torch::optim::AdamOptions(1e-2));
  auto loss = fixtures::predict(sam, input).pow(2).sum();
  loss.backward();
  adam.step();
}

// A temp file removed at the end of the test.
struct TempFile {
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() / ("sparser_" + std::to_string(::getpid()) + "_" + name)).string()) {}
  ~TempFile() { std::filesystem::remove(path); }
  std::string path;
};

}  // namespace

TEST(Methods, VitBTrainableCountsMatchThePaper) {
  // Paper table 4 (K = 1024): decoder 3963.2K, PARSER +0.5K, LoRA +144K, Adapter +351.5K, FacT +14.3K.
  config::ModelSection vit_b;
  vit_b.sam = model::sam_preset("vit_b");
  auto count = [&](methods::MethodConfig c) {
    auto setup = train::build_model(vit_b, c);
    return methods::count_trainable(*setup.sam);
  };
  auto decoder_only = count(fixtures::method_named(MethodName::DecoderOnly));
  EXPECT_EQ(decoder_only.total, 4058340);
  EXPECT_EQ(decoder_only.by_module.count("image_encoder"), 0u);

  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"conv"};
  EXPECT_EQ(count(parser).total - 4058340, 512);
  EXPECT_EQ(count(fixtures::method_named(MethodName::Lora)).total - 4058340, 147456);
  EXPECT_EQ(count(fixtures::method_named(MethodName::Fact)).total - 4058340, 14592);
  EXPECT_EQ(count(fixtures::method_named(MethodName::Adapter)).total - 4058340, 12 * (768 * 19 + 19 + 19 * 768 + 768));
  EXPECT_EQ(count(fixtures::method_named(MethodName::ZeroShot)).total, 0);
}

TEST(Methods, TrainableNamesAreExactlyTheMethodsTensors) {
  // Beyond the mask decoder (trained by every method but zero-shot), exactly these names.
  auto encoder_names = [](const methods::MethodConfig& c) {
    auto setup = fixtures::tiny_model(c);
    std::set<std::string> names;
    bool whole_decoder = true;
    std::set<std::string> decoder_trained;
    for (const auto& [name, t] : methods::trainable_parameters(*setup.sam)) {
      if (name.rfind("mask_decoder.", 0) == 0) decoder_trained.insert(name);
      else names.insert(name);
    }
    for (const auto& p : setup.sam->mask_decoder->named_parameters())
      whole_decoder &= decoder_trained.count("mask_decoder." + p.key()) > 0;
    EXPECT_EQ(whole_decoder, c.name != MethodName::ZeroShot) << method_label(c);
    return names;
  };
  auto per_block = [](std::initializer_list<std::string> suffixes) {
    std::set<std::string> names;
    for (int b = 0; b < 4; ++b)
      for (const auto& s : suffixes) names.insert("image_encoder.blocks." + std::to_string(b) + "." + s);
    return names;
  };
  using Names = std::set<std::string>;
  EXPECT_EQ(encoder_names(fixtures::method_named(MethodName::ZeroShot)), Names{});
  EXPECT_EQ(encoder_names(fixtures::method_named(MethodName::DecoderOnly)), Names{});
  EXPECT_EQ(encoder_names(parser_variant("conv", methods::ParserTrain::Coefficients)),
            (Names{"image_encoder.neck.0.parser.sigma", "image_encoder.neck.2.parser.sigma"}));
  EXPECT_EQ(encoder_names(parser_variant("conv", methods::ParserTrain::Bases)),
            (Names{"image_encoder.neck.0.parser.U", "image_encoder.neck.0.parser.V", "image_encoder.neck.2.parser.U",
                   "image_encoder.neck.2.parser.V"}));
  EXPECT_EQ(encoder_names(parser_variant("transformer", methods::ParserTrain::Coefficients)),
            per_block({"attn.qkv.parser.sigma", "attn.proj.parser.sigma", "mlp.lin1.parser.sigma", "mlp.lin2.parser.sigma"}));
  EXPECT_EQ(encoder_names(fixtures::method_named(MethodName::Lora)),
            per_block({"attn.qkv.lora.A_q", "attn.qkv.lora.B_q", "attn.qkv.lora.A_v", "attn.qkv.lora.B_v"}));
  EXPECT_EQ(encoder_names(fixtures::method_named(MethodName::Adapter)),
            per_block({"attn.proj.adapter.down.weight", "attn.proj.adapter.down.bias", "attn.proj.adapter.up.weight",
                       "attn.proj.adapter.up.bias"}));
  auto fact = per_block({"attn.qkv.fact.core_q", "attn.qkv.fact.core_k", "attn.qkv.fact.core_v"});
  fact.insert({"image_encoder.fact.U", "image_encoder.fact.V"});
  EXPECT_EQ(encoder_names(fixtures::method_named(MethodName::Fact)), fact);

  auto with_prompts = fixtures::method_named(MethodName::DecoderOnly);
  with_prompts.train_prompt_encoder = true;
  auto setup = fixtures::tiny_model(with_prompts);
  int64_t prompt_tensors = 0;
  for (const auto& [name, t] : methods::trainable_parameters(*setup.sam)) prompt_tensors += name.rfind("prompt_encoder.", 0) == 0;
  EXPECT_EQ(prompt_tensors, static_cast<int64_t>(setup.sam->prompt_encoder->parameters().size()));
}

TEST(Methods, TrainableSetIsExactlyTheMethodsTensors) {
  const auto kinds_of = [](const methods::MethodConfig& c) {
    auto setup = fixtures::tiny_model(c);
    return methods::count_trainable(*setup.sam).by_kind;
  };
  using Kinds = std::map<std::string, int64_t>;
  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"conv"};
  // Tiny: neck 48→32 (1×1) and 32→32 (3×3): σ of sizes min(32, 48) + min(32, 288) = 64.
  const auto decoder = kinds_of(fixtures::method_named(MethodName::DecoderOnly)).at("decoder");
  EXPECT_EQ(kinds_of(parser), (Kinds{{"decoder", decoder}, {"parser", 64}}));
  parser.parser_train = methods::ParserTrain::Bases;
  // U: 32×32 twice; V: 48×32 and 288×32.
  EXPECT_EQ(kinds_of(parser).at("parser"), 2 * 32 * 32 + 48 * 32 + 288 * 32);
  parser.parser_train = methods::ParserTrain::Both;
  EXPECT_EQ(kinds_of(parser).at("parser"), 2 * 32 * 32 + 48 * 32 + 288 * 32 + 64);

  auto setup = fixtures::tiny_model(fixtures::method_named(MethodName::Lora));
  for (const auto& [name, t] : methods::trainable_parameters(*setup.sam))
    EXPECT_TRUE(name.rfind("mask_decoder.", 0) == 0 || name.find(".attn.qkv.lora.") != std::string::npos) << name;
  // 4 blocks × (q, v) × (A: 4×48 + B: 48×4)
  EXPECT_EQ(methods::count_trainable(*setup.sam).by_kind.at("lora"), 4 * 2 * (4 * 48 + 48 * 4));
}

TEST(Methods, EveryMethodStartsAtThePretrainedFunction) {
  const auto input = fixtures::fixture_input();
  auto base = fixtures::tiny_model();
  base.sam->eval();
  torch::NoGradGuard no_grad;
  const auto reference = fixtures::predict(*base.sam, input);
  for (const auto& config : training_configs()) {
    auto setup = fixtures::tiny_model(config);
    setup.sam->eval();  // FacT's dropout is off in evaluation
    const auto out = fixtures::predict(*setup.sam, input);
    EXPECT_LT((out - reference).abs().max().item<float>(), 1e-4) << method_label(config);
  }
}

TEST(Methods, StepScopeBuildsTheWeightOncePerStepWithTheSameGradients) {
  // Two images in one step: σ's gradient through the step's single W' (or U·σ, where the
  // layer multiplies by the factors: σ alone trains) equals the sum of the per-image
  // gradients with W' rebuilt at every call.
  const auto input = fixtures::fixture_input();
  const auto flipped = input.flip({3});
  for (const auto train : {methods::ParserTrain::Both, methods::ParserTrain::Coefficients}) {
    auto setup = fixtures::tiny_model(parser_variant("both", train));
    const auto trainable = methods::trainable_parameters(*setup.sam);
    auto gradients = [&](bool in_scope) {
      for (const auto& [name, t] : trainable) t.mutable_grad() = torch::Tensor();
      std::optional<methods::StepScope> step;
      if (in_scope) step.emplace(*setup.sam);
      for (const auto& image : {input, flipped}) fixtures::predict(*setup.sam, image).pow(2).sum().backward();
      if (step) step->finish_backward();
      std::map<std::string, torch::Tensor> out;
      for (const auto& [name, t] : trainable)  // (the unselected mask's hypernetwork gets no gradient)
        out[name] = t.grad().defined() ? t.grad().clone() : torch::zeros_like(t);
      return out;
    };
    const auto per_call = gradients(false);
    const auto per_step = gradients(true);
    int encoder_tensors = 0;
    for (const auto& [name, g] : per_call) {
      ASSERT_TRUE(per_step.at(name).defined()) << name;
      const double scale = g.abs().max().item<double>();
      EXPECT_LE((per_step.at(name) - g).abs().max().item<double>(), 1e-4 * std::max(scale, 1.0))
          << name << " (largest gradient " << scale << ")";
      encoder_tensors += name.find(".parser.") != std::string::npos;
    }
    // σ (and U, V) of the neck's 2 convs and 4 blocks × 4 linears
    EXPECT_EQ(encoder_tensors, (train == methods::ParserTrain::Both ? 3 : 1) * (2 + 4 * 4))
        << method_label(parser_variant("both", train));
  }

  // Without autograd, W' is built once and kept until σ changes.
  auto setup = fixtures::tiny_model(parser_variant("both", methods::ParserTrain::Coefficients));
  auto hook = std::dynamic_pointer_cast<methods::SvdReparamHook>(
      methods::select_layers(*setup.sam, {"image_encoder.neck.0"}).front().layer->hook());
  torch::NoGradGuard no_grad;
  const auto first = hook->weight(torch::Tensor());
  EXPECT_EQ(hook->weight(torch::Tensor()).data_ptr(), first.data_ptr());
  hook->reparam()->sigma.mul_(2);
  EXPECT_TRUE(torch::allclose(hook->weight(torch::Tensor()), first * 2, 1e-4, 1e-6));
}

TEST(Methods, ParserMultipliesByTheFactorsWhereTheyCostLess) {
  // PARSER's σ on ViT-B's neck: (x·V)·(U·σ)ᵀ costs fewer multiply-adds than x·W'ᵀ with
  // W''s full gradient; on the blocks' linear layers, or with the bases training, it costs
  // more. Either way the outputs and σ's gradient are those of W'.
  auto hooked = [](auto layer, bool bases) {
    auto hook = std::make_shared<methods::SvdReparamHook>(layer->weight);
    hook->reparam()->sigma.set_requires_grad(true);
    hook->reparam()->U.set_requires_grad(bases);
    hook->reparam()->V.set_requires_grad(bases);
    layer->attach(hook);
    return std::pair{layer, hook};
  };
  torch::manual_seed(0);
  const auto trunk = torch::randn({1, 768, 4, 4}), neck = torch::randn({1, 256, 4, 4}).requires_grad_(true);
  const auto tokens = torch::randn({1, 16, 768}).requires_grad_(true);
  EXPECT_TRUE(hooked(model::Conv2d(768, 256, 1, 1, 0, false), false).first->cheaper_factors(trunk));
  EXPECT_TRUE(hooked(model::Conv2d(256, 256, 3, 1, 1, false), false).first->cheaper_factors(neck));
  EXPECT_FALSE(hooked(model::Conv2d(256, 256, 3, 1, 1, false), true).first->cheaper_factors(neck));
  EXPECT_FALSE(hooked(model::Linear(768, 2304), false).first->cheaper_factors(tokens));
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(hooked(model::Conv2d(256, 256, 3, 1, 1, false), false).first->cheaper_factors(neck));
  }

  auto [conv, hook] = hooked(model::Conv2d(256, 256, 3, 1, 1, false), false);
  ASSERT_TRUE(conv->cheaper_factors(neck));
  const auto weights = torch::randn({1, 256, 4, 4});
  auto sigma_gradient = [&, &conv = conv, &hook = hook](bool factored) {
    hook->reparam()->sigma.mutable_grad() = torch::Tensor();
    const auto out = factored ? conv->forward(neck) : torch::conv2d(neck, hook->reparam()->reconstruct(), {}, 1, 1);
    (out * weights).sum().backward();
    return std::pair{out.detach(), hook->reparam()->sigma.grad().clone()};
  };
  const auto [out, grad] = sigma_gradient(true);
  const auto [reference_out, reference_grad] = sigma_gradient(false);
  EXPECT_LT((out - reference_out).abs().max().item<double>(), 1e-4 * reference_out.abs().max().item<double>());
  EXPECT_LT((grad - reference_grad).abs().max().item<double>(), 1e-4 * reference_grad.abs().max().item<double>());
}

TEST(Methods, LeavesTrunkFrozenAgreesWithTheModel) {
  auto configs = training_configs();
  configs.push_back(fixtures::method_named(MethodName::ZeroShot));
  configs.push_back(parser_variant("conv", methods::ParserTrain::Both));
  configs.push_back(parser_variant("image_encoder.neck.2", methods::ParserTrain::Coefficients));
  configs.push_back(parser_variant("image_encoder.blocks.0.mlp.lin1", methods::ParserTrain::Coefficients));
  for (const auto& config : configs) {
    auto setup = fixtures::tiny_model(config);
    EXPECT_EQ(methods::leaves_trunk_frozen(config), !setup.sam->image_encoder->trunk_requires_grad()) << method_label(config);
  }
}

TEST(Methods, ParserSigmaGradientMatchesFiniteDifferences) {
  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"both"};
  auto setup = fixtures::tiny_model(parser);
  setup.sam->to(torch::kDouble);
  const auto input = fixtures::fixture_input().to(torch::kDouble);
  const auto weights = torch::randn({fixtures::predict(*setup.sam, input).numel()}, torch::kDouble);
  auto loss_of = [&] { return (fixtures::predict(*setup.sam, input) * weights).sum(); };

  for (const auto& layer : {"image_encoder.neck.2", "image_encoder.blocks.1.attn.qkv"}) {
    auto hook = std::dynamic_pointer_cast<methods::SvdReparamHook>(
        methods::select_layers(*setup.sam, {layer}).front().layer->hook());
    auto sigma = hook->reparam()->sigma;
    sigma.mutable_grad() = torch::Tensor();
    loss_of().backward();
    const auto analytic = sigma.grad().clone();
    torch::NoGradGuard no_grad;
    for (int64_t i : {int64_t{0}, sigma.size(0) / 2, sigma.size(0) - 1}) {
      const double h = 1e-6, saved = sigma[i].item<double>();
      sigma[i].fill_(saved + h);
      const double up = loss_of().item<double>();
      sigma[i].fill_(saved - h);
      const double down = loss_of().item<double>();
      sigma[i].fill_(saved);
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(analytic[i].item<double>(), numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << layer << " σ" << i;
    }
  }
}

TEST(Methods, OneStepChangesOnlyTrainableTensors) {
  const auto input = fixtures::fixture_input();
  for (const auto& config : training_configs()) {
    auto setup = fixtures::tiny_model(config);
    const auto before = snapshot(*setup.sam);
    train_one_step(*setup.sam, input);
    std::set<std::string> trainable;
    for (const auto& [n, t] : methods::trainable_parameters(*setup.sam)) trainable.insert(n);
    int decoder_changed = 0, encoder_changed = 0;
    for (const auto& p : setup.sam->named_parameters()) {
      const bool same = torch::equal(before.at(p.key()), p.value());
      if (!trainable.count(p.key())) EXPECT_TRUE(same) << method_label(config) << ": frozen " << p.key() << " changed";
      if (!same) ++(p.key().rfind("mask_decoder.", 0) == 0 ? decoder_changed : encoder_changed);
    }
    EXPECT_GT(decoder_changed, 0) << method_label(config);
    // The method's own encoder tensors move too (for LoRA, FacT and adapters only those
    // downstream of their zero-initialised factor: the others get no gradient at step 1).
    if (config.name != MethodName::DecoderOnly) EXPECT_GT(encoder_changed, 0) << method_label(config);
  }
}

TEST(Methods, SavedDeltaReloadsToIdenticalOutputs) {
  const auto input = fixtures::fixture_input();
  for (const auto& config : training_configs()) {
    auto trained = fixtures::tiny_model(config);
    train_one_step(*trained.sam, input);
    TempFile delta_file(method_label(config) + "_delta.pth");
    checkpoint::write_state_dict(delta_file.path, methods::trainable_parameters(*trained.sam));

    auto restored = fixtures::tiny_model(config);
    methods::load_delta(*restored.sam, checkpoint::read_state_dict(delta_file.path), delta_file.path);
    trained.sam->eval();
    restored.sam->eval();
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(fixtures::predict(*trained.sam, input), fixtures::predict(*restored.sam, input)))
        << method_label(config);
  }
}

TEST(Methods, DeltaOfAnotherMethodIsRejectedNamingTheKeys) {
  auto lora = fixtures::tiny_model(fixtures::method_named(MethodName::Lora));
  auto parser = fixtures::tiny_model(parser_variant("conv", methods::ParserTrain::Coefficients));
  const auto lora_delta = methods::trainable_parameters(*lora.sam);
  try {
    methods::load_delta(*parser.sam, lora_delta, "lora_delta.pth");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("lora_delta.pth"), std::string::npos) << message;
    EXPECT_NE(message.find("missing key: image_encoder.neck.0.parser.sigma"), std::string::npos) << message;
    EXPECT_NE(message.find("unexpected key (not trained by this method): image_encoder.blocks.0.attn.qkv.lora.A_q"),
              std::string::npos) << message;
  }
  // A delta with only part of what the method trains (e.g. the decoder) is incomplete.
  methods::NamedTensors decoder_only;
  for (const auto& [name, t] : methods::trainable_parameters(*parser.sam))
    if (name.rfind("mask_decoder.", 0) == 0) decoder_only.emplace_back(name, t);
  EXPECT_THROW(methods::load_delta(*parser.sam, decoder_only, "partial.pth"), std::runtime_error);
}

TEST(Methods, ExportedStateDictReproducesTheFineTunedModel) {
  const auto input = fixtures::fixture_input();
  for (const auto& config : training_configs()) {
    if (config.name == MethodName::Adapter) continue;  // not mergeable: below
    auto trained = fixtures::tiny_model(config);
    trained.sam->eval();
    train_one_step(*trained.sam, input);
    TempFile exported(method_label(config) + "_export.pth");
    checkpoint::write_state_dict(exported.path, methods::merged_state_dict(*trained.sam));

    model::Sam plain(fixtures::tiny_model_section().sam);
    checkpoint::load_state_dict(*plain, checkpoint::read_state_dict(exported.path), /*strict=*/true, exported.path);
    torch::NoGradGuard no_grad;
    const auto diff = (fixtures::predict(*trained.sam, input) - fixtures::predict(*plain, input)).abs().max();
    EXPECT_LT(diff.item<float>(), 1e-4) << method_label(config);
  }
  auto adapter = fixtures::tiny_model(fixtures::method_named(MethodName::Adapter));
  EXPECT_THROW(methods::merged_state_dict(*adapter.sam), std::runtime_error);
  const auto kept = methods::merged_state_dict(*adapter.sam, /*keep_unmergeable=*/true);
  EXPECT_TRUE(std::any_of(kept.begin(), kept.end(), [](const auto& kv) { return kv.first.find(".adapter.") != std::string::npos; }));
}

TEST(Methods, FrozenTrunkRunsWithoutAutograd) {
  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"conv"};
  auto conv = fixtures::tiny_model(parser);
  EXPECT_FALSE(conv.sam->image_encoder->trunk_requires_grad());
  const auto trunk = conv.sam->image_encoder->forward_trunk(fixtures::fixture_input());
  EXPECT_FALSE(trunk.requires_grad());
  parser.parser_layers = {"transformer"};
  auto transformer = fixtures::tiny_model(parser);
  EXPECT_TRUE(transformer.sam->image_encoder->trunk_requires_grad());
}

TEST(Methods, UnknownLayerPatternIsAnError) {
  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"image_encoder.blocks.*.attn.qvk"};
  try {
    fixtures::tiny_model(parser);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("qvk"), std::string::npos) << e.what();
  }
}

TEST(Methods, ParserLayersOutsideTheImageEncoderAreAnError) {
  // The decoder trains whole: reparameterising one of its layers trained U, V and the
  // unused weight as well as σ.
  auto parser = fixtures::method_named(MethodName::Parser);
  parser.parser_layers = {"conv", "mask_decoder.transformer.layers.0.self_attn.q_proj"};
  try {
    fixtures::tiny_model(parser);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'mask_decoder.transformer.layers.0.self_attn.q_proj', which is not in the "
                                         "image encoder"),
              std::string::npos)
        << e.what();
  }
}

TEST(Methods, GlobPatterns) {
  EXPECT_TRUE(methods::matches_pattern("image_encoder.blocks.3.attn.qkv", "image_encoder.blocks.*.attn.qkv"));
  EXPECT_FALSE(methods::matches_pattern("image_encoder.blocks.3.attn.qkv", "image_encoder.*.qkv"));
  EXPECT_TRUE(methods::matches_pattern("image_encoder.blocks.3.attn.qkv", "image_encoder.**.qkv"));
  EXPECT_FALSE(methods::matches_pattern("image_encoder.neck.0", "image_encoder.neck.2"));
}
