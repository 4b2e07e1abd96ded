#pragma once
// A small RAII layer over the HDF5 C API: typed whole-dataset reads and writes,
// attributes and group listing. Every error names the file and the object.
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace sparser::io {

class Hdf5Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Held around HDF5 calls made from several threads at once. A thread-safe HDF5 build
// (H5_HAVE_THREADSAFE, as Debian's) serialises its API calls itself, so this is empty;
// any other build gets one process-wide lock instead of corrupting its global state.
#ifdef H5_HAVE_THREADSAFE
struct Hdf5ThreadGuard {
  Hdf5ThreadGuard() {}  // user-provided, so a guard variable is not "unused"
};
#else
class Hdf5ThreadGuard {
 public:
  Hdf5ThreadGuard() : lock_(mutex()) {}

 private:
  static std::recursive_mutex& mutex() {
    static std::recursive_mutex m;
    return m;
  }
  std::lock_guard<std::recursive_mutex> lock_;
};
#endif

// Owns one HDF5 identifier and closes it with the matching H5*close.
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  explicit Hdf5Handle(hid_t id) : id_(id) {}
  Hdf5Handle(Hdf5Handle&& other) noexcept : id_(other.id_) { other.id_ = H5I_INVALID_HID; }
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept;
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  ~Hdf5Handle() { reset(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

class Hdf5File {
 public:
  // ReadWrite opens an existing file for reading and writing.
  enum class Mode { Read, Truncate, ReadWrite };
  Hdf5File(const std::string& path, Mode mode);

  const std::string& path() const { return path_; }
  hid_t id() const { return file_.get(); }

  // True if `name` (a path like "cases/box/boxes") exists.
  bool exists(const std::string& name) const;
  // Names of the members of a group, sorted.
  std::vector<std::string> members(const std::string& group) const;
  std::vector<int64_t> shape(const std::string& dataset) const;

  // Reads a whole dataset converted to T (float, double, int64_t, int32_t, uint8_t).
  template <typename T>
  std::vector<T> read(const std::string& dataset, std::vector<int64_t>* shape = nullptr) const;
  // Reads elements [offset, offset + count) of a 1-D dataset (a hyperslab: only those
  // bytes are read from a contiguous dataset).
  template <typename T>
  std::vector<T> read_slice(const std::string& dataset, int64_t offset, int64_t count) const;
  // Writes (creates) a dataset of the given shape; chunk = {} means contiguous.
  // Parent groups are created as needed.
  template <typename T>
  void write(const std::string& dataset, const std::vector<T>& data, const std::vector<int64_t>& shape,
             const std::vector<int64_t>& chunk = {}, int deflate_level = 0);

  // Creates a dataset of the given shape without writing data (unwritten elements read
  // as 0; with chunk = {} nothing but the header is allocated until written).
  template <typename T>
  void create(const std::string& dataset, const std::vector<int64_t>& shape, const std::vector<int64_t>& chunk = {});
  // Reads / writes row `row` (index along the first dimension) of an N-d dataset: a
  // hyperslab, so only that row's chunks are touched. `data` holds the row's elements.
  template <typename T>
  std::vector<T> read_row(const std::string& dataset, int64_t row) const;
  template <typename T>
  void write_row(const std::string& dataset, int64_t row, const T* data, int64_t count);
  // Pushes buffered writes of the whole file to the operating system (H5Fflush).
  void flush();

  bool has_attribute(const std::string& object, const std::string& name) const;
  int64_t read_int_attribute(const std::string& object, const std::string& name) const;
  std::string read_string_attribute(const std::string& object, const std::string& name) const;
  void write_int_attribute(const std::string& object, const std::string& name, int64_t value);
  void write_string_attribute(const std::string& object, const std::string& name, const std::string& value);

  // "<file>: <object>: <what>"
  [[noreturn]] void fail(const std::string& object, const std::string& what) const;

 private:
  Hdf5Handle create_dataset(const std::string& dataset, hid_t type, const std::vector<int64_t>& shape,
                            const std::vector<int64_t>& chunk, int deflate_level);

  std::string path_;
  Hdf5Handle file_;
};

}  // namespace sparser::io
