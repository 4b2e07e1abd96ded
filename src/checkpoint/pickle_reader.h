#pragma once
// An unpickler for the object graphs torch.save writes into data.pkl: containers,
// scalars, strings, OrderedDicts and tensors. Tensors are descriptions of where their
// values lie; a TensorReader reads those a caller picks, so that a checkpoint's other
// entries (an optimizer's state beside the model) are never read. An object of any other class (e.g. the
// argparse.Namespace of a training script's "args" beside its "model") is read as an
// opaque PickleObject naming its class: never constructed, so no code of the file runs,
// and an error only where a tensor or dict is needed. An unsupported opcode or a
// malformed stream is a CheckpointError, never undefined behaviour.
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "checkpoint/zip_archive.h"

namespace sparser::checkpoint {

struct PickleNone {};
struct PickleBytes {
  std::string data;
};
struct PickleGlobal {
  std::string module, name;
};
// The result of calling (REDUCE, NEWOBJ) a global the reader does not know, and of BUILD on it.
struct PickleObject {
  std::string class_name;  // module.name
};
// A storage torch.save wrote as the archive record data/<key>.
struct PickleStorage {
  std::string key;
  torch::ScalarType dtype = torch::kFloat;
  int64_t numel = 0;
};
// A tensor of the pickle: a view of a storage (checked to lie within it), not yet read.
struct PickleTensor {
  PickleStorage storage;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};
struct PickleTuple;
struct PickleList;
struct PickleDict;

class PickleValue {
 public:
  // Lists and dicts are shared: the pickle's memo refers to the object that later
  // APPEND/SETITEM opcodes fill in.
  using Variant = std::variant<PickleNone, bool, int64_t, double, std::string, PickleBytes, PickleGlobal,
                               PickleObject, std::shared_ptr<PickleTuple>, std::shared_ptr<PickleList>,
                               std::shared_ptr<PickleDict>, PickleStorage, PickleTensor>;

  PickleValue() = default;
  template <typename T, typename = std::enable_if_t<!std::is_same_v<std::decay_t<T>, PickleValue>>>
  PickleValue(T&& value) : value_(std::forward<T>(value)) {}

  template <typename T>
  bool is() const {
    return std::holds_alternative<T>(value_);
  }
  template <typename T>
  const T& as() const {
    return std::get<T>(value_);
  }
  // For messages: "str", "dict", "tensor", "argparse.Namespace object", ...
  std::string type_name() const;

 private:
  Variant value_;
};

// The containers free what they hold one level at a time: a valid pickle may nest a
// million deep, which recursive destructors would overflow the stack with.
struct PickleTuple {
  std::vector<PickleValue> items;
  ~PickleTuple();
};
struct PickleList {
  std::vector<PickleValue> items;
  ~PickleList();
};
// A dict in insertion order (Python dicts keep it; state dicts depend on it).
struct PickleDict {
  ~PickleDict();
  std::vector<std::pair<PickleValue, PickleValue>> items;
  // Position of each string key in `items`, so that SETITEM replaces in O(1).
  std::unordered_map<std::string, size_t> string_key_index;

  void set(PickleValue key, PickleValue value);
  const PickleValue* find(const std::string& key) const;
};

// Unpickles `pickle`; `source` names the file in error messages.
PickleValue unpickle(std::string_view pickle, const std::string& source);

// Returns the raw bytes of storage `key` (data/<key> in the archive) as a 1-D uint8 tensor.
using StorageLoader = std::function<torch::Tensor(const std::string& key)>;

// Reads the values of the pickle's tensors, each storage at most once. A tensor that is
// exactly its storage keeps it; partial views and second users of a storage get their own
// copy, so no tensor pins or aliases another one's memory.
class TensorReader {
 public:
  // `source` names the file in error messages.
  TensorReader(StorageLoader load_storage, std::string source);
  torch::Tensor read(const PickleTensor& tensor);

 private:
  StorageLoader load_storage_;
  std::string source_;
  std::unordered_map<std::string, torch::Tensor> storages_;
  std::unordered_set<std::string> handed_out_;
};

// The classes torch.save names a storage of each dtype by (module torch), e.g. "FloatStorage";
// shared by the reader and the writer.
std::optional<torch::ScalarType> dtype_of_storage_class(const std::string& name);
std::optional<std::string> storage_class_of_dtype(torch::ScalarType dtype);

}  // namespace sparser::checkpoint
