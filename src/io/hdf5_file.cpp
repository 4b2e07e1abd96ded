#include "io/hdf5_file.h"

#include <algorithm>
#include <mutex>

namespace sparser::io {

namespace {

// HDF5 prints its own error stack to stderr by default; we report errors ourselves.
void silence_hdf5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

template <typename T>
hid_t native_type();
template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native_type<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t native_type<uint16_t>() { return H5T_NATIVE_UINT16; }
template <> hid_t native_type<uint32_t>() { return H5T_NATIVE_UINT32; }

// The link-iteration API changed in HDF5 1.12 (Debian bookworm ships 1.10).
#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#define SPARSER_H5LITERATE H5Literate2
#else
using LinkInfo = H5L_info_t;
#define SPARSER_H5LITERATE H5Literate
#endif

herr_t collect_member(hid_t, const char* name, const LinkInfo*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

}  // namespace

Hdf5Handle& Hdf5Handle::operator=(Hdf5Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    other.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Hdf5Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

Hdf5File::Hdf5File(const std::string& path, Mode mode) : path_(path) {
  silence_hdf5_errors();
  hid_t id = mode == Mode::Read        ? H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)
             : mode == Mode::ReadWrite ? H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)
                                       : H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0)
    throw Hdf5Error(path + ": cannot " + (mode == Mode::Truncate ? "create" : "open") +
                    " HDF5 file (missing, unreadable or not HDF5)");
  file_ = Hdf5Handle(id);
}

void Hdf5File::fail(const std::string& object, const std::string& what) const {
  throw Hdf5Error(path_ + ": " + object + ": " + what);
}

bool Hdf5File::exists(const std::string& name) const {
  // Check each prefix: H5Lexists fails if an intermediate group is missing.
  std::string prefix;
  size_t start = 0;
  while (start <= name.size()) {
    const auto slash = name.find('/', start);
    prefix = name.substr(0, slash);
    if (!prefix.empty() && H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::vector<std::string> Hdf5File::members(const std::string& group) const {
  Hdf5Handle g(H5Gopen2(file_.get(), group.c_str(), H5P_DEFAULT));
  if (!g.valid()) fail(group, "no such group");
  std::vector<std::string> names;
  SPARSER_H5LITERATE(g.get(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_member, &names);
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<int64_t> Hdf5File::shape(const std::string& dataset) const {
  Hdf5Handle d(H5Dopen2(file_.get(), dataset.c_str(), H5P_DEFAULT));
  if (!d.valid()) fail(dataset, "no such dataset");
  Hdf5Handle space(H5Dget_space(d.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

template <typename T>
std::vector<T> Hdf5File::read(const std::string& dataset, std::vector<int64_t>* shape_out) const {
  const auto dims = shape(dataset);
  int64_t count = 1;
  for (auto d : dims) count *= d;
  std::vector<T> data(static_cast<size_t>(count));
  Hdf5Handle d(H5Dopen2(file_.get(), dataset.c_str(), H5P_DEFAULT));
  if (count > 0 && H5Dread(d.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) < 0)
    fail(dataset, "read failed (type not convertible or file damaged)");
  if (shape_out) *shape_out = dims;
  return data;
}

template <typename T>
std::vector<T> Hdf5File::read_slice(const std::string& dataset, int64_t offset, int64_t count) const {
  const auto dims = shape(dataset);
  if (dims.size() != 1) fail(dataset, "read_slice: expected a 1-D dataset");
  if (offset < 0 || count < 0 || offset + count > dims[0])
    fail(dataset, "read_slice: elements [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                      ") out of range (size " + std::to_string(dims[0]) + ")");
  std::vector<T> data(static_cast<size_t>(count));
  if (count == 0) return data;
  Hdf5Handle d(H5Dopen2(file_.get(), dataset.c_str(), H5P_DEFAULT));
  Hdf5Handle file_space(H5Dget_space(d.get()));
  const hsize_t start = static_cast<hsize_t>(offset), n = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &n, nullptr);
  Hdf5Handle memory_space(H5Screate_simple(1, &n, nullptr));
  if (H5Dread(d.get(), native_type<T>(), memory_space.get(), file_space.get(), H5P_DEFAULT, data.data()) < 0)
    fail(dataset, "read failed (type not convertible or file damaged)");
  return data;
}

Hdf5Handle Hdf5File::create_dataset(const std::string& dataset, hid_t type, const std::vector<int64_t>& shape,
                                     const std::vector<int64_t>& chunk, int deflate_level) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Hdf5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Hdf5Handle link_props(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(link_props.get(), 1);
  Hdf5Handle create_props(H5Pcreate(H5P_DATASET_CREATE));
  // No modification times in object headers: the same data gives the same file bytes
  // (shard checksums in manifests are then reproducible).
  H5Pset_obj_track_times(create_props.get(), false);
  if (!chunk.empty()) {
    std::vector<hsize_t> c(chunk.begin(), chunk.end());
    H5Pset_chunk(create_props.get(), static_cast<int>(c.size()), c.data());
    if (deflate_level > 0) H5Pset_deflate(create_props.get(), static_cast<unsigned>(deflate_level));
  }
  Hdf5Handle d(H5Dcreate2(file_.get(), dataset.c_str(), type, space.get(), link_props.get(), create_props.get(),
                          H5P_DEFAULT));
  if (!d.valid()) fail(dataset, "cannot create dataset");
  return d;
}

template <typename T>
void Hdf5File::write(const std::string& dataset, const std::vector<T>& data, const std::vector<int64_t>& shape,
                     const std::vector<int64_t>& chunk, int deflate_level) {
  int64_t count = 1;
  for (auto d : shape) count *= d;
  if (count != static_cast<int64_t>(data.size()))
    fail(dataset, "write: " + std::to_string(data.size()) + " values for a shape of " + std::to_string(count));
  const auto d = create_dataset(dataset, native_type<T>(), shape, chunk, deflate_level);
  if (count > 0 && H5Dwrite(d.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) < 0)
    fail(dataset, "write failed");
}

template <typename T>
void Hdf5File::create(const std::string& dataset, const std::vector<int64_t>& shape, const std::vector<int64_t>& chunk) {
  create_dataset(dataset, native_type<T>(), shape, chunk, 0);
}

namespace {

// The file and memory dataspaces of row `row` of a dataset of shape `dims`.
std::pair<Hdf5Handle, Hdf5Handle> row_spaces(hid_t dataset, const std::vector<int64_t>& dims, int64_t row) {
  Hdf5Handle file_space(H5Dget_space(dataset));
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  start[0] = static_cast<hsize_t>(row), count[0] = 1;
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Hdf5Handle memory_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
  return {std::move(file_space), std::move(memory_space)};
}

int64_t row_elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

}  // namespace

template <typename T>
std::vector<T> Hdf5File::read_row(const std::string& dataset, int64_t row) const {
  const auto dims = shape(dataset);
  if (dims.empty() || row < 0 || row >= dims[0])
    fail(dataset, "read_row: row " + std::to_string(row) + " out of range");
  std::vector<T> data(static_cast<size_t>(row_elements(dims)));
  Hdf5Handle d(H5Dopen2(file_.get(), dataset.c_str(), H5P_DEFAULT));
  auto [file_space, memory_space] = row_spaces(d.get(), dims, row);
  if (!data.empty() &&
      H5Dread(d.get(), native_type<T>(), memory_space.get(), file_space.get(), H5P_DEFAULT, data.data()) < 0)
    fail(dataset, "read failed (type not convertible or file damaged)");
  return data;
}

template <typename T>
void Hdf5File::write_row(const std::string& dataset, int64_t row, const T* data, int64_t count) {
  const auto dims = shape(dataset);
  if (dims.empty() || row < 0 || row >= dims[0])
    fail(dataset, "write_row: row " + std::to_string(row) + " out of range");
  if (count != row_elements(dims))
    fail(dataset, "write_row: " + std::to_string(count) + " values for a row of " + std::to_string(row_elements(dims)));
  Hdf5Handle d(H5Dopen2(file_.get(), dataset.c_str(), H5P_DEFAULT));
  auto [file_space, memory_space] = row_spaces(d.get(), dims, row);
  if (count > 0 && H5Dwrite(d.get(), native_type<T>(), memory_space.get(), file_space.get(), H5P_DEFAULT, data) < 0)
    fail(dataset, "write failed");
}

void Hdf5File::flush() {
  if (H5Fflush(file_.get(), H5F_SCOPE_GLOBAL) < 0) fail("/", "flush failed");
}

bool Hdf5File::has_attribute(const std::string& object, const std::string& name) const {
  return exists(object) && H5Aexists_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

int64_t Hdf5File::read_int_attribute(const std::string& object, const std::string& name) const {
  Hdf5Handle a(H5Aopen_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail(object, "missing attribute '" + name + "'");
  int64_t value = 0;
  if (H5Aread(a.get(), H5T_NATIVE_INT64, &value) < 0) fail(object, "attribute '" + name + "' is not an integer");
  return value;
}

std::string Hdf5File::read_string_attribute(const std::string& object, const std::string& name) const {
  Hdf5Handle a(H5Aopen_by_name(file_.get(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail(object, "missing attribute '" + name + "'");
  Hdf5Handle type(H5Aget_type(a.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) fail(object, "attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    char* raw = nullptr;
    Hdf5Handle mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    if (H5Aread(a.get(), mem.get(), &raw) < 0 || raw == nullptr) fail(object, "cannot read attribute '" + name + "'");
    std::string value(raw);
    H5free_memory(raw);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  std::string value(size, '\0');
  if (H5Aread(a.get(), type.get(), value.data()) < 0) fail(object, "cannot read attribute '" + name + "'");
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

void Hdf5File::write_int_attribute(const std::string& object, const std::string& name, int64_t value) {
  Hdf5Handle space(H5Screate(H5S_SCALAR));
  Hdf5Handle a(H5Acreate_by_name(file_.get(), object.c_str(), name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid() || H5Awrite(a.get(), H5T_NATIVE_INT64, &value) < 0) fail(object, "cannot write attribute " + name);
}

void Hdf5File::write_string_attribute(const std::string& object, const std::string& name, const std::string& value) {
  Hdf5Handle space(H5Screate(H5S_SCALAR));
  Hdf5Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), std::max<size_t>(value.size(), 1));
  Hdf5Handle a(H5Acreate_by_name(file_.get(), object.c_str(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT));
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (!a.valid() || H5Awrite(a.get(), type.get(), padded.data()) < 0) fail(object, "cannot write attribute " + name);
}

#define SPARSER_HDF5_INSTANTIATE(T)                                                                   \
  template std::vector<T> Hdf5File::read<T>(const std::string&, std::vector<int64_t>*) const;       \
  template std::vector<T> Hdf5File::read_slice<T>(const std::string&, int64_t, int64_t) const;      \
  template void Hdf5File::write<T>(const std::string&, const std::vector<T>&, const std::vector<int64_t>&, \
                                   const std::vector<int64_t>&, int);                              \
  template void Hdf5File::create<T>(const std::string&, const std::vector<int64_t>&, const std::vector<int64_t>&); \
  template std::vector<T> Hdf5File::read_row<T>(const std::string&, int64_t) const;                \
  template void Hdf5File::write_row<T>(const std::string&, int64_t, const T*, int64_t);
SPARSER_HDF5_INSTANTIATE(float)
SPARSER_HDF5_INSTANTIATE(double)
SPARSER_HDF5_INSTANTIATE(int64_t)
SPARSER_HDF5_INSTANTIATE(int32_t)
SPARSER_HDF5_INSTANTIATE(uint8_t)
SPARSER_HDF5_INSTANTIATE(uint16_t)
SPARSER_HDF5_INSTANTIATE(uint32_t)
#undef SPARSER_HDF5_INSTANTIATE

}  // namespace sparser::io
