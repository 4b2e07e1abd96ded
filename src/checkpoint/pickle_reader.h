#pragma once
// An unpickler for the object graphs torch.save writes into data.pkl: containers,
// scalars, strings, OrderedDicts and tensors. An object of any other class (e.g. the
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
struct PickleTuple;
struct PickleList;
struct PickleDict;

class PickleValue {
 public:
  // Lists and dicts are shared: the pickle's memo refers to the object that later
  // APPEND/SETITEM opcodes fill in.
  using Variant = std::variant<PickleNone, bool, int64_t, double, std::string, PickleBytes, PickleGlobal,
                               PickleObject, std::shared_ptr<PickleTuple>, std::shared_ptr<PickleList>,
                               std::shared_ptr<PickleDict>, torch::Tensor>;

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

// Returns the raw bytes of storage `key` (data/<key> in the archive) as a 1-D uint8 tensor.
using StorageLoader = std::function<torch::Tensor(const std::string& key)>;

// Unpickles `pickle`; `source` names the file in error messages.
PickleValue unpickle(std::string_view pickle, const StorageLoader& load_storage, const std::string& source);

// The classes torch.save names a storage of each dtype by (module torch), e.g. "FloatStorage";
// shared by the reader and the writer.
std::optional<torch::ScalarType> dtype_of_storage_class(const std::string& name);
std::optional<std::string> storage_class_of_dtype(torch::ScalarType dtype);

}  // namespace sparser::checkpoint
