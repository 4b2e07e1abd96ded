#pragma once
// The per-split manifest (JSON, "<split>.manifest.json" next to its shards): which
// shards make the split, their counts and CRC-32 checksums, the split seed and the
// converter that wrote them.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace sparser::data {

struct ManifestShard {
  std::string file;  // relative to the manifest's directory
  int64_t num_samples = 0;
  int64_t num_instances = 0;
  int64_t bytes = 0;
  uint32_t crc32 = 0;  // zlib crc32 of the whole file
};

struct Manifest {
  int schema_version = 0;
  std::string dataset;
  std::string split;
  int64_t split_seed = 0;
  std::string converter_version;
  std::vector<ManifestShard> shards;
  // JSON object mapping class id → name, kept verbatim from the converter.
  std::string class_names_json = "{}";

  int64_t num_samples() const;
};

// What the split holds, one line each: dataset, split, schema, converter and sample count;
// every shard's file, sample count and CRC-32. Equal text, equal samples: a split prepared
// again (other images, another seed) differs.
std::string contents_identity(const Manifest& manifest);

// Throws DataError naming the file on unreadable JSON, a wrong format or schema version,
// or a missing key.
Manifest read_manifest(const std::string& path);
void write_manifest(const Manifest& manifest, const std::string& path);

// zlib crc32 of a file's bytes; throws DataError if it cannot be read. `keep_going`, if
// given, is asked before each 1 MiB block: once it says false the pass stops early and
// the value returned means nothing.
uint32_t file_crc32(const std::string& path, const std::function<bool()>& keep_going = {});
std::string crc32_hex(uint32_t crc);

}  // namespace sparser::data
