// The frozen-trunk cache: memory and disk round trips, stale, half-written, corrupted,
// busy and unwritable files, and what the trunk hash depends on.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <filesystem>
#include <fstream>

#include "io/hdf5_file.h"
#include "test_models.h"
#include "train/trunk_cache.h"

namespace fs = std::filesystem;
using namespace sparser;
using namespace sparser::train;

namespace {

data::Manifest manifest(uint32_t crc = 0x1234abcd) {
  data::Manifest m;
  m.dataset = "synthetic";
  m.split = "train";
  m.shards.push_back({"train-00000.h5", 5, 9, 1000, crc});
  return m;
}

TrunkCacheKey key(uint32_t crc = 0x1234abcd, TrunkCacheDtype dtype = TrunkCacheDtype::Fp32) {
  return make_trunk_cache_key(fixtures::tiny_model_section().sam, 42, manifest(crc), "train", "cpu", "fp32", dtype);
}

TrunkCacheOptions options(TrunkCacheMode mode, TrunkCacheDtype dtype, const std::string& dir) {
  TrunkCacheOptions o;
  o.mode = mode;
  o.dtype = dtype;
  o.num_samples = 5;
  o.sample_shape = {8, 8, 48};
  o.dir = dir;
  return o;
}

class TrunkCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("sparser_trunk_cache_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

torch::Tensor features(int64_t seed) {
  torch::manual_seed(static_cast<uint64_t>(seed));
  return torch::randn({1, 8, 8, 48}) * 3;
}

}  // namespace

TEST_F(TrunkCacheTest, MemoryRoundTripFp32IsExactAndFp16WithinHalfPrecision) {
  for (const auto dtype : {TrunkCacheDtype::Fp32, TrunkCacheDtype::Fp16}) {
    TrunkCache cache(key(), options(TrunkCacheMode::Memory, dtype, ""));
    EXPECT_FALSE(cache.get(2).has_value());
    const auto x = features(1);
    cache.put(2, x);
    const auto y = cache.get(2);
    ASSERT_TRUE(y.has_value());
    EXPECT_EQ(y->scalar_type(), torch::kFloat);
    EXPECT_EQ(y->sizes(), x.sizes());
    if (dtype == TrunkCacheDtype::Fp32)
      EXPECT_TRUE(torch::equal(*y, x));
    else
      EXPECT_TRUE(torch::allclose(*y, x, /*rtol=*/1e-3, /*atol=*/1e-3));
    EXPECT_EQ(cache.entries(), 1);
    EXPECT_FALSE(cache.get(0).has_value());
    EXPECT_THROW(cache.get(5), std::out_of_range);
  }
}

TEST_F(TrunkCacheTest, DiskRoundTripSurvivesReopening) {
  for (const auto dtype : {TrunkCacheDtype::Fp32, TrunkCacheDtype::Fp16}) {
    const auto k = key(0x1234abcd, dtype);
    const auto x = features(2), z = features(3);
    {
      TrunkCache cache(k, options(TrunkCacheMode::Disk, dtype, dir_.string()));
      EXPECT_TRUE(fs::exists(dir_ / TrunkCache::file_name(k, 0)));
      cache.put(1, x);
      cache.put(4, z);
    }
    std::vector<std::string> log;
    TrunkCache cache(k, options(TrunkCacheMode::Disk, dtype, dir_.string()),
                     [&](const std::string& line) { log.push_back(line); });
    ASSERT_EQ(log.size(), 1u);
    EXPECT_NE(log[0].find("reusing"), std::string::npos) << log[0];
    EXPECT_EQ(cache.entries(), 2);
    EXPECT_FALSE(cache.get(0).has_value());
    const auto y = cache.get(1), w = cache.get(4);
    ASSERT_TRUE(y && w);
    if (dtype == TrunkCacheDtype::Fp32) {
      EXPECT_TRUE(torch::equal(*y, x));
      EXPECT_TRUE(torch::equal(*w, z));
    } else {
      EXPECT_TRUE(torch::equal(*y, x.to(torch::kHalf).to(torch::kFloat)));
      EXPECT_TRUE(torch::allclose(*w, z, 1e-3, 1e-3));
    }
  }
}

TEST_F(TrunkCacheTest, StaleDiskCacheIsDetectedAndRebuiltNotReused) {
  const auto k = key();
  {
    TrunkCache cache(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
    cache.put(0, features(4));
  }
  // Same file name, different stored key (e.g. a hash collision or a hand-copied file).
  TrunkCacheKey impostor{k.text + "changed\n"};
  fs::rename(dir_ / TrunkCache::file_name(k, 0), dir_ / "other.h5");
  {
    TrunkCache other(impostor, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
    other.put(0, features(5));
  }
  fs::rename(dir_ / TrunkCache::file_name(impostor, 0), dir_ / TrunkCache::file_name(k, 0));
  std::vector<std::string> log;
  TrunkCache cache(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()),
                   [&](const std::string& line) { log.push_back(line); });
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("stale"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("key differs"), std::string::npos) << log[0];
  EXPECT_NE(log[0].find("rebuilding"), std::string::npos) << log[0];
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_FALSE(cache.get(0).has_value());

  // A different dataset (another CRC-32) or dtype gives another key, hence another file.
  EXPECT_NE(key(1).hex(), k.hex());
  EXPECT_NE(key(0x1234abcd, TrunkCacheDtype::Fp16).hex(), k.hex());
  // Garbage under the right name: rebuilt, with a reason.
  { std::ofstream(dir_ / TrunkCache::file_name(key(7), 0)) << "not hdf5"; }
  log.clear();
  TrunkCache garbage(key(7), options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()),
                     [&](const std::string& line) { log.push_back(line); });
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("unreadable"), std::string::npos) << log[0];
  garbage.put(3, features(6));
  EXPECT_TRUE(garbage.get(3).has_value());
}

TEST_F(TrunkCacheTest, HalfWrittenRowsAreIgnored) {
  const auto k = key();
  const auto path = (dir_ / TrunkCache::file_name(k, 0)).string();
  {
    TrunkCache cache(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
    cache.put(0, features(7));
  }
  {
    // A crash between writing row 2 and its present flag: the row holds data, present = 0.
    io::Hdf5File file(path, io::Hdf5File::Mode::ReadWrite);
    const auto row = features(8);
    file.write_row<float>("features", 2, row.data_ptr<float>(), row.numel());
    file.flush();
  }
  TrunkCache cache(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
  EXPECT_EQ(cache.entries(), 1);
  EXPECT_TRUE(cache.get(0).has_value());
  EXPECT_FALSE(cache.get(2).has_value());
  cache.put(2, features(9));
  EXPECT_TRUE(torch::equal(*cache.get(2), features(9)));
}

TEST_F(TrunkCacheTest, RowsThatFailTheirChecksumAreComputedAgain) {
  const auto k = key();
  const auto path = (dir_ / TrunkCache::file_name(k, 0)).string();
  {
    TrunkCache cache(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
    for (int64_t i = 0; i < 3; ++i) cache.put(i, features(20 + i));
  }
  {
    // Row 1 changed in place, row 2 a hole of zeros (a write a full disk lost): both
    // still marked present.
    io::Hdf5File file(path, io::Hdf5File::Mode::ReadWrite);
    auto changed = features(21).clone();
    changed[0][3][3][7] += 1;
    file.write_row<float>("features", 1, changed.data_ptr<float>(), changed.numel());
    const auto zeros = torch::zeros_like(changed);
    file.write_row<float>("features", 2, zeros.data_ptr<float>(), zeros.numel());
  }
  std::vector<std::string> log;
  TrunkCache cache(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()),
                   [&](const std::string& line) { log.push_back(line); });
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_TRUE(torch::equal(*cache.get(0), features(20)));
  EXPECT_FALSE(cache.get(1).has_value());
  EXPECT_FALSE(cache.get(2).has_value());
  EXPECT_EQ(cache.corrupt_rows(), 2);
  EXPECT_EQ(cache.entries(), 1);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_NE(log[1].find("sample 1 fails its CRC-32"), std::string::npos) << log[1];
  // The caller computes the row again and stores it: the file is whole again.
  cache.put(1, features(21));
  cache.put(2, features(22));
  EXPECT_TRUE(torch::equal(*cache.get(1), features(21)));
  EXPECT_TRUE(torch::equal(*cache.get(2), features(22)));
}

TEST_F(TrunkCacheTest, AFileAnotherProcessHoldsIsLeftAloneNotRebuilt) {
  // Two processes sharing a cache directory (e.g. the array tasks of a Slurm sweep): a
  // second opener of a file in use gets TrunkCacheBusy, and the first keeps its file.
  // flock locks belong to open files, so two openers in one process conflict the same way.
  const auto k = key();
  auto first = std::make_unique<TrunkCache>(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
  first->put(0, features(30));
  try {
    TrunkCache second(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
    ADD_FAILURE() << "a second cache opened the file in use";
  } catch (const TrunkCacheBusy& busy) {
    EXPECT_NE(std::string(busy.what()).find("in use by another process"), std::string::npos) << busy.what();
  }
  first->put(1, features(31));
  EXPECT_TRUE(torch::equal(*first->get(0), features(30)));
  first.reset();
  TrunkCache later(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
  EXPECT_EQ(later.entries(), 2);
  EXPECT_TRUE(torch::equal(*later.get(1), features(31)));
}

TEST_F(TrunkCacheTest, AFullDiskNeverYieldsAWrongRowAndDoesNotThrow) {
  // The file may not grow past its size at creation (RLIMIT_FSIZE, as a full disk): the
  // rows' writes fail and the cache says it goes on without itself. Whatever it returns
  // after reopening is the row that was put or nothing.
  const auto k = key();
  const auto path = dir_ / TrunkCache::file_name(k, 0);
  std::vector<std::string> log;
  auto cache = std::make_unique<TrunkCache>(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()),
                                            [&](const std::string& line) { log.push_back(line); });
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit limited = saved;
  limited.rlim_cur = static_cast<rlim_t>(fs::file_size(path));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  for (int64_t i = 0; i < 5; ++i) EXPECT_NO_THROW(cache->put(i, features(40 + i))) << i;
  EXPECT_NO_THROW(cache.reset());
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, previous_handler);
  ASSERT_FALSE(log.empty());
  EXPECT_NE(log.back().find("goes on without the cache"), std::string::npos) << log.back();

  TrunkCache reopened(k, options(TrunkCacheMode::Disk, TrunkCacheDtype::Fp32, dir_.string()));
  for (int64_t i = 0; i < 5; ++i)
    if (const auto row = reopened.get(i)) EXPECT_TRUE(torch::equal(*row, features(40 + i))) << i;
}

TEST_F(TrunkCacheTest, TrunkHashFollowsTrunkWeightsOnly) {
  auto setup = fixtures::tiny_model();
  auto& encoder = *setup.sam->image_encoder;
  const auto base = trunk_hash(encoder);
  EXPECT_EQ(trunk_hash(encoder), base) << "stable";
  torch::NoGradGuard no_grad;
  // Neck, prompt encoder and decoder weights do not change the trunk output.
  encoder.neck->parameters()[0].add_(1);
  setup.sam->mask_decoder->parameters()[0].add_(1);
  EXPECT_EQ(trunk_hash(encoder), base);
  // A trunk weight does, anywhere in it.
  auto block_weight = encoder.blocks->parameters().back();
  block_weight.view(-1)[0].add_(1e-3);
  const auto changed = trunk_hash(encoder);
  EXPECT_NE(changed, base);
  block_weight.view(-1)[0].sub_(1e-3);
  encoder.pos_embed.view(-1)[5].add_(1);
  EXPECT_NE(trunk_hash(encoder), base);
}

TEST_F(TrunkCacheTest, RegistryReturnsTheSameCacheForTheSameKey) {
  const auto a = acquire_trunk_cache(key(), options(TrunkCacheMode::Memory, TrunkCacheDtype::Fp32, ""));
  a->put(1, features(10));
  const auto b = acquire_trunk_cache(key(), options(TrunkCacheMode::Memory, TrunkCacheDtype::Fp32, ""));
  EXPECT_EQ(a, b);
  EXPECT_TRUE(b->get(1).has_value());
  const auto c = acquire_trunk_cache(key(3), options(TrunkCacheMode::Memory, TrunkCacheDtype::Fp32, ""));
  EXPECT_NE(a, c);
  retain_trunk_caches({c});
  const auto d = acquire_trunk_cache(key(), options(TrunkCacheMode::Memory, TrunkCacheDtype::Fp32, ""));
  EXPECT_NE(d, a) << "dropped by retain";
  EXPECT_FALSE(d->get(1).has_value());
  retain_trunk_caches({});
}
