#include "conversion_runner.h"

#include <opencv2/core.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <thread>

#include "data/sample_codec.h"
#include "data/shard_format.h"
#include "progress_bar.h"

namespace sparser::prep {

namespace {

// The outcome of one job, computed on a worker thread.
struct JobResult {
  std::vector<data::EncodedSample> samples;
  int64_t small_masks_dropped = 0;
  int64_t crowd_skipped = 0;
  int64_t polygon_parts_dropped = 0;
  int64_t annotations_without_mask = 0;
  int64_t images_without_instances = 0;
  std::string error;  // non-empty: the job failed
};

JobResult run_job(const ImageJob& job, int64_t min_area) {
  JobResult result;
  try {
    for (auto& image : job.load()) {
      result.crowd_skipped += image.crowd_skipped;
      result.polygon_parts_dropped += image.polygon_parts_dropped;
      result.annotations_without_mask += image.annotations_without_mask;
      data::EncodedSample sample;
      for (const auto& m : image.masks) {
        auto instance = data::encode_instance(m.mask, m.class_id);
        if (instance.area == 0 || instance.area < min_area) {
          ++result.small_masks_dropped;
          continue;
        }
        sample.instances.push_back(std::move(instance));
      }
      if (sample.instances.empty()) {
        ++result.images_without_instances;
        continue;
      }
      sample.image = std::move(image.encoded);
      sample.height = image.height;
      sample.width = image.width;
      sample.file_name = std::move(image.file_name);
      sample.source_id = image.source_id;
      sample.meta_json = std::move(image.meta_json);
      result.samples.push_back(std::move(sample));
    }
  } catch (const std::exception& e) {
    result.error = e.what();
    // Name the file even when a library error message does not.
    if (result.error.find(job.source_path) == std::string::npos) result.error = job.source_path + ": " + result.error;
  }
  return result;
}

}  // namespace

ConversionReport run_conversion(Plan plan, const CommonOptions& options, const std::string& converter_version,
                                OutputDirectory& output, const std::atomic<bool>& stop) {
  const auto start = std::chrono::steady_clock::now();
  ConversionReport report;
  report.ignored_files = plan.ignored_files;
  std::map<std::string, std::unique_ptr<SplitSink>> sinks;
  for (const auto& split : plan.splits) {
    data::Manifest manifest;
    manifest.schema_version = data::shard_format::kSchemaVersion;
    manifest.dataset = plan.dataset;
    manifest.split = split;
    manifest.split_seed = static_cast<int64_t>(options.seed);
    manifest.converter_version = converter_version;
    manifest.class_names_json = plan.class_names_json;
    sinks[split] = std::make_unique<SplitSink>(output.staging(), manifest, options.shard_size_mb << 20);
    report.splits[split];
  }
  if (options.limit > 0) {
    std::map<std::string, int64_t> taken;
    std::vector<ImageJob> limited;
    for (auto& job : plan.jobs)
      if (taken[job.split]++ < options.limit) limited.push_back(std::move(job));
    plan.jobs = std::move(limited);
  }

  // An empty split is a wrong path or layout, not a result: nothing is written.
  std::map<std::string, int64_t> jobs_of_split;
  for (const auto& job : plan.jobs) ++jobs_of_split[job.split];
  for (const auto& split : plan.splits)
    if (jobs_of_split[split] == 0)
      throw SourceError(plan.dataset + ": no source files for the " + split + " split (" +
                        std::to_string(plan.jobs.size()) +
                        " for the others); nothing written: check the input paths, or the split options "
                        "(such as --train-fraction) for so few files");

  ProgressBar progress(plan.dataset, static_cast<int64_t>(plan.jobs.size()));
  const size_t threads = static_cast<size_t>(std::max(options.threads, 1));
  const size_t batch = threads * 8;  // jobs in flight; results are written in plan order per batch
  for (size_t begin = 0; begin < plan.jobs.size(); begin += batch) {
    if (stop) throw Interrupted("interrupted; nothing written");
    const size_t end = std::min(plan.jobs.size(), begin + batch);
    std::vector<JobResult> results(end - begin);
    std::atomic<size_t> next{begin};
    std::vector<std::thread> workers;
    for (size_t t = 0; t < std::min(threads, end - begin); ++t)
      workers.emplace_back([&] {
        for (size_t j = next++; j < end && !stop; j = next++) {
          results[j - begin] = run_job(plan.jobs[j], options.min_area);
          progress.advance();
        }
      });
    for (auto& w : workers) w.join();
    if (stop) throw Interrupted("interrupted; nothing written");
    for (size_t j = begin; j < end; ++j) {
      auto& result = results[j - begin];
      if (!result.error.empty()) {
        if (!options.skip_errors) throw SourceError(result.error);
        report.skipped_files.push_back(result.error);
        continue;
      }
      auto& counts = report.splits[plan.jobs[j].split];
      ++counts.source_files;
      report.small_masks_dropped += result.small_masks_dropped;
      report.crowd_skipped += result.crowd_skipped;
      report.polygon_parts_dropped += result.polygon_parts_dropped;
      report.annotations_without_mask += result.annotations_without_mask;
      report.images_without_instances += result.images_without_instances;
      for (auto& sample : result.samples) {
        ++counts.images;
        counts.instances += static_cast<int64_t>(sample.instances.size());
        sinks.at(plan.jobs[j].split)->add(std::move(sample));
      }
    }
  }
  progress.finish();
  for (const auto& [split, counts] : report.splits)
    if (counts.images == 0)
      throw SourceError(plan.dataset + ": the " + split + " split's " + std::to_string(jobs_of_split[split]) +
                        " source files gave no image with instances (skipped, or every mask dropped); nothing written");
  for (auto& [split, sink] : sinks) sink->finish();
  output.commit();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

void print_report(const ConversionReport& report, std::ostream& out) {
  int64_t images = 0;
  for (const auto& [split, c] : report.splits) {
    out << split << ": " << c.images << " images, " << c.instances << " instances from " << c.source_files
        << " source files\n";
    images += c.images;
  }
  out << "masks below the minimum area (dropped): " << report.small_masks_dropped << "\n"
      << "crowd annotations skipped: " << report.crowd_skipped << "\n"
      << "polygon parts with fewer than 3 points (dropped): " << report.polygon_parts_dropped << "\n"
      << "annotations without a usable mask or class (dropped): " << report.annotations_without_mask << "\n"
      << "images without instances (dropped): " << report.images_without_instances << "\n"
      << "files skipped as corrupt or missing: " << report.skipped_files.size() << "\n";
  for (const auto& s : report.skipped_files) out << "  " << s << "\n";
  out << "source files ignored: " << report.ignored_files.size() << "\n";
  for (const auto& s : report.ignored_files) out << "  " << s << "\n";
  out << "time: " << report.seconds << " s (" << (report.seconds > 0 ? images / report.seconds : 0.0)
      << " images/s)\n";
}

}  // namespace sparser::prep
