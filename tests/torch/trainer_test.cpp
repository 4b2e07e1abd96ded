// End-to-end tests of sparser_run on the tiny fixture SAM and synthetic shards: real
// processes, real MPI launches, real files.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "checkpoint/state_dict.h"
#include "data/manifest.h"
#include "data/shard_reader.h"
#include "data/shard_writer.h"
#include "methods/step_scope.h"
#include "methods/trainable.h"
#include "test_models.h"
#include "train/evaluate.h"
#include "train/precision.h"
#include "train/training_step.h"
#include "util/file_lock.h"

namespace fs = std::filesystem;
using namespace sparser;

namespace {

const std::string kBin = SPARSER_BIN_DIR;

struct CommandResult {
  int exit_code;
  std::string output;
};

CommandResult run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  char buffer[4096];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = pipe ? ::pclose(pipe) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A scratch directory with synthetic shards and a tiny-model config, per test.
class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("sparser_trainer_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const auto prep = run(kBin + "/sparser_prep synthetic --out " + (dir_ / "data").string() +
                          " --train-images 8 --val-images 4 --image-size 64 --seed 3");
    ASSERT_EQ(prep.exit_code, 0) << prep.output;
    std::ifstream fixture(fixtures::fixture_dir() + "/config.toml");
    std::stringstream model;
    model << fixture.rdbuf();
    std::ofstream config(config_path());
    config << "[run]\nname = \"t\"\noutput_dir = \"" << (dir_ / "runs").string() << "\"\nlog_every = 1\n"
           << model.str() << "checkpoint = \"" << fixtures::fixture_dir() << "/weights.pth\"\n\n"
           << "[method]\nname = \"lora\"\n\n"
           << "[data]\ntrain = \"" << (dir_ / "data/train.manifest.json").string() << "\"\nval = \""
           << (dir_ / "data/val.manifest.json").string() << "\"\nmax_instances = 2\nbox_jitter = 5\nworkers = 2\n\n"
           << "[train]\nepochs = 2\nlr = 1e-3\ncheckpoint_every = 1\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string config_path() const { return (dir_ / "config.toml").string(); }
  std::string run_dir(const std::string& output, const std::string& id = "lora-seed=1") const {
    return (dir_ / output / "t" / id).string();
  }
  std::string sparser_run(const std::string& args, int ranks = 1) const {
    const std::string launcher = ranks > 1 ? std::string(SPARSER_MPIEXEC) + " " + std::to_string(ranks) + " " +
                                                 SPARSER_MPIEXEC_FLAGS + " "
                                           : "";
    return "env OMP_NUM_THREADS=1 " + launcher + kBin + "/sparser_run " + config_path() + " " + args;
  }
  void expect_resume_equals_uninterrupted(const std::string& args, const std::string& id);

  fs::path dir_;
};

checkpoint::StateDict trained(const std::string& run_dir) {
  return checkpoint::read_state_dict(run_dir + "/trained.pth");
}

double max_difference(const checkpoint::StateDict& a, const checkpoint::StateDict& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    worst = std::max(worst, (a[i].second - b[i].second).abs().max().item<double>());
  }
  return worst;
}

// (type, step) of each record of a run's metrics.jsonl that has a step.
std::vector<std::pair<std::string, int64_t>> records(const std::string& run_dir) {
  std::vector<std::pair<std::string, int64_t>> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto r = nlohmann::json::parse(line);
    if (r.contains("step")) out.emplace_back(r["type"], r["step"]);
  }
  return out;
}

nlohmann::json summary(const std::string& run_dir) {
  std::ifstream in(run_dir + "/summary.json");
  return nlohmann::json::parse(in);
}

std::vector<nlohmann::json> step_records(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (auto r = nlohmann::json::parse(line); r["type"] == "step") out.push_back(std::move(r));
  return out;
}

// Rewrites a split's shards with the instances of `samples` (indices in the split)
// removed, as a hand-made shard may hold images without instances; the manifest's counts
// and checksums follow.
void remove_instances(const std::string& manifest_path, const std::set<int64_t>& samples) {
  auto manifest = data::read_manifest(manifest_path);
  int64_t index = 0;
  for (auto& shard : manifest.shards) {
    const auto path = (fs::path(manifest_path).parent_path() / shard.file).string();
    std::vector<data::EncodedSample> rewritten;
    std::string dataset;
    {
      const data::ShardReader reader(path);
      dataset = reader.dataset_name();
      for (int64_t i = 0; i < reader.size(); ++i, ++index) {
        rewritten.push_back(reader.read(i));
        if (samples.count(index)) rewritten.back().instances.clear();
      }
    }
    data::ShardWriter writer(path, dataset);
    for (auto& sample : rewritten) writer.add(std::move(sample));
    shard.num_instances = writer.num_instances();
    writer.finish();
    shard.bytes = static_cast<int64_t>(fs::file_size(path));
    shard.crc32 = data::file_crc32(path);
  }
  data::write_manifest(manifest, manifest_path);
}

}  // namespace

TEST_F(TrainerTest, TwoRanksEqualOneRankWithTheCombinedBatch) {
  const auto two = run(sparser_run("--set run.output_dir=" + (dir_ / "np2").string(), 2));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto one = run(sparser_run("--set run.output_dir=" + (dir_ / "np1").string() + " --set train.images_per_step=2"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_LE(max_difference(trained(run_dir("np2")), trained(run_dir("np1"))), 1e-5);
  // Both ran training and a full evaluation.
  for (const auto* output : {"np1", "np2"}) {
    const auto s = summary(run_dir(output));
    EXPECT_EQ(s["status"], "completed");
    EXPECT_EQ(s["trainable"]["by_kind"]["lora"], 4 * 2 * (4 * 48 + 48 * 4));
    EXPECT_TRUE(s["final"].contains("miou"));
  }
  EXPECT_EQ(summary(run_dir("np2"))["world_size"], 2);
  EXPECT_NEAR(summary(run_dir("np2"))["final"]["miou"].get<double>(),
              summary(run_dir("np1"))["final"]["miou"].get<double>(), 1e-4);
}

TEST_F(TrainerTest, ImagesWithoutInstancesAreSkippedAlikeOnAnyRankCount) {
  // Half the training images have no instances. A step's gradient is the mean over the
  // images all ranks trained: a rank that skips its image does not halve the other's.
  remove_instances((dir_ / "data/train.manifest.json").string(), {0, 1, 2, 3});
  const auto two = run(sparser_run("--set run.output_dir=" + (dir_ / "np2").string(), 2));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto one =
      run(sparser_run("--set run.output_dir=" + (dir_ / "np1").string() + " --set train.images_per_step=2"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_LE(max_difference(trained(run_dir("np2")), trained(run_dir("np1"))), 1e-5);

  const auto steps = step_records(run_dir("np2"));
  const auto reference = step_records(run_dir("np1"));
  ASSERT_EQ(steps.size(), reference.size());
  std::map<int64_t, int> steps_by_images;
  int64_t images = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto n = steps[i]["images"].get<int64_t>();
    ++steps_by_images[n];
    images += n;
    EXPECT_EQ(n, reference[i]["images"]) << steps[i];
    // The loss is the mean over the step's images, absent when it had none.
    EXPECT_EQ(steps[i].contains("loss"), n > 0) << steps[i];
    if (n > 0) EXPECT_NEAR(steps[i]["loss"].get<double>(), reference[i]["loss"].get<double>(), 1e-5) << steps[i];
  }
  // The sampler's order (seed 1) gives steps with one image and steps with none.
  EXPECT_GT(steps_by_images[1], 0);
  EXPECT_GT(steps_by_images[0], 0);
  EXPECT_EQ(images, 2 * 4) << "two epochs of the 4 images with instances";
  EXPECT_EQ(summary(run_dir("np2"))["trained_images"], images);
  EXPECT_EQ(summary(run_dir("np1"))["trained_images"], images);
}

TEST_F(TrainerTest, AStepWithoutImagesLeavesTheWeightsAsTheyAre) {
  // No optimiser step where no rank has an image: weight decay, which would otherwise
  // move the weights on zero gradients, changes nothing.
  remove_instances((dir_ / "data/train.manifest.json").string(), {0, 1, 2, 3, 4, 5, 6, 7});
  for (const auto* decay : {"0", "0.5"}) {
    const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / decay).string() +
                                   " --set train.epochs=1 --set train.weight_decay=" + decay + " --progress lines"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("step 8/8  epoch 1  loss -  0.00 img/s"), std::string::npos) << r.output;
    EXPECT_EQ(summary(run_dir(decay))["trained_images"], 0);
    for (const auto& step : step_records(run_dir(decay))) {
      EXPECT_EQ(step["images"], 0) << step;
      EXPECT_FALSE(step.contains("loss")) << step;
    }
  }
  EXPECT_EQ(max_difference(trained(run_dir("0")), trained(run_dir("0.5"))), 0.0);
}

TEST_F(TrainerTest, AnEvaluationSplitWithoutInstancesIsRefusedBeforeTraining) {
  // Evaluating it would record every metric as 0 after the whole training.
  remove_instances((dir_ / "data/val.manifest.json").string(), {0, 1, 2, 3});
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "runs").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("val.manifest.json: the evaluation split has no instances"), std::string::npos) << r.output;
  EXPECT_EQ(summary(run_dir("runs"))["status"], "failed");
  EXPECT_EQ(summary(run_dir("runs"))["global_step"], 0);
}

TEST_F(TrainerTest, SameSeedGivesBitwiseIdenticalResults) {
  for (const auto* output : {"a", "b"}) {
    const auto r = run(sparser_run(std::string("--set run.output_dir=") + (dir_ / output).string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  EXPECT_EQ(max_difference(trained(run_dir("a")), trained(run_dir("b"))), 0.0);
  const auto c = run(sparser_run("--set run.output_dir=" + (dir_ / "c").string() + " --set run.seeds=[2]"));
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_GT(max_difference(trained(run_dir("a")), trained(run_dir("c", "lora-seed=2"))), 0.0);
  // The same holds for the same number of ranks.
  for (const auto* output : {"np2a", "np2b"}) {
    const auto r = run(sparser_run(std::string("--set run.output_dir=") + (dir_ / output).string(), 2));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  EXPECT_EQ(max_difference(trained(run_dir("np2a")), trained(run_dir("np2b"))), 0.0);
  EXPECT_EQ(summary(run_dir("np2a"))["final"], summary(run_dir("np2b"))["final"]);
}

TEST_F(TrainerTest, ResumeRunsTheEvaluationACrashCutShort) {
  const std::string common = " --set train.checkpoint_every=0";
  const auto straight = run(sparser_run("--set run.output_dir=" + (dir_ / "x").string() + common));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const auto reference = summary(run_dir("x"));
  // As if the run had died during its last evaluation: after the epoch's checkpoint,
  // before the evaluation record and the summary.
  const auto metrics_path = run_dir("x") + "/metrics.jsonl";
  std::vector<std::string> kept;
  {
    std::ifstream in(metrics_path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    size_t last_eval = lines.size();
    for (size_t i = 0; i < lines.size(); ++i)
      if (nlohmann::json::parse(lines[i]).value("type", "") == "eval") last_eval = i;
    ASSERT_LT(last_eval, lines.size());
    kept.assign(lines.begin(), lines.begin() + static_cast<std::ptrdiff_t>(last_eval));
  }
  {
    std::ofstream out(metrics_path);
    for (const auto& line : kept) out << line << "\n";
  }
  fs::remove(run_dir("x") + "/summary.json");
  fs::remove(run_dir("x") + "/trained.pth");

  const auto resumed = run(sparser_run("--set run.output_dir=" + (dir_ / "x").string() + common));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("eval after epoch 2"), std::string::npos) << resumed.output;
  const auto again = summary(run_dir("x"));
  EXPECT_EQ(again["status"], "completed");
  EXPECT_EQ(again["final"], reference["final"]);
  EXPECT_EQ(again["best"], reference["best"]);
  EXPECT_TRUE(fs::exists(run_dir("x") + "/trained.pth"));
}

// Killed in epoch 2, after epoch 1's checkpoint and evaluation: every rank must know the
// evaluation is logged (only rank 0 reads the log). Rank 0 used to skip it while rank 1
// ran it, and the ranks met in different collectives: a segfault on every retry.
TEST_F(TrainerTest, MultiRankResumeAfterAnEpochsLoggedEvaluation) {
  const std::string common = " --set run.output_dir=" + (dir_ / "x").string() + " --set train.checkpoint_every=0";
  const auto straight = run(sparser_run(common, 2));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const auto reference = summary(run_dir("x"));
  const auto reference_weights = trained(run_dir("x"));
  // 8 images on 2 ranks: epochs end at steps 4 and 8, and the last two checkpoints are kept.
  ASSERT_TRUE(fs::exists(run_dir("x") + "/checkpoints/step_00000004"));
  fs::remove_all(run_dir("x") + "/checkpoints/step_00000008");
  fs::remove(run_dir("x") + "/summary.json");
  fs::remove(run_dir("x") + "/trained.pth");

  const auto resumed = run("timeout 300 " + sparser_run(common, 2));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("eval after epoch 1"), std::string::npos) << resumed.output;
  const auto again = summary(run_dir("x"));
  EXPECT_EQ(again["status"], "completed");
  EXPECT_EQ(again["final"], reference["final"]);
  EXPECT_EQ(again["best"], reference["best"]);
  EXPECT_EQ(max_difference(trained(run_dir("x")), reference_weights), 0.0);
}

TEST_F(TrainerTest, AResumeOnAnotherRankCountIsRefusedAndLeavesTheRunAsItWas) {
  const std::string out = "--set run.output_dir=" + (dir_ / "runs").string();
  ASSERT_EQ(run(sparser_run(out + " --set train.epochs=1")).exit_code, 0);
  // As if stopped after its last checkpoint.
  auto status = summary(run_dir("runs"));
  status["status"] = "interrupted";
  std::ofstream(run_dir("runs") + "/summary.json") << status.dump();
  const auto two = run(sparser_run(out + " --set train.epochs=1", 2));
  EXPECT_NE(two.exit_code, 0);
  EXPECT_NE(two.output.find("saved with 1 rank(s); resume with the same number (now 2)"), std::string::npos)
      << two.output;
  EXPECT_EQ(summary(run_dir("runs")), status) << "the refused job changed summary.json";
  std::ifstream log(run_dir("runs") + "/train.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("refused: rank "), std::string::npos) << text;
  // On its own rank count the run goes on.
  const auto one = run(sparser_run(out + " --set train.epochs=1"));
  EXPECT_EQ(one.exit_code, 0) << one.output;
  EXPECT_EQ(summary(run_dir("runs"))["status"], "completed");
}

// A checkpoint's position (epoch, step) means nothing in other samples: a split prepared
// again while the run was stopped is refused, naming what changed; it was trained on.
TEST_F(TrainerTest, AResumeOnASplitPreparedAgainIsRefused) {
  const std::string out = "--set run.output_dir=" + (dir_ / "runs").string() + " --set train.epochs=1";
  ASSERT_EQ(run(sparser_run(out)).exit_code, 0);
  auto status = summary(run_dir("runs"));  // as if stopped after its last checkpoint
  status["status"] = "interrupted";
  std::ofstream(run_dir("runs") + "/summary.json") << status.dump();
  const auto prep = run(kBin + "/sparser_prep synthetic --overwrite --out " + (dir_ / "data").string() +
                        " --train-images 8 --val-images 4 --image-size 64 --seed 4");
  ASSERT_EQ(prep.exit_code, 0) << prep.output;
  const auto resumed = run(sparser_run(out));
  EXPECT_NE(resumed.exit_code, 0);
  EXPECT_NE(resumed.output.find("train.manifest.json holds other samples than the split"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("shard: train-00000.h5 samples=8 crc32="), std::string::npos) << resumed.output;
  EXPECT_EQ(summary(run_dir("runs")), status) << "the refused job changed summary.json";
}

TEST_F(TrainerTest, ARunAnotherProcessTrainsIsSkipped) {
  const std::string args = "--set run.output_dir=" + (dir_ / "x").string();
  fs::create_directories(run_dir("x"));
  {
    const auto held = util::FileLock::try_acquire(run_dir("x") + "/.lock");  // as the job training it
    ASSERT_TRUE(held.has_value());
    const auto second = run(sparser_run(args, 2));
    EXPECT_EQ(second.exit_code, 0) << second.output;
    EXPECT_NE(second.output.find("skipping lora-seed=1: another process is training it"), std::string::npos)
        << second.output;
    EXPECT_FALSE(fs::exists(run_dir("x") + "/metrics.jsonl"));
    EXPECT_FALSE(fs::exists(run_dir("x") + "/checkpoints"));
  }
  const auto after = run(sparser_run(args));
  ASSERT_EQ(after.exit_code, 0) << after.output;
  EXPECT_EQ(summary(run_dir("x"))["status"], "completed");
  // --force empties the directory, but keeps the lock file others may hold.
  const auto forced = run(sparser_run(args + " --force --set train.epochs=1"));
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_TRUE(fs::exists(run_dir("x") + "/.lock"));
}

TEST_F(TrainerTest, SummaryRecordsSeedsTotalsAndProvenance) {
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "s").string() + " --set run.seeds=[1,2] --index 0" +
                                 " --set eval.per_class=true --set eval.metrics=[\\\"dsc\\\"]"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = summary(run_dir("s"));
  EXPECT_EQ(s["seeds"], nlohmann::json::array({1, 2}));
  // 8 training images, 2 epochs, one rank.
  EXPECT_EQ(s["trained_images"], 16);
  EXPECT_GT(s["train_images_per_second"].get<double>(), 0.0);
  EXPECT_GT(s["wall_time_seconds"].get<double>(), 0.0);
  EXPECT_FALSE(s["git_commit"].get<std::string>().empty());
  for (const auto* library : {"libtorch", "mpi", "opencv", "hdf5", "blas"})
    EXPECT_FALSE(s["versions"].value(library, "").empty()) << library;
  // Synthetic shapes have classes 1 (ellipses) and 2 (rectangles), named in the manifest:
  // the overall DSC is their instance-weighted mean, so it lies between them.
  const auto& per_class = s["final"]["per_class_dsc"];
  ASSERT_EQ(per_class.size(), 2u) << s.dump(2);
  ASSERT_TRUE(per_class.contains("ellipse") && per_class.contains("rectangle")) << s.dump(2);
  const double a = per_class["ellipse"].get<double>(), b = per_class["rectangle"].get<double>();
  const double dsc = s["final"]["dsc"].get<double>();
  EXPECT_GE(dsc, std::min(a, b) - 1e-12);
  EXPECT_LE(dsc, std::max(a, b) + 1e-12);

  // An epoch's last step may take fewer images: 8 in steps of 3, 3 and 2 (it counted 9).
  const auto partial = run(sparser_run("--set run.output_dir=" + (dir_ / "p").string() +
                                       " --set train.images_per_step=3 --set train.epochs=1"));
  ASSERT_EQ(partial.exit_code, 0) << partial.output;
  EXPECT_EQ(summary(run_dir("p"))["trained_images"], 8);
}

TEST_F(TrainerTest, ALauncherWhoseProcessesMpiDoesNotSeeIsRefused) {
  // As srun with an MPI lacking Slurm support: 2 tasks launched, each a 1-rank job.
  const auto r = run("env SLURM_STEP_NUM_TASKS=2 " + sparser_run("--set run.output_dir=" + (dir_ / "srun").string()));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the launcher started 2 processes but MPI sees 1 rank(s)"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(run_dir("srun")));
}

TEST_F(TrainerTest, Bf16AutocastTrainsCloseToFloat32) {
  const auto fp32 = run(sparser_run("--set run.output_dir=" + (dir_ / "fp32").string()));
  ASSERT_EQ(fp32.exit_code, 0) << fp32.output;
  const auto bf16 = run(sparser_run("--set run.output_dir=" + (dir_ / "bf16").string() + " --set train.precision=bf16"));
  ASSERT_EQ(bf16.exit_code, 0) << bf16.output;
  EXPECT_NE(bf16.output.find("precision bf16"), std::string::npos) << bf16.output;
  // Lower-precision matrix products change the numbers, but not by much.
  const double difference = max_difference(trained(run_dir("fp32")), trained(run_dir("bf16")));
  EXPECT_GT(difference, 0.0);
  EXPECT_LT(difference, 0.05);
  EXPECT_NEAR(summary(run_dir("bf16"))["final"]["miou"].get<double>(),
              summary(run_dir("fp32"))["final"]["miou"].get<double>(), 0.1);
}

TEST(DecodeLowRes, RunsTheDecoderInFloat32UnderBf16Autocast) {
  // train.precision = "bf16" puts the encoder alone in bfloat16: with the decoder in it
  // too, SAM-PARSER on the synthetic shapes stayed at all-background masks for many
  // more epochs (docs/training.md). The model itself still runs under autocast.
  auto setup = fixtures::tiny_model();
  auto& sam = *setup.sam;
  torch::NoGradGuard no_grad;
  const auto embedding = sam.encode(fixtures::fixture_input());
  const auto boxes = torch::tensor({{10.f, 20.f, 90.f, 100.f}, {30.f, 5.f, 60.f, 70.f}});
  const auto plain = train::decode_low_res(sam, embedding, boxes, torch::kCPU);
  torch::Tensor decoded, model_under_autocast;
  {
    train::AutocastScope autocast(torch::kCPU, /*enabled=*/true);
    decoded = train::decode_low_res(sam, embedding, boxes, torch::kCPU);
    model::Prompts prompts;
    prompts.boxes = boxes;
    model_under_autocast = sam.decode(embedding, prompts, /*multimask_output=*/false).low_res_logits;
  }
  EXPECT_TRUE(torch::equal(decoded, plain));
  EXPECT_EQ(model_under_autocast.scalar_type(), torch::kBFloat16);
  // The tiny model's logits (|max| 0.03) are small differences of larger terms, so
  // bfloat16's rounding of the terms shows at percents of the result: under 5 % of the max
  // on the CPUs this test ran on before, 6.2 % on an AMD EPYC with AVX512-BF16 kernels.
  const auto difference = (model_under_autocast.to(torch::kFloat) - plain).abs().max().item<double>();
  EXPECT_GT(difference, 0.0);
  EXPECT_LT(difference, 0.15 * plain.abs().max().item<double>());
}

// Runs `args` uninterrupted and again stopped by SIGTERM inside epoch 2 and resumed: the
// trained tensors, metrics and logs of run `id` must be the same.
void TrainerTest::expect_resume_equals_uninterrupted(const std::string& args, const std::string& id) {
  const std::string common = " --set train.epochs=4 " + args;
  const auto straight = run(sparser_run("--set run.output_dir=" + (dir_ / "straight").string() + common));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;

  // Start the same run, stop it with SIGTERM once it is inside epoch 2.
  const auto stopped_dir = run_dir("stopped", id);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c",
            ("exec " + sparser_run("--set run.output_dir=" + (dir_ / "stopped").string() + common) + " > /dev/null 2>&1")
                .c_str(),
            nullptr);
    ::_exit(127);
  }
  bool in_epoch_two = false;
  for (int i = 0; i < 20000 && !in_epoch_two; ++i) {
    std::ifstream metrics(stopped_dir + "/metrics.jsonl");
    for (std::string line; std::getline(metrics, line);)
      if (line.find("\"epoch\":1") != std::string::npos && line.find("\"type\":\"step\"") != std::string::npos)
        in_epoch_two = true;
    if (!in_epoch_two) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(in_epoch_two) << "the run never reached epoch 2";
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 75) << "a stopped run exits with EX_TEMPFAIL after saving";
  EXPECT_EQ(summary(stopped_dir)["status"], "interrupted");
  EXPECT_FALSE(fs::exists(stopped_dir + "/trained.pth"));

  const auto resumed = run(sparser_run("--set run.output_dir=" + (dir_ / "stopped").string() + common + " --resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  EXPECT_EQ(max_difference(trained(run_dir("straight", id)), trained(stopped_dir)), 0.0);
  EXPECT_EQ(summary(stopped_dir)["final"], summary(run_dir("straight", id))["final"]);
  EXPECT_EQ(summary(stopped_dir)["best"], summary(run_dir("straight", id))["best"]);
  // The log holds each step and evaluation once, as the uninterrupted run's does.
  EXPECT_EQ(records(stopped_dir), records(run_dir("straight", id)));

  // A completed run is skipped.
  const auto again = run(sparser_run("--set run.output_dir=" + (dir_ / "stopped").string() + common));
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.output.find("skipping"), std::string::npos) << again.output;
}

TEST_F(TrainerTest, ResumeAfterSigtermEqualsAnUninterruptedRun) {
  expect_resume_equals_uninterrupted("", "lora-seed=1");
}

// Starts sparser_run on a pipe as its config with `args`, sends SIGTERM once it has the pipe
// open (inside main, before MPI), then writes the config: the status waitpid gives.
int status_after_sigterm_while_reading_the_config(const std::string& pipe, const std::string& config_path,
                                                  const std::string& args) {
  EXPECT_EQ(::mkfifo(pipe.c_str(), 0600), 0);
  // Held open for writing (and reading, so this open does not wait): sparser_run's open returns
  // at once and its read waits for the text.
  const int writer = ::open(pipe.c_str(), O_RDWR | O_CLOEXEC);
  EXPECT_GE(writer, 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c",
            ("exec env OMP_NUM_THREADS=1 " + kBin + "/sparser_run " + pipe + " " + args + " > /dev/null 2>&1").c_str(),
            nullptr);
    ::_exit(127);
  }
  // By sparser_run itself: the forked child holds the writer until its exec.
  const auto has_pipe_open = [&] {
    std::error_code error;
    const auto process = "/proc/" + std::to_string(pid);
    if (fs::read_symlink(process + "/exe", error).filename() != "sparser_run") return false;
    for (const auto& fd : fs::directory_iterator(process + "/fd", error))
      if (fs::read_symlink(fd.path(), error) == pipe) return true;
    return false;
  };
  for (int i = 0; i < 60000 && !has_pipe_open(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(has_pipe_open()) << "sparser_run never opened its config";
  ::kill(pid, SIGTERM);
  std::ifstream config(config_path);
  const std::string text((std::istreambuf_iterator<char>(config)), std::istreambuf_iterator<char>());
  EXPECT_EQ(::write(writer, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(writer);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// A SIGTERM that arrives while sparser_run still reads its config, before MPI starts, must end
// in 75 (Slurm requeues), not in the signal's death (143). The run also removes what a writer
// killed mid-write left behind.
TEST_F(TrainerTest, ASigtermBeforeTheRunStartsStillEndsInASavedInterruption) {
  const auto run_directory = run_dir("runs");
  fs::create_directories(run_directory);
  std::ofstream(run_directory + "/trained.pth.sparser-tmp.4242") << "cut";
  const int status = status_after_sigterm_while_reading_the_config((dir_ / "pipe.toml").string(), config_path(), "");
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 75);
  EXPECT_EQ(summary(run_directory)["status"], "interrupted");
  EXPECT_FALSE(fs::exists(run_directory + "/trained.pth.sparser-tmp.4242"));
}

// A command that trains nothing (--dry-run builds a model per run: minutes for a vit_h grid)
// ends at SIGTERM, as any program does, rather than finishing.
TEST_F(TrainerTest, ASigtermEndsADryRun) {
  const int status =
      status_after_sigterm_while_reading_the_config((dir_ / "pipe.toml").string(), config_path(), "--dry-run");
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
}

// FacT's dropout draws from LibTorch's generator: seeded per image from the run's seed,
// epoch and sample, its masks depend neither on the rank count nor on a resume.
TEST_F(TrainerTest, FactDropoutIsTheSameOnAnyRankCountAndAfterAResume) {
  const std::string fact = " --set 'method={ name = \"fact\", dropout = 0.5 }'";
  const auto two = run(sparser_run("--set run.output_dir=" + (dir_ / "np2").string() + fact, 2));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const auto one = run(sparser_run("--set run.output_dir=" + (dir_ / "np1").string() + fact +
                                   " --set train.images_per_step=2"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_LE(max_difference(trained(run_dir("np2", "fact-seed=1")), trained(run_dir("np1", "fact-seed=1"))), 1e-5);
  expect_resume_equals_uninterrupted(fact, "fact-seed=1");
}

// SIGKILL leaves no chance to save: the next session must still log each step and
// evaluation once. The two states are made by hand, as a kill at the right moment would.
TEST_F(TrainerTest, RestartsAfterAKillLogEachStepAndEvaluationOnce) {
  const std::string common = " --set train.checkpoint_every=8";  // 8 steps per epoch: at each epoch's end
  const auto straight = run(sparser_run("--set run.output_dir=" + (dir_ / "straight").string() + common));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const auto expected = records(run_dir("straight"));
  ASSERT_EQ(std::count(expected.begin(), expected.end(), std::make_pair(std::string("eval"), int64_t{8})), 1);

  // Killed before its first checkpoint: the records of its first steps are left behind.
  fs::create_directories(run_dir("early"));
  std::ofstream(run_dir("early") + "/metrics.jsonl") << R"({"type":"step","epoch":0,"step":1,"loss":9.9})" << "\n";
  const auto early = run(sparser_run("--set run.output_dir=" + (dir_ / "early").string() + common));
  ASSERT_EQ(early.exit_code, 0) << early.output;
  EXPECT_EQ(records(run_dir("early")), expected);

  // Killed after epoch 1's evaluation, whose checkpoint (at the epoch's last step) precedes it.
  fs::create_directories(fs::path(run_dir("late")).parent_path());
  fs::copy(run_dir("straight"), run_dir("late"), fs::copy_options::recursive);
  fs::remove_all(run_dir("late") + "/checkpoints/step_00000016");
  fs::remove(run_dir("late") + "/trained.pth");
  fs::remove(run_dir("late") + "/summary.json");
  std::string kept;
  {
    std::ifstream in(run_dir("late") + "/metrics.jsonl");
    for (std::string line; std::getline(in, line) && kept.find(R"("type":"eval")") == std::string::npos;)
      kept += line + "\n";
  }
  std::ofstream(run_dir("late") + "/metrics.jsonl") << kept;
  const auto late = run(sparser_run("--set run.output_dir=" + (dir_ / "late").string() + common + " --resume"));
  ASSERT_EQ(late.exit_code, 0) << late.output;
  EXPECT_NE(late.output.find("resumed from"), std::string::npos) << late.output;
  EXPECT_EQ(records(run_dir("late")), expected);
  EXPECT_EQ(max_difference(trained(run_dir("straight")), trained(run_dir("late"))), 0.0);
}

// A rerun into a directory that holds a completed run or a checkpoint skips or continues
// it: under another configuration that would mix two in one result, so it is refused.
TEST_F(TrainerTest, ARunKeptOrContinuedUnderAnotherConfigurationIsRefused) {
  const std::string out = "--set run.output_dir=" + (dir_ / "runs").string() + " --set train.epochs=1";
  const auto first = run(sparser_run(out));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto changed = run(sparser_run(out + " --set train.lr=5e-4 --set data.max_instances=1"));
  EXPECT_EQ(changed.exit_code, 2) << changed.output;
  EXPECT_NE(changed.output.find(run_dir("runs") + "/config.toml:\n    data.max_instances: 2 → 1\n    train.lr: 0.001 → "
                                "0.0005\n"), std::string::npos) << changed.output;
  EXPECT_NE(changed.output.find("pass --force to discard those runs"), std::string::npos) << changed.output;
  EXPECT_EQ(summary(run_dir("runs"))["status"], "completed");
  // How it runs may change: threads, loader workers, logging, checkpoint spacing.
  const auto same = run(sparser_run(out + " --threads 1 --set data.workers=1 --set run.log_every=5"
                                          " --set train.checkpoint_every=0"));
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_NE(same.output.find("skipping lora-seed=1: completed"), std::string::npos) << same.output;
  const auto forced = run(sparser_run(out + " --set train.lr=5e-4 --force"));
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  std::ifstream config(run_dir("runs") + "/config.toml");
  const std::string text((std::istreambuf_iterator<char>(config)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("lr = 0.0005"), std::string::npos) << text;
}

TEST_F(TrainerTest, WeightDecayLeavesTensorsTheLossDoesNotReach) {
  // As PyTorch's Adam, which skips a parameter whose .grad is None: the IoU head (the loss
  // has no IoU term) keeps its pretrained values. The hypernetwork MLPs of the unused
  // masks get zero gradients in the official decoder's graph, so decay moves them.
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "wd").string() +
                                 " --set method.name=decoder_only --set train.epochs=1 --set train.weight_decay=0.5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("the loss does not reach 6 trainable tensors"), std::string::npos) << r.output;
  const auto base = checkpoint::read_state_dict(fixtures::fixture_dir() + "/weights.pth");
  const auto base_value = [&](const std::string& name) {
    for (const auto& [key, value] : base)
      if (key == name) return value;
    ADD_FAILURE() << name << " is not in the base checkpoint";
    return torch::Tensor();
  };
  int iou_head = 0, unused_masks = 0;
  for (const auto& [name, value] : trained(run_dir("wd", "decoder_only-seed=1"))) {
    if (name.find("iou_prediction_head.") != std::string::npos) {
      ++iou_head;
      EXPECT_TRUE(torch::equal(value, base_value(name))) << name;
    } else if (name.find("output_hypernetworks_mlps.1.") != std::string::npos) {
      ++unused_masks;
      EXPECT_FALSE(torch::equal(value, base_value(name))) << name;
    }
  }
  EXPECT_EQ(iou_head, 6);
  EXPECT_GT(unused_masks, 0);
}

TEST_F(TrainerTest, NonFiniteLossStopsTheRunNamingStepAndSamples) {
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "nan").string() + " --set train.lr=1e30"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("non-finite loss at epoch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("samples"), std::string::npos) << r.output;
  const auto s = summary(run_dir("nan"));
  EXPECT_EQ(s["status"], "failed");
  EXPECT_TRUE(fs::exists(run_dir("nan") + "/checkpoints")) << "the last good checkpoint stays";
  // The steps before the failing one count (one image a step).
  EXPECT_GT(s["global_step"].get<int64_t>(), 0) << s.dump(2);
  EXPECT_EQ(s["trained_images"], s["global_step"]);
}

// MPI_Abort ends every rank wherever it is: the failing rank records its error itself.
TEST_F(TrainerTest, ARankOtherThanTheFirstThatFailsRecordsItsErrorInTheRunDirectory) {
  // Train image 1 undecodable (its PNG header renamed), the manifest's CRC-32 updated as
  // for a bad source image. Unshuffled, rank 1 of 2 takes images 1, 3, 5, 7.
  const auto shard = dir_ / "data/train-00000.h5";
  std::string bytes;
  {
    std::ifstream in(shard, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string png_signature = "\x89PNG\r\n\x1a\n";
  const auto second_png = bytes.find(png_signature, bytes.find(png_signature) + 1);
  ASSERT_NE(second_png, std::string::npos);
  ASSERT_EQ(bytes.substr(second_png + 12, 4), "IHDR");
  bytes.replace(second_png + 12, 4, "XXXX");
  std::ofstream(shard, std::ios::binary) << bytes;
  const auto manifest_path = dir_ / "data/train.manifest.json";
  nlohmann::json manifest;
  std::ifstream(manifest_path) >> manifest;
  manifest["shards"][0]["crc32"] = data::crc32_hex(data::file_crc32(shard.string()));
  std::ofstream(manifest_path) << manifest.dump(2);

  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "bad").string() + " --set data.shuffle=false", 2));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rank 1: "), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(run_dir("bad") + "/summary.json")) << r.output;
  const auto s = summary(run_dir("bad"));
  EXPECT_EQ(s["status"], "failed");
  const auto error = s["error"].get<std::string>();
  for (const auto* part : {"rank 1: ", "train-00000.h5", "image bytes do not decode"})
    EXPECT_NE(error.find(part), std::string::npos) << part << " is not in: " << error;
  std::ifstream log(run_dir("bad") + "/train.log");
  const std::string log_text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(log_text.find("failed: " + error), std::string::npos) << log_text;
}

TEST_F(TrainerTest, ConfigErrorsNameFileLineAndKey) {
  int lines = 0;
  {
    std::ifstream in(config_path());
    for (std::string line; std::getline(in, line);) ++lines;
    std::ofstream append(config_path(), std::ios::app);
    append << "warmup = 3\n";  // inside [train]: not a key
  }
  const auto unknown = run(sparser_run("--dry-run"));
  // The message points at the line of the key.
  EXPECT_NE(unknown.output.find(config_path() + ":" + std::to_string(lines + 1) + ": train.warmup"), std::string::npos)
      << unknown.output;
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find(config_path() + ":"), std::string::npos) << unknown.output;
  EXPECT_NE(unknown.output.find("train.warmup: unknown key"), std::string::npos) << unknown.output;

  SetUp();  // a clean config again
  const auto wrong_type = run(sparser_run("--dry-run --set train.epochs=two"));
  EXPECT_EQ(wrong_type.exit_code, 2);
  EXPECT_NE(wrong_type.output.find("train.epochs: expected an integer"), std::string::npos) << wrong_type.output;

  const auto out_of_range = run(sparser_run("--dry-run --set data.box_jitter=-1"));
  EXPECT_NE(out_of_range.output.find("data.box_jitter: must be >= 0"), std::string::npos) << out_of_range.output;

  const auto other_method_key = run(sparser_run("--dry-run --set method.layers=conv"));
  EXPECT_NE(other_method_key.output.find("method.layers: unknown key"), std::string::npos) << other_method_key.output;
}

TEST_F(TrainerTest, DryRunPrintsResolvedConfigAndCounts) {
  const auto r = run(sparser_run("--dry-run --set method.name=parser --set method.layers=conv"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("layers = [ 'conv' ]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("images_per_step = 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parser"), std::string::npos);
  EXPECT_NE(r.output.find("64"), std::string::npos) << "tiny neck: 32 + 32 σ";
}

TEST_F(TrainerTest, SweepListsStableIdsAndRunsOneIndex) {
  {
    std::ofstream append(config_path(), std::ios::app);
    append << "\n[sweep]\nmethod = [{ name = \"decoder_only\" }, { name = \"parser\", layers = \"conv\" }]\n"
           << "\"train.lr\" = [1e-3, 1e-4]\n";
  }
  const auto count = run(sparser_run("--count --set run.seeds=[1,2]"));
  EXPECT_EQ(count.output, "8\n");
  const auto list = run(sparser_run("--list"));
  EXPECT_NE(list.output.find("0 decoder_only-lr=0.001-seed=1"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("parser-layers=conv-lr=0.0001-seed=1"), std::string::npos) << list.output;
  // An override of a key the sweep sets would be dropped (or mislabel the run): an error.
  const auto swept = run(sparser_run("--index 1 --set method.layers=transformer"));
  EXPECT_EQ(swept.exit_code, 2) << swept.output;
  EXPECT_NE(swept.output.find("method.layers"), std::string::npos) << swept.output;
  const auto one = run(sparser_run("--index 1 --set train.epochs=1"));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_TRUE(fs::exists(run_dir("runs", "parser-layers=conv-lr=0.001-seed=1") + "/summary.json")) << one.output;
  EXPECT_EQ(run(sparser_run("--index 9")).exit_code, 2);
}

// A requeued Slurm job restarts with its arguments, --force included: a restart (same
// SLURM_JOB_ID, higher SLURM_RESTART_COUNT) continues or skips what an earlier attempt
// started over instead of discarding it again, and checks its config as any resume does.
TEST_F(TrainerTest, ForceStartsARunOverOncePerAttemptOfASlurmJob) {
  const std::string args = "--index 0 --set train.epochs=1 --set run.output_dir=" + (dir_ / "f").string();
  const auto listed = run(sparser_run("--list"));
  ASSERT_EQ(listed.output.rfind("0 ", 0), 0u) << listed.output;
  const std::string id = listed.output.substr(2, listed.output.find('\n') - 2);
  ASSERT_EQ(run(sparser_run(args)).exit_code, 0);
  const auto forced = [&](const std::string& job, int restart, const std::string& more = "") {
    return run("SLURM_JOB_ID=" + job + " SLURM_RESTART_COUNT=" + std::to_string(restart) + " " +
               sparser_run(args + more + " --force"));
  };
  const auto skipped = "skipping " + id + ": completed";
  const auto first = forced("77", 0);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_EQ(first.output.find(skipped), std::string::npos) << first.output;  // started over
  const auto requeued = forced("77", 1);
  ASSERT_EQ(requeued.exit_code, 0) << requeued.output;
  EXPECT_NE(requeued.output.find(skipped), std::string::npos) << requeued.output;  // not again
  const auto edited = forced("77", 2, " --set train.lr=0.005");  // the config changed meanwhile
  EXPECT_EQ(edited.exit_code, 2) << edited.output;
  EXPECT_NE(edited.output.find("train.lr"), std::string::npos) << edited.output;
  for (const auto& [job, restart] : {std::pair<std::string, int>{"78", 0}, {"78", 0}}) {  // another job; salloc
    const auto again = forced(job, restart);
    ASSERT_EQ(again.exit_code, 0) << again.output;
    EXPECT_EQ(again.output.find(skipped), std::string::npos) << job << " " << restart << ": " << again.output;
  }
}

// sparser_predict on a run's config.toml predicts with the run's fine-tuned model, as its
// export does; it used the base checkpoint of [model] alone, silently.
TEST_F(TrainerTest, PredictWithARunsConfigUsesTheTrainedModel) {
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "x").string() + " --set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto exported = (dir_ / "exported.pth").string();
  ASSERT_EQ(run(kBin + "/sparser_export --config " + run_dir("x") + "/config.toml --delta " + run_dir("x") +
                "/trained.pth --out " + exported)
                .exit_code,
            0);
  {
    std::ofstream image(dir_ / "image.ppm", std::ios::binary);
    image << "P6\n48 40\n255\n";
    for (int i = 0; i < 48 * 40 * 3; ++i) image.put(static_cast<char>((i * 37) % 251));
  }
  const auto iou_of = [&](const std::string& model_args, const std::string& out) {
    const auto p = run(kBin + "/sparser_predict " + model_args + " --image " + (dir_ / "image.ppm").string() +
                       " --box 5,6,30,33 --out " + (dir_ / out).string());
    EXPECT_EQ(p.exit_code, 0) << p.output;
    const auto at = p.output.find("iou_prediction ");
    return at == std::string::npos ? std::nan("") : std::stod(p.output.substr(at + 15));
  };
  const std::string fixture_config = "--config " + fixtures::fixture_dir() + "/config.toml --checkpoint ";
  const double from_run = iou_of("--config " + run_dir("x") + "/config.toml", "run");
  const double from_export = iou_of(fixture_config + exported, "export");
  const double from_base = iou_of(fixture_config + fixtures::fixture_dir() + "/weights.pth", "base");
  EXPECT_NEAR(from_run, from_export, 1e-4);
  EXPECT_GT(std::abs(from_run - from_base), 1e-3);
  const double from_delta = iou_of("--config " + run_dir("x") + "/config.toml --delta " + run_dir("x") +
                                   "/trained.pth", "delta");
  EXPECT_EQ(from_delta, from_run);
  // The run's config with another checkpoint: an exported model (the trained tensors count
  // once: they were added a second time) or its base SAM elsewhere, which --delta tells apart.
  const std::string run_config = "--config " + run_dir("x") + "/config.toml --checkpoint ";
  EXPECT_NEAR(iou_of(run_config + exported + " --delta none", "run_and_export"), from_run, 1e-4);
  fs::copy_file(fixtures::fixture_dir() + "/weights.pth", dir_ / "moved_base.pth");
  const auto base_elsewhere = run_config + (dir_ / "moved_base.pth").string();
  EXPECT_EQ(iou_of(base_elsewhere + " --delta " + run_dir("x") + "/trained.pth", "moved_base"), from_run);
  const auto undecided = run(kBin + "/sparser_predict " + base_elsewhere + " --image " + (dir_ / "image.ppm").string() +
                             " --box 5,6,30,33 --out " + (dir_ / "undecided").string());
  EXPECT_EQ(undecided.exit_code, 2) << undecided.output;
  EXPECT_NE(undecided.output.find("--delta none if it is an exported model"), std::string::npos) << undecided.output;
  // The config's own checkpoint, named again: the run's model.
  EXPECT_EQ(iou_of(run_config + fixtures::fixture_dir() + "/weights.pth", "same_base"), from_run);
  // An output that is no file (a pipe, a device) is refused: the rename would put a file in its place.
  const auto export_to = [&](const fs::path& out) {
    return run(kBin + "/sparser_export --config " + run_dir("x") + "/config.toml --delta " + run_dir("x") +
               "/trained.pth --out " + out.string());
  };
  const auto fifo = dir_ / "pipe.pth";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto to_pipe = export_to(fifo);
  EXPECT_NE(to_pipe.exit_code, 0);
  EXPECT_NE(to_pipe.output.find(fifo.string() + ": exists and is not a regular file"), std::string::npos)
      << to_pipe.output;
  EXPECT_EQ(fs::symlink_status(fifo).type(), fs::file_type::fifo);
  // Through a link: the file it points to is written, the link stays (a link to a pipe is refused).
  fs::create_directories(dir_ / "shared");
  std::ofstream(dir_ / "shared" / "latest.pth") << "old";
  fs::create_symlink(dir_ / "shared" / "latest.pth", dir_ / "latest.pth");
  fs::create_symlink(fifo, dir_ / "pipe_link.pth");
  ASSERT_EQ(export_to(dir_ / "latest.pth").exit_code, 0);
  EXPECT_TRUE(fs::is_symlink(dir_ / "latest.pth"));
  EXPECT_EQ(fs::file_size(dir_ / "shared" / "latest.pth"), fs::file_size(exported));
  EXPECT_NE(export_to(dir_ / "pipe_link.pth").exit_code, 0);
  EXPECT_EQ(fs::symlink_status(fifo).type(), fs::file_type::fifo);
}

TEST_F(TrainerTest, ExportedModelLoadsInPythonWithTheOfficialKeys) {
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "x").string() + " --set train.epochs=1"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto exported = (dir_ / "exported.pth").string();
  const auto e = run(kBin + "/sparser_export --config " + run_dir("x") + "/config.toml --delta " + run_dir("x") +
                     "/trained.pth --out " + exported);
  ASSERT_EQ(e.exit_code, 0) << e.output;
  // Same keys and shapes as the official state dict the run started from.
  const auto base = checkpoint::read_state_dict(fixtures::fixture_dir() + "/weights.pth");
  const auto merged = checkpoint::read_state_dict(exported);
  ASSERT_EQ(merged.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i) {
    EXPECT_EQ(merged[i].first, base[i].first);
    EXPECT_EQ(merged[i].second.sizes(), base[i].second.sizes()) << base[i].first;
  }
  if (run("/usr/bin/python3 -c 'import torch'").exit_code != 0) GTEST_SKIP() << "python3-torch not installed";
  const auto py = run("/usr/bin/python3 -c \"import torch; a = torch.load('" + exported + "'); b = torch.load('" +
                      fixtures::fixture_dir() + "/weights.pth'); "
                      "assert type(a).__name__ == 'OrderedDict'; assert list(a) == list(b); "
                      "assert all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a); "
                      "changed = [k for k in a if not torch.equal(a[k], b[k])]; "
                      "assert any('qkv' in k for k in changed) and any('mask_decoder' in k for k in changed); print('ok')\"");
  EXPECT_EQ(py.exit_code, 0) << py.output;
}

namespace {

// The run directory under <dir>/<output>/t whose id starts with `prefix` and ends with `suffix`.
std::string find_run_dir(const fs::path& root, const std::string& prefix, const std::string& suffix) {
  if (!fs::exists(root)) return "";
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return entry.path().string();
  }
  return "";
}

}  // namespace

TEST_F(TrainerTest, FrozenTrunkCacheGivesTheUncachedResults) {
  const std::string parser = " --set method.name=parser --set method.layers=conv --set run.seeds=[1,2]";
  std::map<std::string, CommandResult> results;
  for (const auto* mode : {"off", "memory", "disk", "auto"}) {
    results[mode] = run(sparser_run("--set run.output_dir=" + (dir_ / mode).string() + parser +
                                    " --set train.trunk_cache=" + mode));
    ASSERT_EQ(results[mode].exit_code, 0) << results[mode].output;
  }
  // A second disk run reopens the files of the first.
  results["disk2"] = run(sparser_run("--set run.output_dir=" + (dir_ / "disk2").string() + parser +
                                     " --set train.trunk_cache=disk --set train.trunk_cache_dir=" +
                                     (dir_ / "disk/.trunk_cache").string()));
  ASSERT_EQ(results["disk2"].exit_code, 0) << results["disk2"].output;

  EXPECT_NE(results["off"].output.find("trunk cache: off"), std::string::npos) << results["off"].output;
  EXPECT_NE(results["memory"].output.find("trunk cache: memory, fp32, 12 images"), std::string::npos)
      << results["memory"].output;
  EXPECT_NE(results["memory"].output.find("reusing this process's memory cache"), std::string::npos)
      << "seed 2 reuses seed 1's features\n" << results["memory"].output;
  EXPECT_NE(results["memory"].output.find(" hits, 0 misses in this run"), std::string::npos)
      << "seed 2 counts its own hits, not seed 1's misses\n" << results["memory"].output;
  EXPECT_NE(results["disk"].output.find("trunk cache: disk, fp32"), std::string::npos) << results["disk"].output;
  EXPECT_NE(results["disk2"].output.find("trunk cache: reusing"), std::string::npos) << results["disk2"].output;
  EXPECT_NE(results["auto"].output.find("trunk cache: memory, fp32, 12 images"), std::string::npos)
      << results["auto"].output;
  EXPECT_NE(results["auto"].output.find("(auto, budget 4.0 GB)"), std::string::npos) << results["auto"].output;
  bool disk_files = false;
  for (const auto& entry : fs::directory_iterator(dir_ / "disk/.trunk_cache"))
    disk_files |= entry.path().filename().string().rfind("trunk-", 0) == 0;
  EXPECT_TRUE(disk_files);

  for (const auto* seed : {"seed=1", "seed=2"}) {
    const auto reference = find_run_dir(dir_ / "off" / "t", "parser", seed);
    ASSERT_FALSE(reference.empty());
    for (const auto* mode : {"memory", "disk", "disk2", "auto"}) {
      const auto cached = find_run_dir(dir_ / mode / "t", "parser", seed);
      ASSERT_FALSE(cached.empty()) << mode;
      EXPECT_EQ(max_difference(trained(reference), trained(cached)), 0.0) << mode << " " << seed;
      EXPECT_EQ(summary(cached)["final"], summary(reference)["final"]) << mode << " " << seed;
      EXPECT_EQ(summary(cached)["best"], summary(reference)["best"]) << mode << " " << seed;
    }
  }
}

TEST_F(TrainerTest, TrunkCacheWithATrainableTrunkIsAConfigError) {
  const auto r = run(sparser_run("--set run.output_dir=" + (dir_ / "lora").string() + " --set train.trunk_cache=memory"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("train.trunk_cache"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("trains the image encoder's trunk"), std::string::npos) << r.output;
  // In a sweep, before any run: decoder-only (which could use it) does not start either.
  const auto sweep = run(sparser_run("--set run.output_dir=" + (dir_ / "sweep").string() +
                                     " --set train.trunk_cache=disk"
                                     " --set 'sweep.\"method.name\"=[\"decoder_only\",\"lora\"]'"));
  EXPECT_NE(sweep.exit_code, 0);
  EXPECT_NE(sweep.output.find("with method lora, which trains the image encoder's trunk"), std::string::npos)
      << sweep.output;
  EXPECT_FALSE(fs::exists(dir_ / "sweep")) << sweep.output;
  // auto simply turns it off.
  const auto a = run(sparser_run("--set run.output_dir=" + (dir_ / "auto").string() + " --set train.epochs=1"));
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_NE(a.output.find("trunk cache: off (method lora trains the trunk)"), std::string::npos) << a.output;
}

TEST(TrainingStepTest, DecoderPassesOverSubsetsOfPromptsGiveTheWholeImagesGradients) {
  // train.prompts_per_pass: 3 boxes in passes of 1, 2 (+1) or all at once give the same
  // loss and gradients, for a method training the neck (PARSER conv, the gradient going
  // through the summed embedding) and one training the trunk (LoRA).
  methods::MethodConfig parser = fixtures::method_named(methods::MethodName::Parser);
  parser.parser_layers = {"conv"};
  for (const auto& method : {parser, fixtures::method_named(methods::MethodName::Lora)}) {
    auto setup = fixtures::tiny_model(method);
    auto& sam = *setup.sam;
    const auto input = fixtures::fixture_input();
    const auto boxes = torch::tensor({{10.f, 20.f, 90.f, 100.f}, {30.f, 5.f, 60.f, 70.f}, {0.f, 0.f, 120.f, 64.f}});
    const auto L = 4 * sam.config().embedding_size();
    torch::manual_seed(0);
    const auto targets = (torch::rand({3, 1, L, L}) > 0.5).to(torch::kFloat);
    const auto params = methods::trainable_parameters(sam);
    auto gradients = [&](int64_t prompts_per_pass) {
      for (const auto& [name, p] : params) p.mutable_grad() = torch::Tensor();
      methods::StepScope step(sam);
      const double loss = train::backward_image_loss(sam, sam.encode(input), boxes, targets, train::LossWeights{},
                                                     prompts_per_pass, torch::kCPU);
      step.finish_backward();
      std::vector<torch::Tensor> grads;
      for (const auto& [name, p] : params)  // (the IoU head gets none: the loss does not use it)
        grads.push_back(p.grad().defined() ? p.grad().flatten().clone() : torch::zeros({p.numel()}));
      return std::make_pair(loss, torch::cat(grads));
    };
    const auto [loss_all, grad_all] = gradients(0);
    ASSERT_GT(grad_all.abs().max().item<double>(), 0.0);
    for (const int64_t per_pass : {1, 2}) {
      const auto [loss, grad] = gradients(per_pass);
      EXPECT_NEAR(loss, loss_all, 1e-6) << per_pass;
      EXPECT_LT((grad - grad_all).abs().max().item<double>(), 1e-5 * grad_all.abs().max().item<double>()) << per_pass;
    }
  }
}
