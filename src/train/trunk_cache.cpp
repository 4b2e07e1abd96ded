#include "train/trunk_cache.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "io/hdf5_file.h"
#include "util/file_lock.h"

namespace fs = std::filesystem;

namespace sparser::train {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

void fnv_bytes(uint64_t& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnvPrime;
}

// FNV-1a over 8-byte little-endian words (then the tail bytes): the same stable hash
// family, ~8× faster on the hundreds of MB of a ViT-B trunk.
void fnv_words(uint64_t& h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * kFnvPrime;
  }
  fnv_bytes(h, p + i, n - i);
}

void fnv_string(uint64_t& h, const std::string& s) {
  fnv_bytes(h, s.data(), s.size());
  fnv_bytes(h, "\0", 1);
}

bool is_trunk_name(const std::string& name) {
  auto starts = [&](const char* prefix) { return name.rfind(prefix, 0) == 0; };
  return starts("patch_embed.") || name == "pos_embed" || starts("blocks.");
}

std::string hex64(uint64_t v) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(v));
  return buffer;
}

template <typename T>
uint32_t crc32_of(const T* values, int64_t count) {
  const auto bytes = static_cast<size_t>(count) * sizeof(T);
  return static_cast<uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(values), bytes));
}

std::string join(const std::vector<int64_t>& values) {
  std::string s;
  for (auto v : values) s += (s.empty() ? "" : ",") + std::to_string(v);
  return s;
}

}  // namespace

std::string to_string(TrunkCacheMode mode) {
  switch (mode) {
    case TrunkCacheMode::Off: return "off";
    case TrunkCacheMode::Memory: return "memory";
    case TrunkCacheMode::Disk: return "disk";
  }
  return "?";
}

std::string to_string(TrunkCacheDtype dtype) { return dtype == TrunkCacheDtype::Fp16 ? "fp16" : "fp32"; }

uint64_t trunk_hash(model::ImageEncoderViTImpl& encoder) {
  torch::NoGradGuard no_grad;
  uint64_t h = kFnvOffset;
  auto add = [&](const std::string& kind, const std::string& name, const torch::Tensor& t) {
    if (!is_trunk_name(name) || !t.defined()) return;
    fnv_string(h, kind + ":" + name);
    const auto shape = t.sizes().vec();
    fnv_string(h, join(shape) + ":" + std::string(c10::toString(t.scalar_type())));
    const auto cpu = t.detach().to(torch::kCPU).contiguous();
    fnv_words(h, cpu.data_ptr(), static_cast<size_t>(cpu.numel() * cpu.element_size()));
  };
  for (const auto& item : encoder.named_parameters(/*recurse=*/true)) add("param", item.key(), item.value());
  for (const auto& item : encoder.named_buffers(/*recurse=*/true)) add("buffer", item.key(), item.value());
  return h;
}

uint64_t TrunkCacheKey::hash() const {
  uint64_t h = kFnvOffset;
  fnv_bytes(h, text.data(), text.size());
  return h;
}

std::string TrunkCacheKey::hex() const { return hex64(hash()); }

TrunkCacheKey make_trunk_cache_key(const model::SamConfig& c, uint64_t trunk, const data::Manifest& manifest,
                                   const std::string& role, const std::string& device, const std::string& precision,
                                   TrunkCacheDtype dtype) {
  std::ostringstream out;
  out << "sparser trunk cache, format " << kTrunkCacheFormatVersion << "\n"
      << "trunk: " << hex64(trunk) << "\n"
      << "model: image_size=" << c.image_size << " patch_size=" << c.patch_size
      << " embed_dim=" << c.encoder_embed_dim << " depth=" << c.encoder_depth << " heads=" << c.encoder_num_heads
      << " window=" << c.window_size << " global=[" << join(c.encoder_global_attn_indexes) << "] mlp_ratio="
      << c.mlp_ratio << "\n"
      << "preprocess: resize-longest-side + normalise(123.675,116.28,103.53 / 58.395,57.12,57.375) + pad, version "
      << kTrunkPreprocessVersion << ", path " << role << "\n"
      << data::contents_identity(manifest)
      << "compute: device=" << device << " precision=" << precision << " torch=" << TORCH_VERSION << "\n"
      << "storage: " << to_string(dtype) << "\n";
  return {out.str()};
}

std::string TrunkCache::file_name(const TrunkCacheKey& key, int64_t rank) {
  return "trunk-" + key.hex() + "-rank" + std::to_string(rank) + ".h5";
}

int64_t TrunkCache::bytes_per_sample() const {
  int64_t n = options_.dtype == TrunkCacheDtype::Fp16 ? 2 : 4;
  for (auto d : options_.sample_shape) n *= d;
  return n;
}

TrunkCache::TrunkCache(TrunkCacheKey key, TrunkCacheOptions options, const TrunkCacheLog& log)
    : key_(std::move(key)), options_(std::move(options)), log_(log) {
  if (options_.sample_shape.size() != 3) throw std::invalid_argument("TrunkCache: sample_shape must be {g, g, C}");
  if (options_.mode == TrunkCacheMode::Memory) {
    memory_.resize(static_cast<size_t>(options_.num_samples));
    return;
  }
  if (options_.mode != TrunkCacheMode::Disk) throw std::invalid_argument("TrunkCache: mode off");
  fs::create_directories(options_.dir);
  path_ = (fs::path(options_.dir) / file_name(key_, options_.rank)).string();
  lock_file();
  try {
    open_file();
  } catch (...) {
    file_.reset();
    lock_.reset();
    throw;
  }
}

void TrunkCache::open_file() {
  if (!fs::exists(path_)) {
    create_file();
    if (log_) log_("trunk cache: created " + path_);
    return;
  }
  // An existing file: reuse it only when format, key and shape all match.
  std::string stale;
  try {
    file_ = std::make_unique<io::Hdf5File>(path_, io::Hdf5File::Mode::ReadWrite);
    std::vector<int64_t> expected{options_.num_samples};
    expected.insert(expected.end(), options_.sample_shape.begin(), options_.sample_shape.end());
    if (!file_->has_attribute("/", "format_version") ||
        file_->read_int_attribute("/", "format_version") != kTrunkCacheFormatVersion)
      stale = "format version differs";
    else if (!file_->has_attribute("/", "key") || file_->read_string_attribute("/", "key") != key_.text)
      stale = "stored key differs from this run's (different trunk weights, model, pre-processing or data)";
    else if (file_->read_string_attribute("/", "dtype") != to_string(options_.dtype))
      stale = "storage dtype differs";
    else if (!file_->exists("features") || file_->shape("features") != expected || !file_->exists("present") ||
             file_->shape("present") != std::vector<int64_t>{options_.num_samples} || !file_->exists("crc32") ||
             file_->shape("crc32") != std::vector<int64_t>{options_.num_samples})
      stale = "dataset shapes differ";
    else
      present_ = file_->read<uint8_t>("present"), crc32_ = file_->read<uint32_t>("crc32");
  } catch (const std::exception& e) {
    stale = std::string("unreadable (") + e.what() + ")";
  }
  if (!stale.empty()) {
    file_.reset();
    if (log_) log_("trunk cache: " + path_ + " is stale: " + stale + "; rebuilding it");
    create_file();
    return;
  }
  entries_ = std::count(present_.begin(), present_.end(), uint8_t{1});
  if (log_)
    log_("trunk cache: reusing " + path_ + " (" + std::to_string(entries_) + " of " +
        std::to_string(options_.num_samples) + " samples present)");
}

TrunkCache::~TrunkCache() { file_.reset(); }  // before the lock is released

// The HDF5 library's own file locking may be off (HDF5_USE_FILE_LOCKING=FALSE, common on
// Lustre and NFS), and where it is on, a second process could only tell a busy file from
// a broken one by its error; so the cache holds a lock of its own for its lifetime.
void TrunkCache::lock_file() {
  const auto lock_path = path_ + ".lock";
  lock_ = util::FileLock::try_acquire(lock_path);
  if (!lock_) throw TrunkCacheBusy(path_ + " is in use by another process (it holds " + lock_path + ")");
}

void TrunkCache::create_file() {
  fs::remove(path_);
  file_ = std::make_unique<io::Hdf5File>(path_, io::Hdf5File::Mode::Truncate);
  std::vector<int64_t> shape{options_.num_samples}, chunk{1};
  shape.insert(shape.end(), options_.sample_shape.begin(), options_.sample_shape.end());
  chunk.insert(chunk.end(), options_.sample_shape.begin(), options_.sample_shape.end());
  file_->write_int_attribute("/", "format_version", kTrunkCacheFormatVersion);
  file_->write_string_attribute("/", "key", key_.text);
  file_->write_string_attribute("/", "dtype", to_string(options_.dtype));
  file_->write_string_attribute(
      "/", "layout",
      "features[N,g,g,C]: float32, or for fp16 the IEEE binary16 bits as uint16; one sample per chunk. "
      "crc32[N]: zlib CRC-32 of row i's bytes. present[N]: 1 once row i and its CRC-32 are written");
  if (options_.num_samples > 0) {
    if (options_.dtype == TrunkCacheDtype::Fp16)
      file_->create<uint16_t>("features", shape, chunk);
    else
      file_->create<float>("features", shape, chunk);
  } else {
    file_->create<float>("features", shape);
  }
  crc32_.assign(static_cast<size_t>(options_.num_samples), 0);
  file_->write<uint32_t>("crc32", crc32_, {options_.num_samples});
  present_.assign(static_cast<size_t>(options_.num_samples), 0);
  file_->write<uint8_t>("present", present_, {options_.num_samples});
  file_->flush();
  entries_ = 0;
}

void TrunkCache::check_index(int64_t index) const {
  if (index < 0 || index >= options_.num_samples)
    throw std::out_of_range("trunk cache: sample index " + std::to_string(index) + " out of range [0, " +
                            std::to_string(options_.num_samples) + ")");
}

std::optional<torch::Tensor> TrunkCache::get(int64_t index) {
  check_index(index);
  if (options_.mode == TrunkCacheMode::Memory) {
    const auto& stored = memory_[static_cast<size_t>(index)];
    if (!stored.defined()) return ++misses_, std::nullopt;
    ++hits_;
    return stored.scalar_type() == torch::kFloat ? stored : stored.to(torch::kFloat);
  }
  if (disabled_ || !present_[static_cast<size_t>(index)]) return ++misses_, std::nullopt;
  std::optional<torch::Tensor> row;
  try {
    row = read_row(index);
  } catch (const std::exception& e) {
    disable("reading sample " + std::to_string(index), e);
  }
  if (!row) return ++misses_, std::nullopt;
  ++hits_;
  return row;
}

// Row `index` as float32, or nothing when it fails its CRC-32: a write the
// file system did not complete (a full disk can leave a hole of zeros) or bytes changed
// since. The row then counts as absent, so the caller computes it and put() rewrites it.
std::optional<torch::Tensor> TrunkCache::read_row(int64_t index) {
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), options_.sample_shape.begin(), options_.sample_shape.end());
  const auto expected = crc32_[static_cast<size_t>(index)];
  if (options_.dtype == TrunkCacheDtype::Fp16) {
    auto bits = file_->read_row<uint16_t>("features", index);
    if (crc32_of(bits.data(), static_cast<int64_t>(bits.size())) == expected)
      return torch::from_blob(bits.data(), shape, torch::kHalf).to(torch::kFloat);
  } else {
    auto values = file_->read_row<float>("features", index);
    if (crc32_of(values.data(), static_cast<int64_t>(values.size())) == expected)
      return torch::from_blob(values.data(), shape, torch::kFloat).clone();
  }
  ++corrupt_rows_;
  if (log_)
    log_("trunk cache: " + path_ + ": sample " + std::to_string(index) +
         " fails its CRC-32 (an incomplete write or changed bytes); computing it again");
  present_[static_cast<size_t>(index)] = 0;
  --entries_;
  return std::nullopt;
}

void TrunkCache::put(int64_t index, const torch::Tensor& trunk) {
  check_index(index);
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), options_.sample_shape.begin(), options_.sample_shape.end());
  const auto dtype = options_.dtype == TrunkCacheDtype::Fp16 ? torch::kHalf : torch::kFloat;
  TORCH_CHECK(trunk.numel() == bytes_per_sample() / (dtype == torch::kHalf ? 2 : 4),
              "trunk cache: put of a tensor of shape ", trunk.sizes(), ", expected ", shape);
  // A copy of our own (never a view of the caller's tensor).
  const auto stored = trunk.detach().to(torch::kCPU).to(dtype).reshape(shape).clone();
  if (options_.mode == TrunkCacheMode::Memory) {
    auto& slot = memory_[static_cast<size_t>(index)];
    if (!slot.defined()) ++entries_;
    slot = stored;
    return;
  }
  if (disabled_ || present_[static_cast<size_t>(index)]) return;
  try {
    write_row(index, stored);
  } catch (const std::exception& e) {
    disable("writing sample " + std::to_string(index), e);
  }
}

void TrunkCache::write_row(int64_t index, const torch::Tensor& stored) {
  // Row and CRC-32 first, flushed, then the present flag: a crash in between leaves
  // present = 0, and a write the file system lost fails the CRC-32 when read.
  if (options_.dtype == TrunkCacheDtype::Fp16)
    file_->write_row<uint16_t>("features", index, reinterpret_cast<const uint16_t*>(stored.data_ptr()), stored.numel());
  else
    file_->write_row<float>("features", index, stored.data_ptr<float>(), stored.numel());
  const bool half = options_.dtype == TrunkCacheDtype::Fp16;
  const uint32_t crc = half ? crc32_of(reinterpret_cast<const uint16_t*>(stored.data_ptr()), stored.numel())
                            : crc32_of(stored.data_ptr<float>(), stored.numel());
  file_->write_row<uint32_t>("crc32", index, &crc, 1);
  crc32_[static_cast<size_t>(index)] = crc;
  file_->flush();
  const uint8_t one = 1;
  file_->write_row<uint8_t>("present", index, &one, 1);
  file_->flush();
  present_[static_cast<size_t>(index)] = 1;
  ++entries_;
}

// A disk cache only saves time, so a failing one (full or vanished disk, I/O error) must
// not end the run: the run goes on computing every trunk output.
void TrunkCache::disable(const std::string& what, const std::exception& error) {
  disabled_ = true;
  // Not closed: closing flushes, and after a failed flush HDF5 1.10 leaves the file half
  // closed and crashes in its exit handler. Left open, that handler's close fails quietly.
  (void)file_.release();
  if (log_)
    log_("trunk cache: " + path_ + ": " + what + " failed (" + error.what() +
         "); this run goes on without the cache, computing trunk features each time");
}

namespace {

using RegistryKey = std::tuple<std::string, int, int, std::string, int64_t, int64_t>;

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<RegistryKey, std::shared_ptr<TrunkCache>>& registry() {
  static std::map<RegistryKey, std::shared_ptr<TrunkCache>> r;
  return r;
}

}  // namespace

std::shared_ptr<TrunkCache> acquire_trunk_cache(const TrunkCacheKey& key, const TrunkCacheOptions& options,
                                                const TrunkCacheLog& log) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  const RegistryKey id{key.text, static_cast<int>(options.mode), static_cast<int>(options.dtype), options.dir,
                       options.rank, options.num_samples};
  auto& r = registry();
  if (const auto it = r.find(id); it != r.end()) {
    if (log)
      log("trunk cache: reusing this process's " + to_string(options.mode) + " cache " + key.hex() + " (" +
          std::to_string(it->second->entries()) + " of " + std::to_string(options.num_samples) + " samples present)");
    it->second->set_log(log);
    return it->second;
  }
  auto cache = std::make_shared<TrunkCache>(key, options, log);
  r.emplace(id, cache);
  return cache;
}

void retain_trunk_caches(const std::vector<std::shared_ptr<TrunkCache>>& keep) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& r = registry();
  for (auto it = r.begin(); it != r.end();) {
    if (std::find(keep.begin(), keep.end(), it->second) == keep.end())
      it = r.erase(it);
    else
      ++it;
  }
}

}  // namespace sparser::train
