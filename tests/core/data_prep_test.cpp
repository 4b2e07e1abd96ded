// sparser_prep end to end: each converter on a small dataset written here in its real
// source format; the masks read back from the shards must equal what was drawn.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <nlohmann/json.hpp>
#include <limits>
#include <set>

#include "data/coco_rle.h"
#include "data/eight_bit_image.h"
#include "data/shard_dataset.h"
#include "data_test_util.h"

using namespace sparser::data;
using sparser::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

using sparser::test::rect_mask;
using sparser::test::read_all;
using sparser::test::same_mask;

// A COCO root with `images` val images, each with a box polygon, compressed and
// uncompressed RLE, a crowd, and a 1-pixel mask; and a train split of one plain image.
void write_coco(const ScratchDir& dir, int images) {
  sparser::test::CocoJson val;
  for (int i = 0; i < images; ++i) {
    const std::string name = "im" + std::to_string(i) + ".jpg";
    sparser::test::write_image(dir / ("val2017/" + name), cv::Mat(48, 64, CV_8UC3, cv::Scalar(40 * i, 80, 120)));
    val.add_image(100 + i, name, 48, 64);
    val.add_annotation(100 + i, 1, {{10, 5, 30, 5, 30, 15, 10, 15}});  // pycocotools: x 10..29, y 5..14
    const auto rle = rle_encode(rect_mask(48, 64, {40, 20, 8, 12}));
    val.add_annotation(100 + i, 5, {{"size", {48, 64}}, {"counts", rle_counts_to_string(rle.counts)}});
    val.add_annotation(100 + i, 5, {{"size", {48, 64}}, {"counts", rle_encode(rect_mask(48, 64, {0, 30, 6, 6})).counts}});
    val.add_annotation(100 + i, 1, {{"size", {48, 64}}, {"counts", rle_encode(rect_mask(48, 64, {20, 30, 10, 10})).counts}},
                       1);  // crowd
    val.add_annotation(100 + i, 1, {{"size", {48, 64}}, {"counts", rle_encode(rect_mask(48, 64, {50, 40, 1, 1})).counts}});
  }
  val.write(dir / "annotations/instances_val2017.json");
  sparser::test::write_minimal_coco_train(dir.path().string());
}

}  // namespace

TEST(PrepCoco, PolygonsRleAndCrowdDecodeToWhatWasDrawn) {
  ScratchDir dir("prep_coco");
  fs::create_directories(dir.path() / "val2017");
  write_coco(dir, 3);
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out") +
                                    " --min-area 4 --threads 2", &log), 0) << log;
  EXPECT_NE(log.find("crowd annotations skipped: 3"), std::string::npos) << log;
  EXPECT_NE(log.find("masks below the minimum area (dropped): 3"), std::string::npos) << log;
  const auto samples = read_all(dir / "out/val.manifest.json");
  ASSERT_EQ(samples.size(), 3u);
  for (const auto& s : samples) {
    ASSERT_EQ(s.instances.size(), 3u);
    EXPECT_TRUE(same_mask(s.instances[0].mask, rect_mask(48, 64, {10, 5, 20, 10})));  // area 20 x 10
    EXPECT_EQ(s.instances[0].box, (Box{10, 5, 30, 15}));
    EXPECT_TRUE(same_mask(s.instances[1].mask, rect_mask(48, 64, {40, 20, 8, 12})));
    EXPECT_EQ(s.instances[1].class_id, 5);
    EXPECT_TRUE(same_mask(s.instances[2].mask, rect_mask(48, 64, {0, 30, 6, 6})));
  }
  EXPECT_EQ(read_all(dir / "out/train.manifest.json").size(), 1u);  // write_minimal_coco_train
  // Existing output: refused without --overwrite, replaced with it.
  EXPECT_NE(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out"), &log), 0);
  EXPECT_NE(log.find("pass --overwrite"), std::string::npos) << log;
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out") +
                                    " --overwrite --keep-crowd --limit 2", &log), 0) << log;
  const auto limited = read_all(dir / "out/val.manifest.json");
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[0].instances.size(), 4u);  // the crowd kept
}

TEST(PrepCoco, CorruptImageFailsOrIsSkippedByFlagNeverSilently) {
  ScratchDir dir("prep_corrupt");
  fs::create_directories(dir.path() / "val2017");
  write_coco(dir, 3);
  sparser::test::write_bytes(dir / "val2017/im1.jpg", {0xFF, 0xD8, 0xFF, 0x00, 0x01});
  std::string log;
  EXPECT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out"), &log), 1);
  EXPECT_NE(log.find("im1.jpg"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir / "out"));
  for (const auto& entry : fs::directory_iterator(dir.path()))  // no half-written output left behind
    EXPECT_EQ(entry.path().filename().string().find("out."), std::string::npos) << entry.path();
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out") + " --on-error skip",
                                    &log), 0) << log;
  EXPECT_NE(log.find("files skipped as corrupt or missing: 1"), std::string::npos) << log;
  EXPECT_NE(log.find("val2017/im1.jpg"), std::string::npos) << log;
  EXPECT_EQ(read_all(dir / "out/val.manifest.json").size(), 2u);
}

TEST(PrepVoc, PaletteObjectsWithBorderBecomeInstancesOfTheirClass) {
  ScratchDir dir("prep_voc");
  const fs::path root = dir.path() / "VOC2012";
  fs::create_directories(root / "ImageSets/Segmentation");
  fs::create_directories(root / "JPEGImages");
  std::ofstream(root / "ImageSets/Segmentation/train.txt") << "2007_000001\n";
  std::ofstream(root / "ImageSets/Segmentation/val.txt") << "2007_000002\n";
  for (const std::string id : {"2007_000001", "2007_000002"}) {
    sparser::test::write_image((root / "JPEGImages" / (id + ".jpg")).string(), cv::Mat(30, 40, CV_8UC3, cv::Scalar(9, 9, 9)));
    cv::Mat objects(30, 40, CV_8U, cv::Scalar(0)), classes(30, 40, CV_8U, cv::Scalar(0));
    cv::rectangle(objects, {4, 4, 10, 10}, 255, -1);  // border ring, then the object inside
    cv::rectangle(objects, {5, 5, 8, 8}, 1, -1);
    cv::rectangle(objects, {20, 10, 12, 6}, 2, -1);
    cv::rectangle(objects, {2, 22, 5, 5}, 3, -1);  // on class 0 only: no class, dropped and counted
    classes.setTo(15, objects == 1);
    classes.setTo(7, objects == 2);
    classes.setTo(255, objects == 255);
    sparser::test::write_palette_png((root / "SegmentationObject" / (id + ".png")).string(), objects);
    sparser::test::write_palette_png((root / "SegmentationClass" / (id + ".png")).string(), classes);
  }
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("voc --root " + root.string() + " -o " + (dir / "out"), &log), 0) << log;
  EXPECT_NE(log.find("annotations without a usable mask or class (dropped): 2"), std::string::npos) << log;
  const auto train = read_all(dir / "out/train.manifest.json"), val = read_all(dir / "out/val.manifest.json");
  ASSERT_EQ(train.size(), 1u);
  ASSERT_EQ(val.size(), 1u);
  ASSERT_EQ(train[0].instances.size(), 2u);
  EXPECT_TRUE(same_mask(train[0].instances[0].mask, rect_mask(30, 40, {5, 5, 8, 8})));  // border excluded
  EXPECT_EQ(train[0].instances[0].class_id, 15);
  EXPECT_TRUE(same_mask(train[0].instances[1].mask, rect_mask(30, 40, {20, 10, 12, 6})));
  EXPECT_EQ(train[0].instances[1].class_id, 7);
}

TEST(PrepAbdomenCt, SlicesPerOrganWithPatientDisjointSplit) {
  ScratchDir dir("prep_ct");
  const int nx = 16, ny = 12, nz = 4, patients = 5;
  for (int p = 1; p <= patients; ++p) {
    std::vector<int16_t> ct(nx * ny * nz), label(nx * ny * nz, 0);
    for (int z = 0; z < nz; ++z)
      for (int y = 0; y < ny; ++y)
        for (int x = 0; x < nx; ++x) {
          const int i = x + nx * (y + ny * z);
          ct[i] = static_cast<int16_t>(x < 8 ? -1000 : 240);  // air → 0, HU 240 → 255
          if (z >= 1 && x >= 2 && x < 6 && y >= 3 && y < 9) label[i] = 1;  // liver on slices 1..3
          if (z == 2 && x >= 10 && x < 13 && y >= 1 && y < 4) label[i] = 3;  // spleen on slice 2
        }
    char name[32];
    std::snprintf(name, sizeof name, "Case_%05d", p);
    sparser::test::write_nifti(dir / ("Image/" + std::string(name) + "_0000.nii.gz"), nx, ny, nz, ct);
    sparser::test::write_nifti(dir / ("Mask/" + std::string(name) + ".nii.gz"), nx, ny, nz, label);
  }
  sparser::test::write_bytes(dir / "Image/notes.txt.gz", {1, 2, 3});  // not a volume: ignored
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("abdomenct --images " + (dir / "Image") + " --labels " + (dir / "Mask") + " -o " +
                                    (dir / "out") + " --min-area 1", &log), 0) << log;
  // Only organs present on a slice become instances (no empty kidney masks counted as dropped).
  EXPECT_NE(log.find("masks below the minimum area (dropped): 0"), std::string::npos) << log;
  const auto train = read_all(dir / "out/train.manifest.json"), val = read_all(dir / "out/val.manifest.json");
  EXPECT_EQ(train.size(), 4u * 3);  // 80/20 of 5 patients, 3 labelled slices each
  EXPECT_EQ(val.size(), 1u * 3);
  std::set<std::string> train_patients, val_patients;
  for (const auto& s : train) train_patients.insert(s.file_name.substr(0, 10));
  for (const auto& s : val) val_patients.insert(s.file_name.substr(0, 10));
  for (const auto& p : val_patients) EXPECT_EQ(train_patients.count(p), 0u) << p;
  const Sample& slice2 = train[1];
  EXPECT_NE(slice2.file_name.find("#z=2"), std::string::npos);
  ASSERT_EQ(slice2.instances.size(), 2u);
  EXPECT_TRUE(same_mask(slice2.instances[0].mask, rect_mask(ny, nx, {2, 3, 4, 6})));
  EXPECT_EQ(slice2.instances[1].class_id, 3);
  EXPECT_EQ(slice2.image.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(slice2.image.at<cv::Vec3b>(0, 15), cv::Vec3b(255, 255, 255));
}

TEST(PrepAbdomenCt, ReleaseLayoutWithUnlabelledCasesAndNanScaling) {
  // The release: volumes in AbdomenCT-1K-ImagePart1..3, labels in Mask/, some cases
  // without a label. nibabel writes scl_slope = scl_inter = NaN for "no scaling".
  ScratchDir dir("prep_ct_release");
  const int nx = 4, ny = 3, nz = 1;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<int16_t> ct(nx * ny * nz, 240), label(nx * ny * nz, 0);
  ct[0] = -160;   // → 0
  label[5] = 2;   // kidney at (1, 1)
  for (int p = 1; p <= 4; ++p) {
    char name[16];
    std::snprintf(name, sizeof name, "Case_%05d", p);
    const std::string part = "AbdomenCT-1K-ImagePart" + std::to_string(p <= 2 ? 1 : 2);
    sparser::test::write_nifti(dir / (part + "/" + name + "_0000.nii.gz"), nx, ny, nz, ct, nan, nan);
    if (p != 3)
      sparser::test::write_nifti(dir / ("Mask/" + std::string(name) + ".nii.gz"), nx, ny, nz, label, nan, nan);
  }
  const std::string labels = " --labels " + (dir / "Mask") + " --min-area 1 --train-fraction 0.67";
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("abdomenct --images " + (dir / "AbdomenCT-1K-ImagePart1") + " --images " +
                                    (dir / "AbdomenCT-1K-ImagePart2") + labels + " -o " + (dir / "out"), &log), 0)
      << log;
  EXPECT_NE(log.find("source files ignored: 1"), std::string::npos) << log;
  EXPECT_NE(log.find("Case_00003_0000.nii.gz: no label volume"), std::string::npos) << log;
  const auto train = read_all(dir / "out/train.manifest.json"), val = read_all(dir / "out/val.manifest.json");
  EXPECT_EQ(train.size(), 2u);  // the 3 labelled patients, 2/1
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].image.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(val[0].image.at<cv::Vec3b>(0, 1), cv::Vec3b(255, 255, 255));
  ASSERT_EQ(val[0].instances.size(), 1u);
  EXPECT_EQ(val[0].instances[0].class_id, 2);
  EXPECT_TRUE(same_mask(val[0].instances[0].mask, rect_mask(ny, nx, {1, 1, 1, 1})));

  // The release's root holds no volume itself: the error says where they are.
  EXPECT_EQ(
      sparser::test::run_prep("abdomenct --images " + dir.path().string() + labels + " -o " + (dir / "root"), &log), 1);
  EXPECT_NE(log.find("give each with --images"), std::string::npos) << log;
  // A wrong --labels is named as such.
  EXPECT_EQ(sparser::test::run_prep("abdomenct --images " + (dir / "AbdomenCT-1K-ImagePart1") + " --labels " +
                                    (dir / "Masks") + " -o " + (dir / "typo"), &log), 1);
  EXPECT_NE(log.find("Masks: missing directory (--labels)"), std::string::npos) << log;

  // A CT voxel that is not a number (float32 data) is an error naming it, not a black pixel.
  std::vector<float> float_ct(ct.begin(), ct.end());
  float_ct[7] = nan;
  sparser::test::write_nifti(dir / "AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz", nx, ny, nz, float_ct);
  EXPECT_EQ(sparser::test::run_prep("abdomenct --images " + (dir / "AbdomenCT-1K-ImagePart1") + " --images " +
                                    (dir / "AbdomenCT-1K-ImagePart2") + labels + " -o " + (dir / "nan"), &log), 1);
  EXPECT_NE(log.find("Case_00001_0000.nii.gz: voxel (3, 1, 0) holds nan, not a CT value"), std::string::npos) << log;
}

TEST(PrepWhuAndFolder, ConnectedComponentsAndLabelValues) {
  ScratchDir dir("prep_whu");
  cv::Mat label(32, 32, CV_8U, cv::Scalar(0));
  label(cv::Rect(2, 2, 6, 5)) = 255;
  label(cv::Rect(20, 15, 8, 9)) = 255;
  fs::create_directories(dir.path() / "whu/train/image");
  fs::create_directories(dir.path() / "whu/train/label");
  sparser::test::write_image(dir / "whu/train/image/tile_1.tif", cv::Mat(32, 32, CV_8UC3, cv::Scalar(1, 2, 3)));
  sparser::test::write_image(dir / "whu/train/label/tile_1.tif", label);
  // A 16-bit 0/1 label: as 8-bit grey its 1 would become 0 and the building vanish.
  sparser::test::write_image(dir / "whu/train/image/tile_2.tif", cv::Mat(32, 32, CV_8UC3, cv::Scalar(1, 2, 3)));
  cv::Mat wide_label(32, 32, CV_16U, cv::Scalar(0));
  wide_label(cv::Rect(4, 6, 10, 3)) = 1;
  sparser::test::write_image(dir / "whu/train/label/tile_2.tif", wide_label);
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("whu --root " + (dir / "whu") + " -o " + (dir / "out_whu"), &log), 0) << log;
  auto tiles = read_all(dir / "out_whu/train.manifest.json");
  ASSERT_EQ(tiles.size(), 2u);
  ASSERT_EQ(tiles[0].instances.size(), 2u);
  EXPECT_TRUE(same_mask(tiles[0].instances[1].mask, rect_mask(32, 32, {20, 15, 8, 9})));
  ASSERT_EQ(tiles[1].instances.size(), 1u);
  EXPECT_TRUE(same_mask(tiles[1].instances[0].mask, rect_mask(32, 32, {4, 6, 10, 3})));

  fs::create_directories(dir.path() / "mine/images");
  fs::create_directories(dir.path() / "mine/masks");
  cv::Mat values(32, 32, CV_8U, cv::Scalar(0));
  values(cv::Rect(2, 2, 6, 5)) = 3;
  values(cv::Rect(20, 15, 8, 9)) = 3;
  values(cv::Rect(10, 25, 5, 5)) = 1;
  sparser::test::write_image(dir / "mine/images/a.png", cv::Mat(32, 32, CV_8UC3, cv::Scalar(5, 5, 5)));
  sparser::test::write_image(dir / "mine/masks/a.png", values);
  ASSERT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out_label"), &log), 0) << log;
  EXPECT_EQ(read_all(dir / "out_label/train.manifest.json")[0].instances.size(), 2u);
  ASSERT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " --instances components -o " +
                                    (dir / "out_cc"), &log), 0) << log;
  const auto cc = read_all(dir / "out_cc/train.manifest.json");
  ASSERT_EQ(cc[0].instances.size(), 3u);
  EXPECT_EQ(cc[0].instances[2].class_id, 3);
}

TEST(PrepCoco, PolygonPartsWithFewerThanThreePointsAreDroppedAndCounted) {
  ScratchDir dir("prep_coco_parts");
  sparser::test::write_image(dir / "val2017/a.jpg", cv::Mat(40, 40, CV_8UC3, cv::Scalar(9, 9, 9)));
  sparser::test::CocoJson val;
  val.add_image(1, "a.jpg", 40, 40);
  val.add_annotation(1, 1, {{2, 2, 12, 2, 12, 8, 2, 8}, {20, 20, 30, 30}});  // a box and a 2-point part
  val.add_annotation(1, 5, {{5, 5, 9, 9}});                                    // nothing usable: dropped
  val.add_annotation(1, 5, nlohmann::json::array());                           // no part at all: dropped
  val.write(dir / "annotations/instances_val2017.json");
  sparser::test::write_minimal_coco_train(dir.path().string());
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out"), &log), 0) << log;
  EXPECT_NE(log.find("polygon parts with fewer than 3 points (dropped): 2"), std::string::npos) << log;
  EXPECT_NE(log.find("annotations without a usable mask or class (dropped): 2"), std::string::npos) << log;
  EXPECT_NE(log.find("files skipped as corrupt or missing: 0"), std::string::npos) << log;
  const auto samples = read_all(dir / "out/val.manifest.json");
  ASSERT_EQ(samples.size(), 1u);
  ASSERT_EQ(samples[0].instances.size(), 1u);
  EXPECT_TRUE(same_mask(samples[0].instances[0].mask, rect_mask(40, 40, {2, 2, 10, 6})));
}

TEST(PrepCoco, ExifOrientationRotatesNeitherTheImageNorItsMasks) {
  ScratchDir dir("prep_exif");
  // A 40 x 30 JPEG, white where the polygon lies, tagged "rotate 90° clockwise to display".
  cv::Mat image(30, 40, CV_8UC3, cv::Scalar(0, 0, 0));
  image(cv::Rect(10, 5, 20, 10)) = cv::Scalar(255, 255, 255);
  std::vector<uint8_t> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, 100}));
  sparser::test::write_bytes(dir / "val2017/phone.jpg", sparser::test::with_exif_orientation(jpeg, 6));
  // OpenCV's default decoding would turn the image to 30 x 40.
  ASSERT_EQ(cv::imread(dir / "val2017/phone.jpg").size(), cv::Size(30, 40)) << "the tag was not recognised";
  sparser::test::CocoJson val;
  val.add_image(1, "phone.jpg", 30, 40);
  val.add_annotation(1, 1, {{10, 5, 30, 5, 30, 15, 10, 15}});
  val.write(dir / "annotations/instances_val2017.json");
  sparser::test::write_minimal_coco_train(dir.path().string());
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out"), &log), 0) << log;
  const auto samples = read_all(dir / "out/val.manifest.json");
  ASSERT_EQ(samples.size(), 1u);
  ASSERT_EQ(samples[0].image.size(), cv::Size(40, 30));
  cv::Mat grey, white;
  cv::cvtColor(samples[0].image, grey, cv::COLOR_RGB2GRAY);
  EXPECT_TRUE(same_mask(grey > 128, samples[0].instances[0].mask > 0));
  EXPECT_TRUE(same_mask(samples[0].instances[0].mask, rect_mask(30, 40, {10, 5, 20, 10})));
}

TEST(PrepCoco, EverySplitListsAllCategoriesAndAmbiguousFilesAreRefused) {
  ScratchDir dir("prep_coco_categories");
  sparser::test::write_image(dir / "val2017/a.jpg", cv::Mat(20, 20, CV_8UC3, cv::Scalar(9, 9, 9)));
  sparser::test::write_image(dir / "train2017/b.jpg", cv::Mat(20, 20, CV_8UC3, cv::Scalar(9, 9, 9)));
  sparser::test::CocoJson train, val;
  train.json["categories"] = {{{"id", 1}, {"name", "cat"}}, {{"id", 5}, {"name", "dog"}}};
  val.json["categories"] = {{{"id", 1}, {"name", "cat"}}, {{"id", 7}, {"name", "bird"}}};
  train.add_image(1, "b.jpg", 20, 20);
  train.add_annotation(1, 5, {{2, 2, 12, 2, 12, 8, 2, 8}});
  val.add_image(1, "a.jpg", 20, 20);
  val.add_annotation(1, 7, {{2, 2, 12, 2, 12, 8, 2, 8}});
  train.write(dir / "annotations/instances_train2017.json");
  val.write(dir / "annotations/instances_val2017.json");
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out"), &log), 0) << log;
  const nlohmann::json all = {{"1", "cat"}, {"5", "dog"}, {"7", "bird"}};
  for (const std::string split : {"train", "val"})
    EXPECT_EQ(nlohmann::json::parse(sparser::test::read_text(dir / ("out/" + split + ".manifest.json")))["class_names"],
              all) << split;

  val.json["categories"][0]["name"] = "kitten";
  val.write(dir / "annotations/instances_val2017.json");
  EXPECT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out_renamed"), &log), 1);
  EXPECT_NE(log.find("instances_val2017.json: category 1 is \"kitten\", an earlier split's file says \"cat\""),
            std::string::npos) << log;

  // Annotations find their image by id: two images with one id would pool their annotations.
  val.json["categories"][0]["name"] = "cat";
  val.add_image(1, "b.jpg", 20, 20);
  val.write(dir / "annotations/instances_val2017.json");
  EXPECT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out_ids"), &log), 1);
  EXPECT_NE(log.find("instances_val2017.json: images: id 1 appears more than once (a.jpg, b.jpg)"), std::string::npos)
      << log;
}

TEST(PrepNwpu, CocoMasksWithSeededReproducibleDisjointSplit) {
  ScratchDir dir("prep_nwpu");
  sparser::test::CocoJson annotations;
  const int images = 10;
  for (int i = 0; i < images; ++i) {
    const std::string name = std::to_string(i + 1) + ".jpg";
    sparser::test::write_image(dir / ("positive image set/" + name), cv::Mat(30, 40, CV_8UC3, cv::Scalar(i, i, i)));
    annotations.add_image(i + 1, name, 30, 40);
    annotations.add_annotation(i + 1, 1 + i % 2, {{4, 3, 4 + i + 5, 3, 4 + i + 5, 13, 4, 13}});
  }
  annotations.write(dir / "annotations.json");
  const auto convert = [&](const std::string& out, int seed) {
    std::string log;
    EXPECT_EQ(sparser::test::run_prep("nwpu --images '" + (dir / "positive image set") + "' --annotations " +
                                      (dir / "annotations.json") + " -o " + (dir / out) + " --seed " +
                                      std::to_string(seed), &log), 0) << log;
    std::vector<std::set<std::string>> split(2);
    for (int k = 0; k < 2; ++k)
      for (const auto& s : read_all(dir / (out + (k == 0 ? "/train" : "/val") + ".manifest.json"))) {
        const int i = std::stoi(s.file_name) - 1;  // "<i + 1>.jpg"
        EXPECT_TRUE(same_mask(s.instances.at(0).mask, rect_mask(30, 40, {4, 3, i + 5, 10}))) << s.file_name;
        EXPECT_EQ(s.instances[0].class_id, 1 + i % 2);
        split[k].insert(s.file_name);
      }
    return split;
  };
  const auto a = convert("a", 1), again = convert("again", 1), other = convert("other", 2);
  EXPECT_EQ(a[0].size(), 7u);  // 70 / 30
  EXPECT_EQ(a[1].size(), 3u);
  for (const auto& name : a[1]) EXPECT_EQ(a[0].count(name), 0u) << name << " in both splits";
  EXPECT_EQ(a, again);         // the same seed, the same split
  EXPECT_NE(a[1], other[1]);   // another seed, another split
  EXPECT_EQ(nlohmann::json::parse(sparser::test::read_text(dir / "a/val.manifest.json"))["split_seed"], 1);
}

TEST(PrepSsdd, OfficialReleaseLayoutAndSingleJsonWithTheOfficialTestRule) {
  ScratchDir dir("prep_ssdd");
  // The official release's PSeg_SSDD/coco_style: annotations/<split>.json, images/<split>/.
  const auto write_split = [&](const std::string& json, const std::string& images, const std::vector<int>& numbers) {
    sparser::test::CocoJson coco;
    for (int n : numbers) {
      char name[16];
      std::snprintf(name, sizeof name, "%06d.jpg", n);
      sparser::test::write_image(dir / (images + "/" + name), cv::Mat(20, 24, CV_8UC3, cv::Scalar(n, n, n)));
      coco.add_image(n, name, 20, 24);
      coco.add_annotation(n, 1, {{2, 2, 10, 2, 10, 6, 2, 6}});
    }
    coco.write(dir / json);
  };
  write_split("coco_style/annotations/train.json", "coco_style/images/train", {2, 3, 4});
  write_split("coco_style/annotations/test.json", "coco_style/images/test", {1, 9});
  write_split("coco_style/annotations/test_inshore.json", "coco_style/images/test_inshore", {1});
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("ssdd --root " + (dir / "coco_style") + " -o " + (dir / "out_release"), &log), 0)
      << log;
  EXPECT_EQ(read_all(dir / "out_release/train.manifest.json").size(), 3u);
  const auto val = read_all(dir / "out_release/val.manifest.json");  // SSDD's test split
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(val[0].file_name, "000001.jpg");
  EXPECT_TRUE(same_mask(val[0].instances.at(0).mask, rect_mask(20, 24, {2, 2, 8, 4})));
  ASSERT_EQ(sparser::test::run_prep("ssdd --root " + (dir / "coco_style") + " --test-subset inshore -o " +
                                    (dir / "out_inshore"), &log), 0) << log;
  EXPECT_EQ(read_all(dir / "out_inshore/val.manifest.json").size(), 1u);

  // One JSON over all images: numbers ending in 1 or 9 are test.
  write_split("single/SSDD.json", "JPEGImages", {1, 2, 3, 9, 10, 11, 12, 19});
  ASSERT_EQ(sparser::test::run_prep("ssdd --annotations " + (dir / "single/SSDD.json") + " --images " +
                                    (dir / "JPEGImages") + " -o " + (dir / "out_single"), &log), 0) << log;
  std::set<std::string> test_names, train_names;
  for (const auto& s : read_all(dir / "out_single/val.manifest.json")) test_names.insert(s.file_name);
  for (const auto& s : read_all(dir / "out_single/train.manifest.json")) train_names.insert(s.file_name);
  EXPECT_EQ(test_names, (std::set<std::string>{"000001.jpg", "000009.jpg", "000011.jpg", "000019.jpg"}));
  EXPECT_EQ(train_names, (std::set<std::string>{"000002.jpg", "000003.jpg", "000010.jpg", "000012.jpg"}));

  EXPECT_EQ(
      sparser::test::run_prep("ssdd --root " + (dir / "coco_style") + " --images x -o " + (dir / "out_both"), &log), 2);
  EXPECT_NE(log.find("either --root, or both --annotations and --images"), std::string::npos) << log;
}

TEST(PrepFolder, MasksKeepTheirLabelValues16BitAndPaletteAndColourIsRefused) {
  ScratchDir dir("prep_folder_labels");
  sparser::test::write_image(dir / "mine/images/a.png", cv::Mat(24, 32, CV_8UC3, cv::Scalar(5, 5, 5)));
  sparser::test::write_image(dir / "mine/images/b.png", cv::Mat(24, 32, CV_8UC3, cv::Scalar(6, 6, 6)));
  sparser::test::write_image(dir / "mine/images/c.png", cv::Mat(24, 32, CV_8UC3, cv::Scalar(7, 7, 7)));
  cv::Mat wide(24, 32, CV_16U, cv::Scalar(0));  // values 1, 2 and 300: 16-bit PNG
  wide(cv::Rect(1, 1, 4, 4)) = 1;
  wide(cv::Rect(10, 1, 5, 4)) = 2;
  wide(cv::Rect(20, 10, 6, 7)) = 300;
  sparser::test::write_image(dir / "mine/masks/a.png", wide);
  cv::Mat indices(24, 32, CV_8U, cv::Scalar(0));  // palette indices 1 and 2 (a 4-bit palette PNG, Paeth rows)
  indices(cv::Rect(3, 3, 9, 5)) = 1;
  indices(cv::Rect(15, 12, 7, 8)) = 2;
  sparser::test::write_palette_png(dir / "mine/masks/b.png", indices, 4, 4);
  sparser::test::write_palette_png(dir / "mine/masks/c.png", indices, 8, 2);
  std::string log;
  ASSERT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out") + " --min-area 1", &log), 0)
      << log;
  const auto samples = read_all(dir / "out/train.manifest.json");
  ASSERT_EQ(samples.size(), 3u);
  ASSERT_EQ(samples[0].instances.size(), 3u);
  EXPECT_EQ(samples[0].instances[2].class_id, 300);
  EXPECT_TRUE(same_mask(samples[0].instances[0].mask, rect_mask(24, 32, {1, 1, 4, 4})));
  for (int k : {1, 2}) {
    ASSERT_EQ(samples[k].instances.size(), 2u) << samples[k].file_name;
    EXPECT_EQ(samples[k].instances[0].class_id, 1);
    EXPECT_EQ(samples[k].instances[1].class_id, 2);
    EXPECT_TRUE(same_mask(samples[k].instances[1].mask, rect_mask(24, 32, {15, 12, 7, 8}))) << samples[k].file_name;
  }
  // Files that pair with nothing are named in the report, not passed over in silence.
  std::ofstream(dir / "mine/images/notes.txt") << "not an image";
  sparser::test::write_image(dir / "mine/masks/orphan.png", indices);
  ASSERT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out_extra"), &log), 0) << log;
  EXPECT_NE(log.find("source files ignored: 2\n"), std::string::npos) << log;
  EXPECT_NE(log.find("images/notes.txt: not an image extension"), std::string::npos) << log;
  EXPECT_NE(log.find("masks/orphan.png: no image of the same stem in images/"), std::string::npos) << log;
  sparser::test::write_image(dir / "mine/masks/c.png", cv::Mat(24, 32, CV_8UC3, cv::Scalar(0, 0, 255)));
  EXPECT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out_colour"), &log), 1);
  EXPECT_NE(log.find("masks/c.png: a 3-channel (colour) mask"), std::string::npos) << log;
}

TEST(PrepFolder, AnIgnoredValueBelongsToNoInstance) {
  // VOC-style: an object of class 1 outlined by 255, the "void" border.
  ScratchDir dir("prep_folder_ignore");
  sparser::test::write_image(dir / "mine/images/a.png", cv::Mat(20, 20, CV_8UC3, cv::Scalar(5, 5, 5)));
  cv::Mat mask(20, 20, CV_8U, cv::Scalar(0));
  mask(cv::Rect(4, 4, 10, 10)) = 255;
  mask(cv::Rect(5, 5, 8, 8)) = 1;
  sparser::test::write_image(dir / "mine/masks/a.png", mask);
  std::string log;
  ASSERT_EQ(
      sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "plain") + " --min-area 1", &log), 0)
      << log;
  EXPECT_EQ(read_all(dir / "plain/train.manifest.json").at(0).instances.size(), 2u) << "255 is a class without it";
  ASSERT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "out") +
                                    " --min-area 1 --ignore-value 255", &log), 0) << log;
  const auto samples = read_all(dir / "out/train.manifest.json");
  ASSERT_EQ(samples.at(0).instances.size(), 1u);
  EXPECT_EQ(samples[0].instances[0].class_id, 1);
  EXPECT_TRUE(same_mask(samples[0].instances[0].mask, rect_mask(20, 20, {5, 5, 8, 8})));
  EXPECT_EQ(sparser::test::run_prep("folder --root " + (dir / "mine") + " -o " + (dir / "bad") + " --ignore-value 0",
                                    &log), 2);
  EXPECT_NE(log.find("--ignore-value must be a mask value from 1 to 65535"), std::string::npos) << log;
}

// A 12-bit image in a 16-bit PNG (values 0..4095): read as 8-bit, OpenCV kept its high byte
// (16 grey levels, 0..15); it is rescaled by its 0.5th-99.5th percentiles instead.
TEST(PrepFolder, ImagesOfMoreThan8BitsAreRescaledNotCutToTheirHighByte) {
  ScratchDir dir("prep_folder_16bit");
  cv::Mat ramp(24, 32, CV_16U);
  for (int y = 0; y < ramp.rows; ++y)
    for (int x = 0; x < ramp.cols; ++x) ramp.at<uint16_t>(y, x) = static_cast<uint16_t>(x * 4095 / 31);
  sparser::test::write_image(dir / "mine/images/a.png", ramp);
  cv::Mat mask(24, 32, CV_8U, cv::Scalar(0));
  mask(cv::Rect(2, 2, 9, 9)) = 1;
  sparser::test::write_image(dir / "mine/masks/a.png", mask);
  std::string log;
  const auto command = "folder --root " + (dir / "mine") + " -o " + (dir / "out") + " --min-area 1";
  ASSERT_EQ(sparser::test::run_prep(command, &log), 0) << log;
  const auto samples = read_all(dir / "out/train.manifest.json");
  ASSERT_EQ(samples.size(), 1u);
  const cv::Mat& image = samples[0].image;
  ASSERT_EQ(image.type(), CV_8UC3);
  EXPECT_EQ(image.at<cv::Vec3b>(5, 0)[0], 0);
  EXPECT_EQ(image.at<cv::Vec3b>(5, 31)[0], 255);
  EXPECT_NEAR(image.at<cv::Vec3b>(5, 16)[1], 16 * 255 / 31, 1);

  // The rule itself: the 0.5th and 99.5th percentiles map to 0 and 255, outliers clip.
  cv::Mat values(1, 1000, CV_32F);
  for (int i = 0; i < 1000; ++i) values.at<float>(0, i) = static_cast<float>(i);
  values.at<float>(0, 999) = 1e9f;
  const cv::Mat eight = sparser::data::to_eight_bit(values);
  EXPECT_EQ(eight.type(), CV_8UC1);
  EXPECT_EQ(eight.at<uint8_t>(0, 5), 0);
  EXPECT_EQ(eight.at<uint8_t>(0, 994), 255);
  EXPECT_EQ(eight.at<uint8_t>(0, 999), 255);
  EXPECT_NEAR(eight.at<uint8_t>(0, 500), 128, 1);
  EXPECT_EQ(cv::countNonZero(sparser::data::to_eight_bit(cv::Mat(3, 3, CV_16U, cv::Scalar(700)))), 0);
}

// The h5py example of docs/data.md, run with the system Python when h5py is installed.
TEST(ShardFormatDocs, H5pyExampleReadsAndWritesAShard) {
  if (std::system("/usr/bin/python3 -c 'import h5py, numpy' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-h5py not installed";
  ScratchDir dir("h5py_docs");
  fs::create_directories(dir.path() / "val2017");
  write_coco(dir, 2);
  ASSERT_EQ(sparser::test::run_prep("coco --root " + dir.path().string() + " -o " + (dir / "out")), 0);
  std::ifstream docs(fs::path(__FILE__).parent_path().parent_path().parent_path() / "docs" / "data.md");
  ASSERT_TRUE(docs) << "docs/data.md missing";
  const std::string text((std::istreambuf_iterator<char>(docs)), std::istreambuf_iterator<char>());
  const std::string begin = "```python\n", end = "```";
  const size_t start = text.find(begin);
  ASSERT_NE(start, std::string::npos);
  const std::string script = text.substr(start + begin.size(), text.find(end, start + begin.size()) - start - begin.size());
  std::ofstream(dir / "example.py") << script;
  std::string log;
  const std::string command = "cd " + dir.path().string() + " && /usr/bin/python3 example.py out/val-00000.h5 written.h5";
  ASSERT_EQ(std::system((command + " > log.txt 2>&1").c_str()), 0) << [&] {
    std::ifstream l(dir / "log.txt");
    return std::string((std::istreambuf_iterator<char>(l)), std::istreambuf_iterator<char>());
  }();
  ShardReader written(dir / "written.h5");  // the h5py-written shard reads back in C++
  ASSERT_EQ(written.size(), 1);
  EXPECT_EQ(written.read(0).instances.size(), 1u);
}
