// Single-process behaviour of the flat gradient buffer (no MPI here: the collectives are
// tested under mpirun by tests/mpi/distributed_mpi_test.cpp).
#include <gtest/gtest.h>

#include "distributed/gradient_buffer.h"
#include "methods/trainable.h"

namespace dist = sparser::distributed;
namespace methods = sparser::methods;

namespace {

torch::nn::Sequential small_model() {
  torch::manual_seed(7);
  torch::nn::Sequential model(torch::nn::Linear(3, 4), torch::nn::Tanh(), torch::nn::Linear(4, 2));
  model->to(torch::kFloat64);
  return model;
}

torch::Tensor loss_of(torch::nn::Sequential& model, int64_t seed) {
  torch::manual_seed(seed);
  return model->forward(torch::randn({5, 3}, torch::kFloat64)).pow(2).mean();
}

// The gradients a plain backward produces, concatenated in parameter order.
torch::Tensor reference_gradients(const std::vector<int64_t>& seeds) {
  auto model = small_model();
  for (const int64_t seed : seeds) loss_of(model, seed).backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(p.grad().reshape(-1));
  return torch::cat(grads);
}

}  // namespace

TEST(FlatGradients, BackwardAccumulatesIntoTheBuffer) {
  auto model = small_model();
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  std::vector<const void*> storage_before;
  for (const auto& p : model->parameters()) storage_before.push_back(p.grad().data_ptr());

  loss_of(model, 1).backward();
  EXPECT_TRUE(torch::allclose(grads.flat(), reference_gradients({1}), 0, 1e-12));
  loss_of(model, 2).backward();
  EXPECT_TRUE(torch::allclose(grads.flat(), reference_gradients({1, 2}), 0, 1e-12));

  // Autograd added in place: the gradient tensors are still the views made at construction.
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ(params[i].grad().data_ptr(), storage_before[i]);
    EXPECT_TRUE(params[i].grad().is_alias_of(grads.flat()));
  }
}

TEST(FlatGradients, ZeroingKeepsTheViews) {
  auto model = small_model();
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  loss_of(model, 1).backward();
  grads.zero_();
  EXPECT_EQ(grads.flat().abs().sum().item<double>(), 0.0);
  loss_of(model, 2).backward();
  EXPECT_TRUE(torch::allclose(grads.flat(), reference_gradients({2}), 0, 1e-12));

  // LibTorch 1.13's Optimizer::zero_grad() detaches and zeroes in place, which the views allow.
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  sgd.zero_grad();
  loss_of(model, 3).backward();
  EXPECT_TRUE(torch::allclose(grads.flat(), reference_gradients({3}), 0, 1e-12));
}

TEST(FlatGradients, ExistingGradientsAreCopiedIn) {
  auto model = small_model();
  loss_of(model, 1).backward();
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  EXPECT_TRUE(torch::allclose(grads.flat(), reference_gradients({1}), 0, 1e-12));
}

TEST(FlatGradients, ReportsAGradientThatIsNoLongerAView) {
  auto model = small_model();
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  // Double backward makes autograd replace the gradient tensors instead of adding in place.
  loss_of(model, 1).backward({}, /*retain_graph=*/true, /*create_graph=*/true);
  try {
    (void)grads.flat();
    FAIL() << "expected std::logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("'0.weight'"), std::string::npos) << e.what();
  }
}

TEST(FlatGradients, LayoutHashIsStableAndSeesNamesShapesAndDtypes) {
  auto hash = [](std::vector<std::tuple<std::string, std::vector<int64_t>, torch::Dtype>> layout) {
    dist::FlatGradients::NamedTensors named;
    for (const auto& [name, shape, dtype] : layout)
      named.emplace_back(name, torch::zeros(shape, torch::TensorOptions(dtype).requires_grad(true)));
    return dist::FlatGradients(named).layout_hash();
  };
  const auto base = hash({{"a.weight", {2, 3}, torch::kFloat32}, {"a.bias", {2}, torch::kFloat32}});
  // A fixed value (FNV-1a of the serialised layout, recomputed independently): the hash
  // must not depend on the process (addresses, std::hash).
  EXPECT_EQ(base, 0x0870225cf77aea04ULL);
  EXPECT_EQ(base, hash({{"a.weight", {2, 3}, torch::kFloat32}, {"a.bias", {2}, torch::kFloat32}}));
  EXPECT_NE(base, hash({{"a.weight", {3, 2}, torch::kFloat32}, {"a.bias", {2}, torch::kFloat32}}));
  EXPECT_NE(base, hash({{"a.weight", {6}, torch::kFloat32}, {"a.bias", {2}, torch::kFloat32}}));
  EXPECT_NE(base, hash({{"b.weight", {2, 3}, torch::kFloat32}, {"a.bias", {2}, torch::kFloat32}}));
  EXPECT_NE(base, hash({{"a.weight", {2, 3}, torch::kFloat64}, {"a.bias", {2}, torch::kFloat64}}));
  EXPECT_NE(base, hash({{"a.bias", {2}, torch::kFloat32}, {"a.weight", {2, 3}, torch::kFloat32}}));
  EXPECT_NE(base, hash({{"a.weight", {2, 3}, torch::kFloat32}}));
}

TEST(FlatGradients, SizesTheBufferFromTheParameters) {
  auto model = small_model();
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  const int64_t elements = 3 * 4 + 4 + 4 * 2 + 2;
  EXPECT_EQ(grads.flat().numel(), elements);
  EXPECT_EQ(grads.bytes(), elements * 8);
  EXPECT_EQ(grads.flat().scalar_type(), torch::kFloat64);
}

TEST(FlatGradients, RejectsParametersItCannotHold) {
  const auto trainable = torch::zeros({2}, torch::TensorOptions(torch::kFloat32).requires_grad(true));
  const auto other_dtype = torch::zeros({2}, torch::TensorOptions(torch::kFloat64).requires_grad(true));
  const auto frozen = torch::zeros({2});
  const auto not_a_leaf = trainable * 2;
  EXPECT_THROW(dist::FlatGradients({{"a", trainable}, {"b", other_dtype}}), std::invalid_argument);
  EXPECT_THROW(dist::FlatGradients({{"a", frozen}}), std::invalid_argument);
  EXPECT_THROW(dist::FlatGradients({{"a", not_a_leaf}}), std::invalid_argument);
}
