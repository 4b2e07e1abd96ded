#include <gtest/gtest.h>

#include <filesystem>

#include "checkpoint/state_dict.h"
#include "methods/apply_method.h"
#include "methods/parser.h"
#include "methods/trainable.h"
#include "test_models.h"

using namespace sparser;
using methods::MethodName;

namespace {

const std::vector<MethodName> kTrainingMethods{MethodName::DecoderOnly, MethodName::Parser, MethodName::Lora,
                                               MethodName::Adapter, MethodName::Fact};

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
  torch::NoGradGuard no_grad;
  const auto reference = fixtures::predict(*base.sam, input);
  for (auto name : kTrainingMethods) {
    auto setup = fixtures::tiny_model(fixtures::method_named(name));
    const auto out = fixtures::predict(*setup.sam, input);
    EXPECT_LT((out - reference).abs().max().item<float>(), 1e-4) << methods::to_string(name);
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
  for (auto name : kTrainingMethods) {
    auto setup = fixtures::tiny_model(fixtures::method_named(name));
    const auto before = snapshot(*setup.sam);
    train_one_step(*setup.sam, input);
    std::set<std::string> trainable;
    for (const auto& [n, t] : methods::trainable_parameters(*setup.sam)) trainable.insert(n);
    int changed = 0;
    for (const auto& p : setup.sam->named_parameters()) {
      const bool same = torch::equal(before.at(p.key()), p.value());
      if (!trainable.count(p.key())) EXPECT_TRUE(same) << methods::to_string(name) << ": frozen " << p.key() << " changed";
      changed += same ? 0 : 1;
    }
    EXPECT_GT(changed, 0) << methods::to_string(name);
  }
}

TEST(Methods, SavedDeltaReloadsToIdenticalOutputs) {
  const auto input = fixtures::fixture_input();
  for (auto name : kTrainingMethods) {
    auto trained = fixtures::tiny_model(fixtures::method_named(name));
    train_one_step(*trained.sam, input);
    TempFile delta_file(methods::to_string(name) + "_delta.pth");
    checkpoint::write_state_dict(delta_file.path, methods::trainable_parameters(*trained.sam));

    auto restored = fixtures::tiny_model(fixtures::method_named(name));
    methods::load_delta(*restored.sam, checkpoint::read_state_dict(delta_file.path), delta_file.path);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(fixtures::predict(*trained.sam, input), fixtures::predict(*restored.sam, input)))
        << methods::to_string(name);
  }
}

TEST(Methods, ExportedStateDictReproducesTheFineTunedModel) {
  const auto input = fixtures::fixture_input();
  for (auto name : {MethodName::DecoderOnly, MethodName::Parser, MethodName::Lora, MethodName::Fact}) {
    auto trained = fixtures::tiny_model(fixtures::method_named(name));
    train_one_step(*trained.sam, input);
    TempFile exported(methods::to_string(name) + "_export.pth");
    checkpoint::write_state_dict(exported.path, methods::merged_state_dict(*trained.sam));

    model::Sam plain(fixtures::tiny_model_section().sam);
    checkpoint::load_state_dict(*plain, checkpoint::read_state_dict(exported.path), /*strict=*/true, exported.path);
    torch::NoGradGuard no_grad;
    const auto diff = (fixtures::predict(*trained.sam, input) - fixtures::predict(*plain, input)).abs().max();
    EXPECT_LT(diff.item<float>(), 1e-4) << methods::to_string(name);
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

TEST(Methods, GlobPatterns) {
  EXPECT_TRUE(methods::matches_pattern("image_encoder.blocks.3.attn.qkv", "image_encoder.blocks.*.attn.qkv"));
  EXPECT_FALSE(methods::matches_pattern("image_encoder.blocks.3.attn.qkv", "image_encoder.*.qkv"));
  EXPECT_TRUE(methods::matches_pattern("image_encoder.blocks.3.attn.qkv", "image_encoder.**.qkv"));
  EXPECT_FALSE(methods::matches_pattern("image_encoder.neck.0", "image_encoder.neck.2"));
}
