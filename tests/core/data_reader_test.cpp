// Shards, manifests, the split dataset, the COCO RLE codec, the sampler and the prefetcher.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "data/coco_rle.h"
#include "data/distributed_sampler.h"
#include "data/manifest.h"
#include "data/prefetcher.h"
#include "data/sample_codec.h"
#include "data/shard_dataset.h"
#include "data/shard_format.h"
#include "data/shard_writer.h"
#include "data_test_util.h"
#include "io/hdf5_file.h"

using namespace sparser::data;
using sparser::test::ScratchDir;

namespace {

// Sample i: a (40 + i) × 60 image of value i with one rectangle instance per (i % 3 + 1).
EncodedSample synthetic_sample(int i) {
  EncodedSample s;
  const cv::Mat image(40 + i, 60, CV_8UC3, cv::Scalar(i, 2 * i, 3 * i));
  cv::imencode(".png", image, s.image);
  s.height = image.rows;
  s.width = image.cols;
  s.file_name = "img_" + std::to_string(i) + ".png";
  s.source_id = 1000 + i;
  for (int k = 0; k <= i % 3; ++k) {
    cv::Mat mask(image.size(), CV_8U, cv::Scalar(0));
    mask(cv::Rect(5 * k, 3 + k, 10 + k, 7)) = 1;
    s.instances.push_back(encode_instance(mask, k + 1));
  }
  return s;
}

// Writes `n` synthetic samples as shards of `per_shard` samples plus "train.manifest.json".
std::string write_split(const ScratchDir& dir, int n, int per_shard) {
  Manifest manifest;
  manifest.schema_version = shard_format::kSchemaVersion;
  manifest.dataset = "synthetic";
  manifest.split = "train";
  manifest.converter_version = "test";
  for (int start = 0; start < n; start += per_shard) {
    ManifestShard shard;
    shard.file = "train-" + std::to_string(manifest.shards.size()) + ".h5";
    ShardWriter writer(dir / shard.file, "synthetic");
    for (int i = start; i < std::min(n, start + per_shard); ++i) writer.add(synthetic_sample(i));
    shard.num_samples = writer.num_samples();
    shard.num_instances = writer.num_instances();
    writer.finish();
    shard.bytes = static_cast<int64_t>(std::filesystem::file_size(dir / shard.file));
    shard.crc32 = file_crc32(dir / shard.file);
    manifest.shards.push_back(shard);
  }
  write_manifest(manifest, dir / "train.manifest.json");
  return dir / "train.manifest.json";
}

void expect_throw_containing(const std::function<void()>& f, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no exception, expected one mentioning '" << text << "'";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(ShardDataset, ReadsEverySampleBackAcrossShards) {
  ScratchDir dir("ds_roundtrip");
  ShardDataset dataset(write_split(dir, 10, 4), ChecksumCheck::OnOpen);
  ASSERT_EQ(dataset.size(), 10);
  for (int i = 0; i < 10; ++i) {
    const Sample s = dataset.get(i);
    const EncodedSample expected = synthetic_sample(i);
    EXPECT_EQ(s.index, i);
    EXPECT_EQ(s.file_name, expected.file_name);
    EXPECT_EQ(dataset.read(i).source_id, 1000 + i);
    ASSERT_EQ(s.image.rows, 40 + i);
    EXPECT_EQ(s.image.at<cv::Vec3b>(0, 0), cv::Vec3b(3 * i, 2 * i, i));  // RGB of BGR Scalar(i, 2i, 3i)
    ASSERT_EQ(s.instances.size(), expected.instances.size());
    for (size_t k = 0; k < s.instances.size(); ++k) {
      EXPECT_EQ(s.instances[k].box, expected.instances[k].box);
      EXPECT_EQ(s.instances[k].class_id, static_cast<int>(k) + 1);
      EXPECT_EQ(cv::countNonZero(s.instances[k].mask), (10 + static_cast<int>(k)) * 7);
    }
  }
  EXPECT_EQ(synthetic_sample(0).instances[0].box, (Box{0, 3, 10, 10}));  // x1/y1 exclusive
}

TEST(ShardDataset, ClearErrors) {
  ScratchDir dir("ds_errors");
  const std::string manifest = write_split(dir, 6, 3);
  expect_throw_containing([&] { ShardDataset(manifest).read(6); }, "out of range");
  expect_throw_containing([&] { ShardDataset(manifest).read(-1); }, "sample -1 out of range");
  // A shard of the listed size with other bytes: only the checksum can tell.
  {
    std::fstream f(dir / "train-1.h5", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-10, std::ios::end);
    f.write("garbage!!!", 10);
  }
  EXPECT_NO_THROW(ShardDataset(manifest, ChecksumCheck::Off).get(0));
  expect_throw_containing([&] { ShardDataset(manifest, ChecksumCheck::OnOpen); }, "train-1.h5: checksum mismatch");
  // By default the check runs in the background: opening does not wait for it, and once
  // it has found the damage every read reports it, whichever shard it reads.
  ShardDataset damaged(manifest);
  expect_throw_containing([&] { damaged.wait_for_checksums(); }, "train-1.h5: checksum mismatch");
  expect_throw_containing([&] { damaged.get(0); }, "train-1.h5: checksum mismatch");
  // A shard of another size fails at open, whatever the checksum setting.
  std::ofstream(dir / "train-1.h5", std::ios::binary | std::ios::app) << "x";
  expect_throw_containing([&] { ShardDataset(manifest, ChecksumCheck::Off); }, "train-1.h5: ");
  expect_throw_containing([&] { ShardDataset(manifest, ChecksumCheck::Off); }, "(truncated or replaced)");
  std::filesystem::remove(dir / "train-0.h5");
  expect_throw_containing([&] { ShardDataset{manifest}; }, "'train-0.h5' is listed but missing");
}

TEST(ShardDataset, IntactSplitPassesTheBackgroundCheck) {
  ScratchDir dir("ds_background_ok");
  ShardDataset dataset(write_split(dir, 7, 2));
  EXPECT_NO_THROW(dataset.wait_for_checksums());
  EXPECT_EQ(dataset.get(6).file_name, "img_6.png");
}

TEST(SampleCodec, HandMadeSamplesOfMoreThanEightBitsDecodeAsSparserPrepWouldStoreThem) {
  // A 12-bit ramp in a 16-bit PNG, with a 16-bit 0/1 mask (shards written by one's own
  // h5py script): read as 8 bits the image kept 16 grey levels and the mask was empty.
  cv::Mat image(4, 64, CV_16UC1);
  for (int x = 0; x < 64; ++x) image.col(x).setTo(x * 64);
  cv::Mat mask = cv::Mat::zeros(4, 64, CV_16UC1);
  mask(cv::Rect(10, 1, 5, 2)).setTo(1);
  EncodedSample encoded;
  cv::imencode(".png", image, encoded.image);
  encoded.height = 4;
  encoded.width = 64;
  encoded.instances.emplace_back();
  cv::imencode(".png", mask, encoded.instances.back().mask_png);
  const auto sample = decode_sample(encoded, "hand-made sample");
  ASSERT_EQ(sample.image.type(), CV_8UC3);
  double low = 0, high = 0;
  cv::minMaxLoc(sample.image.reshape(1), &low, &high);
  EXPECT_EQ(low, 0);
  EXPECT_EQ(high, 255);  // stretched over 0..255 as data::to_eight_bit does, not 0..15
  ASSERT_EQ(sample.instances.size(), 1u);
  EXPECT_EQ(cv::countNonZero(sample.instances[0].mask), 10);
  cv::minMaxLoc(sample.instances[0].mask, &low, &high);
  EXPECT_EQ(high, 1);  // 0/1, as the masks sparser_prep stores
}

TEST(Manifest, MissingKeysAreNamed) {
  ScratchDir dir("manifest_keys");
  nlohmann::json good = nlohmann::json::parse(sparser::test::read_text(write_split(dir, 2, 2)));
  const auto without = [&](const std::function<void(nlohmann::json&)>& drop) {
    nlohmann::json j = good;
    drop(j);
    std::ofstream(dir / "edited.manifest.json") << j.dump();
    return dir / "edited.manifest.json";
  };
  expect_throw_containing([&] { read_manifest(without([](nlohmann::json& j) { j.erase("split_seed"); })); },
                          "edited.manifest.json: missing key 'split_seed'");
  expect_throw_containing([&] { read_manifest(without([](nlohmann::json& j) { j["shards"][0].erase("crc32"); })); },
                          "shards[0]: missing key 'crc32'");
  expect_throw_containing([&] { read_manifest(without([](nlohmann::json& j) { j.erase("format"); })); },
                          "missing key 'format'");
  expect_throw_containing([&] { read_manifest(dir / "absent.manifest.json"); }, "absent.manifest.json: cannot open");
  // Values that a lenient parse would take: crc32 with trailing junk or too many digits,
  // negative counts.
  for (const std::string crc : {"ed83d167zz", "ffffffffffffffffffff", ""})
    expect_throw_containing([&] { read_manifest(without([&](nlohmann::json& j) { j["shards"][0]["crc32"] = crc; })); },
                            "edited.manifest.json: shards[0]: crc32 '" + crc + "' is not 1 to 8 hexadecimal digits");
  expect_throw_containing([&] { read_manifest(without([](nlohmann::json& j) { j["shards"][0]["samples"] = -1; })); },
                          "edited.manifest.json: shards[0]: 'samples' is negative (-1)");
}

TEST(ShardReader, OffsetsOutOfOrderAreRefusedBeforeAnyRead) {
  ScratchDir dir("shard_offsets");
  write_split(dir, 3, 3);  // samples with 1, 2 and 3 instances: offsets 0, 1, 3, 6
  {
    sparser::io::Hdf5File f(dir / "train-0.h5", sparser::io::Hdf5File::Mode::ReadWrite);
    const sparser::io::Hdf5Handle offsets(H5Dopen2(f.id(), shard_format::kInstanceOffsets, H5P_DEFAULT));
    const std::vector<int64_t> out_of_order{0, 3, 1, 6};
    ASSERT_GE(H5Dwrite(offsets.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out_of_order.data()), 0);
  }
  expect_throw_containing([&] { ShardReader(dir / "train-0.h5"); },
                          "train-0.h5: 'images/instance_offsets' must start at 0 and never decrease");
}

TEST(ShardReader, RejectsOtherSchemaVersionsAndMissingFields) {
  ScratchDir dir("shard_schema");
  write_split(dir, 2, 2);
  {
    sparser::io::Hdf5File f(dir / "v2.h5", sparser::io::Hdf5File::Mode::Truncate);
    f.write_string_attribute("/", shard_format::kAttrFormat, shard_format::kFormatName);
    f.write_int_attribute("/", shard_format::kAttrSchemaVersion, 2);
  }
  expect_throw_containing([&] { ShardReader(dir / "v2.h5"); }, "v2.h5: schema version 2");
  {
    sparser::io::Hdf5File f(dir / "partial.h5", sparser::io::Hdf5File::Mode::Truncate);
    f.write_string_attribute("/", shard_format::kAttrFormat, shard_format::kFormatName);
    f.write_int_attribute("/", shard_format::kAttrSchemaVersion, shard_format::kSchemaVersion);
  }
  expect_throw_containing([&] { ShardReader(dir / "partial.h5"); }, "missing field 'images/encoded_bytes'");
  std::ofstream(dir / "bad.manifest.json") << R"({"format": "sparser-manifest", "schema_version": 7})";
  expect_throw_containing([&] { read_manifest(dir / "bad.manifest.json"); }, "schema version 7");
}

TEST(CocoRle, CompressedStringRoundTripsAndMatchesPycocotools) {
  // Mask [[0,1],[1,1]] in column-major order is 0,1,1,1: runs [1, 3] → "13".
  EXPECT_EQ(rle_counts_to_string({1, 3}), "13");
  // 40 needs two 5-bit groups ('X' = 48 + (8 | 0x20), then '1'); counts[3] is stored as
  // the delta 2 - counts[1] = 1.
  EXPECT_EQ(rle_counts_to_string({0, 1, 40, 2}), "01X11");
  cv::Mat mask(37, 23, CV_8U, cv::Scalar(0));
  cv::circle(mask, {11, 18}, 9, 1, -1);
  mask(cv::Rect(0, 0, 3, 37)) = 1;
  const CocoRle rle = rle_encode(mask);
  EXPECT_EQ(rle_counts_from_string(rle_counts_to_string(rle.counts)), rle.counts);
  EXPECT_EQ(cv::countNonZero(rle_decode(rle) != mask), 0);
  EXPECT_THROW(rle_decode({10, 10, {5, 5}}), DataError);
  EXPECT_THROW(rle_counts_from_string("1\x7f"), DataError);
}

TEST(DistributedSampler, CoversEverySampleOnceWithEqualStepsAndIsReproducible) {
  for (bool drop_last : {false, true}) {
    const int64_t n = 23, replicas = 4;
    std::multiset<int64_t> seen;
    for (int64_t rank = 0; rank < replicas; ++rank) {
      DistributedSampler sampler(n, {replicas, rank, true, 7, drop_last});
      sampler.set_epoch(3);
      const auto indices = sampler.indices();
      EXPECT_EQ(static_cast<int64_t>(indices.size()), drop_last ? 5 : 6);
      EXPECT_EQ(indices, sampler.indices());  // reproducible
      seen.insert(indices.begin(), indices.end());
    }
    std::set<int64_t> distinct(seen.begin(), seen.end());
    EXPECT_EQ(static_cast<int64_t>(seen.size()), drop_last ? 20 : 24);
    EXPECT_EQ(static_cast<int64_t>(distinct.size()), drop_last ? 20 : 23);  // pad repeats only 1
  }
  DistributedSampler a(100, {1, 0, true, 7, false}), b(100, {1, 0, true, 7, false});
  b.set_epoch(1);
  EXPECT_NE(a.indices(), b.indices());  // a new permutation each epoch
  DistributedSampler ordered(5, {2, 1, false, 0, false});
  EXPECT_EQ(ordered.indices(), (std::vector<int64_t>{1, 3, 0}));  // padded with index 0, as PyTorch
}

TEST(Prefetcher, DeliversPreparedSamplesInOrderReproducibly) {
  ScratchDir dir("prefetch");
  ShardDataset dataset(write_split(dir, 12, 5));
  PrefetchOptions options;
  options.prepare = {64, 2, 4, 11};
  options.num_workers = 3;
  options.capacity = 4;
  const std::vector<int64_t> order = {7, 2, 11, 0, 5, 9, 1, 3};
  const auto run = [&] {
    std::vector<Sample> out;
    Prefetcher prefetcher(dataset, order, options, 2);
    while (auto s = prefetcher.next()) out.push_back(std::move(*s));
    return out;
  };
  const auto first = run(), second = run();
  ASSERT_EQ(first.size(), order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(first[i].index, order[i]);
    EXPECT_EQ(std::max(first[i].image.rows, first[i].image.cols), 64);
    EXPECT_LE(first[i].instances.size(), 2u);
    ASSERT_EQ(first[i].instances.size(), second[i].instances.size());
    for (size_t k = 0; k < first[i].instances.size(); ++k) {
      const auto& box = first[i].instances[k].box;
      EXPECT_EQ(box, second[i].instances[k].box);
      EXPECT_EQ(first[i].instances[k].mask.size(), first[i].image.size());
      EXPECT_GE(box[0], 0.f);
      EXPECT_LE(box[2], static_cast<float>(first[i].image.cols));
    }
  }
}

TEST(Prefetcher, ReportsAWorkerErrorAtItsSample) {
  ScratchDir dir("prefetch_error");
  ShardDataset dataset(write_split(dir, 4, 4));
  Prefetcher prefetcher(dataset, {0, 9}, {}, 0);
  EXPECT_TRUE(prefetcher.next().has_value());
  EXPECT_THROW(prefetcher.next(), DataError);
}

TEST(ShardDataset, ReadAndDecodeThroughput) {
  ScratchDir dir("throughput");
  ShardDataset dataset(write_split(dir, 200, 50));
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < dataset.size(); ++i) dataset.get(i);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[ timing ] read+decode " << dataset.size() / seconds << " samples/s (synthetic, 1 thread)\n";
}
