#include <gtest/gtest.h>

#include "train/loss.h"
#include "train/metrics.h"

using namespace sparser::train;

TEST(Loss, MatchesTheDocumentedFormulas) {
  const auto logits = torch::tensor({2.0f, -1.0f, 0.5f, -3.0f}).reshape({1, 1, 2, 2});
  const auto target = torch::tensor({1.0f, 0.0f, 1.0f, 1.0f}).reshape({1, 1, 2, 2});
  const auto t = segmentation_loss(logits, target, LossWeights{});
  // BCE: mean of softplus(-x) for positives and softplus(x) for negatives.
  auto softplus = [](double x) { return std::log1p(std::exp(x)); };
  const double bce = (softplus(-2.0) + softplus(-1.0) + softplus(-0.5) + softplus(3.0)) / 4;
  EXPECT_NEAR(t.bce.item<double>(), bce, 1e-6);
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  const double inter = sig(2.0) + sig(0.5) + sig(-3.0);
  const double sum_p = sig(2.0) + sig(-1.0) + sig(0.5) + sig(-3.0);
  EXPECT_NEAR(t.dice.item<double>(), 1 - (2 * inter + 1) / (sum_p + 3 + 1), 1e-6);
  EXPECT_EQ(t.focal.item<double>(), 0.0);  // single instance: no focal term
  EXPECT_NEAR(t.total.item<double>(), t.bce.item<double>() + t.dice.item<double>(), 1e-6);
}

TEST(Loss, FocalTermOnlyForMultiInstanceImagesAndGradientsFlow) {
  auto logits = torch::randn({3, 1, 8, 8}, torch::requires_grad());
  const auto target = (torch::rand({3, 1, 8, 8}) > 0.5).to(torch::kFloat);
  LossWeights w;
  w.focal = 2.0;
  const auto t = segmentation_loss(logits, target, w);
  EXPECT_GT(t.focal.item<double>(), 0.0);
  EXPECT_NEAR(t.total.item<double>(), t.bce.item<double>() + t.dice.item<double>() + 2 * t.focal.item<double>(), 1e-5);
  t.total.backward();
  EXPECT_TRUE(logits.grad().abs().sum().item<double>() > 0);
}

TEST(Loss, FocalTermMatchesItsFormula) {
  // Two instances of one pixel each: α_t (1 − p_t)^γ · CE per pixel, averaged.
  const auto logits = torch::tensor({1.5f, -0.5f}).reshape({2, 1, 1, 1});
  const auto target = torch::tensor({1.0f, 1.0f}).reshape({2, 1, 1, 1});
  const auto t = segmentation_loss(logits, target, LossWeights{});
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  auto focal = [&](double x) { return 0.25 * std::pow(1 - sig(x), 2.0) * -std::log(sig(x)); };
  EXPECT_NEAR(t.focal.item<double>(), (focal(1.5) + focal(-0.5)) / 2, 1e-6);
  // A negative pixel is weighted by 1 − α and uses p_t = 1 − p.
  const auto negative = segmentation_loss(torch::tensor({0.3f, 0.3f}).reshape({2, 1, 1, 1}),
                                          torch::zeros({2, 1, 1, 1}), LossWeights{});
  EXPECT_NEAR(negative.focal.item<double>(), 0.75 * std::pow(sig(0.3), 2.0) * -std::log(1 - sig(0.3)), 1e-6);
}

TEST(Loss, SubsetsWeightedByTheirShareAddUpToTheImagesLoss) {
  // What a training step with several decoder passes per image relies on; the focal term
  // follows the image's instance count, also for a subset of one.
  torch::manual_seed(3);
  const auto logits = torch::randn({5, 1, 8, 8});
  const auto target = (torch::rand({5, 1, 8, 8}) > 0.5).to(torch::kFloat);
  const double whole = segmentation_loss(logits, target, LossWeights{}).total.item<double>();
  double summed = 0;
  for (const auto& [first, count] : {std::pair{0, 2}, {2, 2}, {4, 1}}) {
    const auto part = segmentation_loss(logits.narrow(0, first, count), target.narrow(0, first, count),
                                        LossWeights{}, /*image_instances=*/5);
    EXPECT_GT(part.focal.item<double>(), 0.0);
    summed += part.total.item<double>() * count / 5.0;
  }
  EXPECT_NEAR(summed, whole, 1e-6);
}

TEST(Metrics, IouAndDicePerInstance) {
  auto pred = torch::zeros({3, 4, 4}, torch::kBool);
  auto truth = torch::zeros({3, 4, 4}, torch::kBool);
  pred[0].slice(0, 0, 2).fill_(true);   // 8 px
  truth[0].slice(0, 1, 3).fill_(true);  // 8 px, 4 shared
  truth[1].fill_(true);                 // nothing predicted
  const auto s = score_instances(pred, truth);
  EXPECT_DOUBLE_EQ(s[0].iou, 4.0 / 12.0);
  EXPECT_DOUBLE_EQ(s[0].dice, 8.0 / 16.0);
  EXPECT_DOUBLE_EQ(s[1].iou, 0.0);
  EXPECT_DOUBLE_EQ(s[2].iou, 1.0);  // both empty
}
