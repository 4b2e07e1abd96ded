#include "data/manifest.h"

#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/shard_format.h"

namespace sparser::data {

int64_t Manifest::num_samples() const {
  int64_t n = 0;
  for (const auto& s : shards) n += s.num_samples;
  return n;
}

std::string contents_identity(const Manifest& manifest) {
  std::string text = "data: dataset=" + manifest.dataset + " split=" + manifest.split +
                     " schema=" + std::to_string(manifest.schema_version) + " converter=" +
                     manifest.converter_version + " samples=" + std::to_string(manifest.num_samples()) + "\n";
  for (const auto& s : manifest.shards)
    text += "shard: " + s.file + " samples=" + std::to_string(s.num_samples) + " crc32=" + crc32_hex(s.crc32) + "\n";
  return text;
}

std::string crc32_hex(uint32_t crc) {
  char buffer[9];
  std::snprintf(buffer, sizeof buffer, "%08x", crc);
  return buffer;
}

uint32_t file_crc32(const std::string& path, const std::function<bool()>& keep_going) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open for checksumming");
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buffer(1 << 20);
  while (in && (!keep_going || keep_going())) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buffer.data()), static_cast<uInt>(in.gcount()));
  }
  if (in.bad()) throw DataError(path + ": read error while checksumming");
  return static_cast<uint32_t>(crc);
}

Manifest read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": cannot open manifest");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": not valid JSON: " + e.what());
  }
  const auto get = [&](const nlohmann::json& object, const char* key, const std::string& where) {
    if (!object.is_object() || !object.contains(key)) throw DataError(path + ": " + where + "missing key '" + key + "'");
    return object.at(key);
  };
  const auto count = [&](const nlohmann::json& object, const char* key, const std::string& where) {
    const auto value = get(object, key, where).get<int64_t>();
    if (value < 0) throw DataError(path + ": " + where + "'" + key + "' is negative (" + std::to_string(value) + ")");
    return value;
  };
  const auto crc32 = [&](const nlohmann::json& object, const std::string& where) {
    const auto text = get(object, "crc32", where).get<std::string>();
    if (text.empty() || text.size() > 8 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
      throw DataError(path + ": " + where + "crc32 '" + text + "' is not 1 to 8 hexadecimal digits");
    return static_cast<uint32_t>(std::stoul(text, nullptr, 16));
  };
  Manifest m;
  try {
    if (get(j, "format", "").get<std::string>() != shard_format::kManifestFormatName)
      throw DataError(path + ": not a sparser manifest (format is not '" +
                      std::string(shard_format::kManifestFormatName) + "')");
    m.schema_version = get(j, "schema_version", "").get<int>();
    if (m.schema_version != shard_format::kSchemaVersion)
      throw DataError(path + ": schema version " + std::to_string(m.schema_version) + ", this build reads version " +
                      std::to_string(shard_format::kSchemaVersion));
    m.dataset = get(j, "dataset", "").get<std::string>();
    m.split = get(j, "split", "").get<std::string>();
    m.split_seed = get(j, "split_seed", "").get<int64_t>();
    m.converter_version = get(j, "converter_version", "").get<std::string>();
    m.class_names_json = j.value("class_names", nlohmann::json::object()).dump();
    const auto shards = get(j, "shards", "");
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string where = "shards[" + std::to_string(i) + "]: ";
      ManifestShard s;
      s.file = get(shards[i], "file", where).get<std::string>();
      s.num_samples = count(shards[i], "samples", where);
      s.num_instances = count(shards[i], "instances", where);
      s.bytes = count(shards[i], "bytes", where);
      s.crc32 = crc32(shards[i], where);
      m.shards.push_back(s);
    }
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": malformed manifest: " + e.what());
  }
  return m;
}

void write_manifest(const Manifest& m, const std::string& path) {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& s : m.shards)
    shards.push_back({{"file", s.file}, {"samples", s.num_samples}, {"instances", s.num_instances},
                      {"bytes", s.bytes}, {"crc32", crc32_hex(s.crc32)}});
  const nlohmann::json j = {{"format", shard_format::kManifestFormatName},
                            {"schema_version", m.schema_version},
                            {"dataset", m.dataset},
                            {"split", m.split},
                            {"split_seed", m.split_seed},
                            {"converter_version", m.converter_version},
                            {"num_samples", m.num_samples()},
                            {"class_names", nlohmann::json::parse(m.class_names_json)},
                            {"shards", shards}};
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw DataError(path + ": cannot write manifest");
}

}  // namespace sparser::data
