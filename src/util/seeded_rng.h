#pragma once
// A small deterministic RNG (SplitMix64) with portable bounded draws: std::shuffle and
// std::uniform_*_distribution differ between standard libraries, and permutations,
// splits and jitter must be reproducible everywhere.
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace sparser::util {

class SeededRng {
 public:
  explicit SeededRng(uint64_t seed) : state_(seed) {}
  // Seeds from several values (e.g. seed, epoch, rank, sample index) so that each
  // combination gets an independent stream.
  SeededRng(std::initializer_list<uint64_t> parts) {
    for (uint64_t p : parts) {
      state_ ^= p + 0x9e3779b97f4a7c15ULL + (state_ << 6) + (state_ >> 2);
      next();
    }
  }

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), unbiased (rejection of the short last range); n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = next(); while (x >= limit);
    return x % n;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[below(i)]);
  }

 private:
  uint64_t state_ = 0;
};

}  // namespace sparser::util
