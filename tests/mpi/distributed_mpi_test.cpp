// The collectives and the flat gradient buffer across real ranks: run under
// `mpiexec -np N` (N >= 1; the mismatch tests need 2). The exit status is non-zero on
// every rank when a test failed on any rank.
//
// `distributed_mpi_test --abort-from-last-rank`: the last rank calls Environment::abort
// while the others wait in a barrier; the job must end at once with a non-zero status.
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "distributed/communicator.h"
#include "distributed/environment.h"
#include "distributed/gradient_buffer.h"
#include "distributed/mpi_communicator.h"
#include "methods/trainable.h"

namespace dist = sparser::distributed;
namespace methods = sparser::methods;

namespace {

dist::Environment* environment = nullptr;
dist::Communicator* communicator = nullptr;

class Distributed : public ::testing::Test {
 protected:
  const dist::Environment& env() const { return *environment; }
  dist::Communicator& comm() const { return *communicator; }
  int rank() const { return environment->rank(); }
  int world() const { return environment->world_size(); }
};

// Ranks other than 0 print only their failures, prefixed with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed())
      std::cerr << "rank " << rank_ << ": " << (result.file_name() ? result.file_name() : "?") << ":"
                << result.line_number() << ": " << result.message() << std::endl;
  }
  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::cerr << "rank " << rank_ << ": FAILED " << info.test_suite_name() << "." << info.name() << std::endl;
  }

 private:
  int rank_;
};

torch::nn::Sequential small_model(uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::Sequential model(torch::nn::Linear(4, 8), torch::nn::Tanh(), torch::nn::Linear(8, 1));
  model->to(torch::kFloat64);
  return model;
}

torch::Tensor flattened(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  for (const auto& t : tensors) flat.push_back(t.detach().reshape(-1));
  return torch::cat(flat);
}

std::vector<double> to_vector(const torch::Tensor& tensor) {
  const auto contiguous = tensor.to(torch::kFloat64).contiguous();
  return {contiguous.data_ptr<double>(), contiguous.data_ptr<double>() + contiguous.numel()};
}

}  // namespace

TEST_F(Distributed, EnvironmentDescribesTheLaunch) {
  EXPECT_GE(rank(), 0);
  EXPECT_LT(rank(), world());
  EXPECT_EQ(env().is_root(), rank() == 0);
  if (const char* launched = std::getenv("OMPI_COMM_WORLD_SIZE")) EXPECT_EQ(world(), std::atoi(launched));
  EXPECT_GE(env().local_rank(), 0);
  EXPECT_LT(env().local_rank(), env().local_size());
  EXPECT_LE(env().local_size(), world());
  // The test launches put every rank on one node.
  EXPECT_EQ(env().local_size(), world());
  EXPECT_EQ(env().local_rank(), rank());
  EXPECT_EQ(comm().allreduce_sum(env().local_rank()), world() * (world() - 1) / 2.0);

  const char* omp = std::getenv("OMP_NUM_THREADS");
  const int64_t expected_threads =
      omp ? std::atoll(omp)
          : std::max<int64_t>(1, std::max(1u, std::thread::hardware_concurrency()) / env().local_size());
  EXPECT_EQ(env().intra_op_threads(), expected_threads);
  EXPECT_EQ(torch::get_num_threads(), expected_threads);
#if SPARSER_WITH_CUDA
  if (torch::cuda::is_available()) {
    EXPECT_EQ(env().device(), torch::Device(torch::kCUDA, env().local_rank() % torch::cuda::device_count()));
    return;
  }
#endif
  EXPECT_TRUE(env().device().is_cpu());
}

TEST_F(Distributed, FactoryPicksMpiForTheCpu) {
  const auto made = dist::make_communicator(env(), torch::kCPU);
  EXPECT_NE(dynamic_cast<dist::MpiCommunicator*>(made.get()), nullptr);
  EXPECT_TRUE(made->any(rank() == 0));
}

TEST_F(Distributed, AllreduceSumOfKnownValues) {
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    // Rank r holds (r + 1) * [0, 1, 2, 3, 4]; the sum is world (world + 1) / 2 * [0, ..., 4].
    auto values = torch::arange(5, dtype) * (rank() + 1);
    comm().allreduce_sum_(values);
    EXPECT_TRUE(torch::equal(values, torch::arange(5, dtype) * (world() * (world() + 1) / 2))) << values;
  }
}

TEST_F(Distributed, AllreduceSumOfALargeTensor) {
  auto values = torch::full({3'000'000}, static_cast<float>(rank() + 1));
  comm().allreduce_sum_(values);
  EXPECT_EQ(values.min().item<float>(), static_cast<float>(world() * (world() + 1) / 2));
  EXPECT_EQ(values.max().item<float>(), static_cast<float>(world() * (world() + 1) / 2));
}

TEST_F(Distributed, AllreduceSumRejectsWhatItCannotReduce) {
  auto integers = torch::arange(4);
  EXPECT_THROW(comm().allreduce_sum_(integers), std::invalid_argument);
  auto strided = torch::zeros({4, 4}).t();
  EXPECT_THROW(comm().allreduce_sum_(strided), std::invalid_argument);
}

TEST_F(Distributed, BroadcastFromEveryRoot) {
  for (int root = 0; root < world(); ++root) {
    auto floats = torch::full({3, 2}, static_cast<double>(rank()), torch::kFloat64);
    auto integers = torch::full({7}, rank(), torch::kInt64);
    comm().broadcast_(floats, root);
    comm().broadcast_(integers, root);
    EXPECT_TRUE(torch::equal(floats, torch::full({3, 2}, static_cast<double>(root), torch::kFloat64)));
    EXPECT_TRUE(torch::equal(integers, torch::full({7}, root, torch::kInt64)));
  }
  auto any_tensor = torch::zeros({1});
  EXPECT_THROW(comm().broadcast_(any_tensor, world()), std::invalid_argument);
}

TEST_F(Distributed, AllgatherOfUnequalLengthsIsInRankOrder) {
  // Rank r contributes r values (rank 0 none): 100 r + 0, 100 r + 1, ...
  std::vector<double> local;
  for (int k = 0; k < rank(); ++k) local.push_back(100.0 * rank() + k);
  std::vector<double> expected;
  for (int r = 0; r < world(); ++r)
    for (int k = 0; k < r; ++k) expected.push_back(100.0 * r + k);
  EXPECT_EQ(comm().allgather_doubles(local), expected);
}

TEST_F(Distributed, AllreduceSum) { EXPECT_EQ(comm().allreduce_sum(rank() + 1.0), world() * (world() + 1) / 2.0); }

TEST_F(Distributed, AnyIsTrueWhenOneRankIsTrue) {
  EXPECT_FALSE(comm().any(false));
  EXPECT_TRUE(comm().any(true));
  EXPECT_TRUE(comm().any(rank() == world() - 1));
  EXPECT_TRUE(comm().any(rank() == 0));
  comm().barrier();
}

TEST_F(Distributed, CheckConsistentPassesWhenRanksAgree) {
  EXPECT_NO_THROW(comm().check_consistent(0x1234, "the test value"));
}

TEST_F(Distributed, CheckConsistentThrowsOnEveryRankNamingTheOddRank) {
  if (world() < 2) GTEST_SKIP() << "needs two ranks";
  const uint64_t value = rank() == world() - 1 ? 0xbad : 0x900d;
  try {
    comm().check_consistent(value, "the test value");
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("the test value"), std::string::npos) << message;
    EXPECT_NE(message.find("rank " + std::to_string(world() - 1) + " has 0xbad"), std::string::npos) << message;
  }
  // The job goes on: the ranks are still in step.
  EXPECT_EQ(comm().allreduce_sum(1.0), world());
}

TEST_F(Distributed, CheckConsistentCatchesADifferentTrainableLayout) {
  if (world() < 2) GTEST_SKIP() << "needs two ranks";
  // The last rank's model has a wider hidden layer, as if built from another config.
  torch::nn::Sequential model(torch::nn::Linear(4, rank() == world() - 1 ? 9 : 8), torch::nn::Linear(8, 1));
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  EXPECT_THROW(comm().check_consistent(grads.layout_hash(), "the trainable tensors"), std::runtime_error);
}

TEST_F(Distributed, AveragedGradientsEqualTheCombinedBatchGradient) {
  constexpr int64_t kPerRank = 3;
  torch::manual_seed(99);  // the same data on every rank; each takes its own rows
  const auto inputs = torch::randn({world() * kPerRank, 4}, torch::kFloat64);
  const auto targets = torch::randn({world() * kPerRank, 1}, torch::kFloat64);

  auto reference = small_model(5);
  torch::mse_loss(reference->forward(inputs), targets).backward();
  std::vector<torch::Tensor> reference_grads;
  for (const auto& p : reference->parameters()) reference_grads.push_back(p.grad());

  auto model = small_model(5);
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  comm().check_consistent(grads.layout_hash(), "the test model's trainable tensors");
  grads.zero_();
  const auto rows = torch::indexing::Slice(rank() * kPerRank, (rank() + 1) * kPerRank);
  torch::mse_loss(model->forward(inputs.index({rows})), targets.index({rows})).backward();
  comm().allreduce_sum_(grads.flat());
  grads.flat().div_(world());

  const auto expected = flattened(reference_grads);
  EXPECT_LE((grads.flat() - expected).abs().max().item<double>(), 1e-6);
  // Every rank holds the same mean, bit for bit, or their parameters would drift apart.
  const auto all = comm().allgather_doubles(to_vector(grads.flat()));
  const auto mine = to_vector(grads.flat());
  for (int r = 0; r < world(); ++r)
    EXPECT_TRUE(std::equal(mine.begin(), mine.end(), all.begin() + r * static_cast<int64_t>(mine.size())))
        << "rank " << r << " holds a different mean";
}

TEST_F(Distributed, BroadcastParametersMakesDifferentInitialisationsEqual) {
  auto model = small_model(1000 + static_cast<uint64_t>(rank()));
  const auto initial = flattened(model->parameters()).clone();
  dist::FlatGradients grads(methods::trainable_parameters(*model));
  grads.broadcast_parameters(comm());

  const auto now = to_vector(flattened(model->parameters()));
  const auto all = comm().allgather_doubles(now);
  const std::vector<double> from_root(all.begin(), all.begin() + static_cast<int64_t>(now.size()));
  EXPECT_EQ(now, from_root);
  if (rank() == 0) EXPECT_TRUE(torch::equal(flattened(model->parameters()), initial));
  if (world() > 1 && rank() != 0) EXPECT_FALSE(torch::equal(flattened(model->parameters()), initial));
  // Autograd still tracks the parameters after the in-place copy.
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad() && p.is_leaf());
}

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  dist::MpiCommunicator comm(env);
  if (argc > 1 && std::string(argv[1]) == "--abort-from-last-rank") {
    if (env.rank() == env.world_size() - 1) env.abort("aborting on purpose (--abort-from-last-rank)");
    comm.barrier();  // never completes: the last rank does not come
    std::cerr << "rank " << env.rank() << ": left the barrier although a rank aborted\n";
    return 0;
  }

  ::testing::InitGoogleTest(&argc, argv);
  if (!env.is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(env.rank()));
  }
  environment = &env;
  communicator = &comm;
  const bool failed_here = RUN_ALL_TESTS() != 0;
  const bool failed_anywhere = comm.any(failed_here);
  if (failed_anywhere && !failed_here) std::cerr << "rank " << env.rank() << ": tests failed on another rank\n";
  return failed_anywhere ? 1 : 0;
}
