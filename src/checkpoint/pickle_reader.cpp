#include "checkpoint/pickle_reader.h"

#include <cstring>
#include <iterator>
#include <utility>

namespace sparser::checkpoint {

namespace {

struct StorageClass {
  const char* name;
  torch::ScalarType dtype;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", torch::kFloat},
    {"DoubleStorage", torch::kDouble},
    {"HalfStorage", torch::kHalf},
    {"BFloat16Storage", torch::kBFloat16},
    {"LongStorage", torch::kLong},
    {"IntStorage", torch::kInt},
    {"ShortStorage", torch::kShort},
    {"CharStorage", torch::kChar},
    {"ByteStorage", torch::kByte},
    {"BoolStorage", torch::kBool},
    {"ComplexFloatStorage", torch::kComplexFloat},
    {"ComplexDoubleStorage", torch::kComplexDouble},
};

// torch.save names typed storages torch.<Type>Storage (torch.cuda.<Type>Storage in old
// GPU files; the device is irrelevant here, everything loads to the CPU).
std::optional<torch::ScalarType> storage_dtype(const PickleGlobal& global) {
  if (global.name == "UntypedStorage" && (global.module == "torch" || global.module == "torch.storage"))
    return torch::kByte;
  if (global.module != "torch" && global.module != "torch.cuda") return std::nullopt;
  return dtype_of_storage_class(global.name);
}

// Opcodes of pickle protocols 2-5 that torch.save output can contain.
enum Opcode : uint8_t {
  kMark = '(',
  kStop = '.',
  kPop = '0',
  kPopMark = '1',
  kDup = '2',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinString = 'T',
  kShortBinString = 'U',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kSetItems = 'u',
  kEmptyDict = '}',
  kEmptyTuple = ')',
  kBinBytes = 'B',
  kShortBinBytes = 'C',
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kLong4 = 0x8b,
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kBinBytes8 = 0x8e,
  kStackGlobal = 0x93,
  kMemoize = 0x94,
  kFrame = 0x95,
};

struct ViewExtent {
  int64_t numel;       // elements of the view
  int64_t last_index;  // of the storage element it reaches last
};

// Of a view with non-negative sizes and strides; nothing when a count overflows.
std::optional<ViewExtent> view_extent(const PickleTensor& tensor) {
  ViewExtent extent{1, tensor.offset};
  bool overflow = false;
  for (size_t d = 0; d < tensor.sizes.size(); ++d) {
    overflow |= __builtin_mul_overflow(extent.numel, tensor.sizes[d], &extent.numel);
    if (tensor.sizes[d] > 0) {
      int64_t reach = 0;
      overflow |= __builtin_mul_overflow(tensor.sizes[d] - 1, tensor.strides[d], &reach);
      overflow |= __builtin_add_overflow(extent.last_index, reach, &extent.last_index);
    }
  }
  return overflow ? std::nullopt : std::optional<ViewExtent>(extent);
}

class Unpickler {
 public:
  Unpickler(std::string_view data, const std::string& source) : data_(data), source_(source) {}

  PickleValue run() {
    while (pos_ < data_.size()) {
      opcode_pos_ = pos_;
      const uint8_t opcode = read_u8();
      if (opcode == kStop) {
        auto result = pop();
        if (!stack_.empty() || !marks_.empty()) fail("values left on the stack at STOP");
        return result;
      }
      execute(opcode);
    }
    opcode_pos_ = pos_;
    fail("pickle ends without a STOP opcode; truncated?");
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw CheckpointError(source_ + ": malformed pickle at byte " + std::to_string(opcode_pos_) + ": " + problem);
  }

  // --- Reading the byte stream, every read bounds-checked.
  std::string_view read_bytes(uint64_t size) {
    if (size > data_.size() - pos_)
      fail("needs " + std::to_string(size) + " more bytes, " + std::to_string(data_.size() - pos_) + " left");
    const auto bytes = data_.substr(pos_, size);
    pos_ += size;
    return bytes;
  }
  uint64_t read_le(int size) {
    const auto bytes = read_bytes(uint64_t(size));
    uint64_t value = 0;
    for (int i = size - 1; i >= 0; --i) value = (value << 8) | uint8_t(bytes[i]);
    return value;
  }
  uint8_t read_u8() { return uint8_t(read_le(1)); }
  std::string read_line() {
    const auto end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail("unterminated GLOBAL name");
    std::string line(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return line;
  }
  // LONG1/LONG4: little-endian two's complement of any length; int64 is as far as we go.
  int64_t read_long(uint64_t size) {
    if (size > 8) fail("integer of " + std::to_string(size) + " bytes does not fit 64 bits");
    if (size == 0) return 0;
    const auto bytes = read_bytes(size);
    uint64_t value = 0;
    for (int i = int(size) - 1; i >= 0; --i) value = (value << 8) | uint8_t(bytes[i]);
    if (size < 8 && (uint8_t(bytes[size - 1]) & 0x80)) value |= ~uint64_t(0) << (8 * size);
    return int64_t(value);
  }

  // --- The stack. MARK hides what lies below it, as in Python's unpickler.
  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  PickleValue pop() {
    if (stack_.size() <= stack_floor()) fail("stack underflow");
    auto value = std::move(stack_.back());
    stack_.pop_back();
    return value;
  }
  PickleValue& top() {
    if (stack_.size() <= stack_floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<PickleValue> pop_to_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue> items(std::make_move_iterator(stack_.begin() + mark),
                                   std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  void push_tuple(std::vector<PickleValue> items) {
    auto tuple = std::make_shared<PickleTuple>();
    tuple->items = std::move(items);
    stack_.emplace_back(std::move(tuple));
  }
  void push_tuple_of_top(size_t count) {
    if (stack_.size() < stack_floor() + count) fail("stack underflow");
    std::vector<PickleValue> items(std::make_move_iterator(stack_.end() - count),
                                   std::make_move_iterator(stack_.end()));
    stack_.resize(stack_.size() - count);
    push_tuple(std::move(items));
  }
  std::shared_ptr<PickleDict> dict_below(size_t depth) {
    if (stack_.size() < stack_floor() + depth + 1) fail("stack underflow");
    const auto& target = stack_[stack_.size() - depth - 1];
    if (!target.is<std::shared_ptr<PickleDict>>()) fail("SETITEM on a " + target.type_name() + ", not a dict");
    return target.as<std::shared_ptr<PickleDict>>();
  }
  std::shared_ptr<PickleList> list_below(size_t depth) {
    if (stack_.size() < stack_floor() + depth + 1) fail("stack underflow");
    const auto& target = stack_[stack_.size() - depth - 1];
    if (!target.is<std::shared_ptr<PickleList>>()) fail("APPEND on a " + target.type_name() + ", not a list");
    return target.as<std::shared_ptr<PickleList>>();
  }

  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    const auto found = memo_.find(index);
    if (found == memo_.end()) fail("memo entry " + std::to_string(index) + " is not defined");
    stack_.push_back(found->second);
  }

  void push_global(PickleGlobal global) { stack_.emplace_back(std::move(global)); }

  void execute(uint8_t opcode) {
    switch (opcode) {
      case kProto: {
        const auto version = read_u8();
        if (version > 5) fail("pickle protocol " + std::to_string(version) + " is not supported");
        break;
      }
      case kFrame:
        read_le(8);
        break;  // frames only help buffering readers
      case kMark:
        marks_.push_back(stack_.size());
        break;
      case kPop:
        pop();
        break;
      case kPopMark:
        pop_to_mark();
        break;
      case kDup:
        stack_.push_back(top());
        break;
      case kNone:
        stack_.emplace_back(PickleNone{});
        break;
      case kNewTrue:
        stack_.emplace_back(true);
        break;
      case kNewFalse:
        stack_.emplace_back(false);
        break;
      case kBinInt:
        stack_.emplace_back(int64_t(int32_t(uint32_t(read_le(4)))));
        break;
      case kBinInt1:
        stack_.emplace_back(int64_t(read_le(1)));
        break;
      case kBinInt2:
        stack_.emplace_back(int64_t(read_le(2)));
        break;
      case kLong1:
        stack_.emplace_back(read_long(read_le(1)));
        break;
      case kLong4:
        stack_.emplace_back(read_long(read_le(4)));
        break;
      case kBinFloat: {
        const uint64_t bits = __builtin_bswap64(read_le(8));  // big-endian on the wire
        double value;
        std::memcpy(&value, &bits, sizeof(value));
        stack_.emplace_back(value);
        break;
      }
      case kBinUnicode:
        stack_.emplace_back(std::string(read_bytes(read_le(4))));
        break;
      case kShortBinUnicode:
        stack_.emplace_back(std::string(read_bytes(read_le(1))));
        break;
      case kBinUnicode8:
        stack_.emplace_back(std::string(read_bytes(read_le(8))));
        break;
      case kBinString: {
        const auto size = int32_t(uint32_t(read_le(4)));
        if (size < 0) fail("negative BINSTRING length");
        stack_.emplace_back(std::string(read_bytes(uint64_t(size))));
        break;
      }
      case kShortBinString:
        stack_.emplace_back(std::string(read_bytes(read_le(1))));
        break;
      case kBinBytes:
        stack_.emplace_back(PickleBytes{std::string(read_bytes(read_le(4)))});
        break;
      case kShortBinBytes:
        stack_.emplace_back(PickleBytes{std::string(read_bytes(read_le(1)))});
        break;
      case kBinBytes8:
        stack_.emplace_back(PickleBytes{std::string(read_bytes(read_le(8)))});
        break;
      case kEmptyTuple:
        push_tuple({});
        break;
      case kTuple1:
        push_tuple_of_top(1);
        break;
      case kTuple2:
        push_tuple_of_top(2);
        break;
      case kTuple3:
        push_tuple_of_top(3);
        break;
      case kTuple:
        push_tuple(pop_to_mark());
        break;
      case kEmptyList:
        stack_.emplace_back(std::make_shared<PickleList>());
        break;
      case kEmptyDict:
        stack_.emplace_back(std::make_shared<PickleDict>());
        break;
      case kAppend: {
        auto value = pop();
        list_below(0)->items.push_back(std::move(value));
        break;
      }
      case kAppends: {
        auto values = pop_to_mark();
        auto& items = list_below(0)->items;
        items.insert(items.end(), std::make_move_iterator(values.begin()), std::make_move_iterator(values.end()));
        break;
      }
      case kSetItem: {
        auto value = pop();
        auto key = pop();
        dict_below(0)->set(std::move(key), std::move(value));
        break;
      }
      case kSetItems: {
        auto values = pop_to_mark();
        if (values.size() % 2) fail("SETITEMS with an odd number of values");
        const auto dict = dict_below(0);
        for (size_t i = 0; i < values.size(); i += 2) dict->set(std::move(values[i]), std::move(values[i + 1]));
        break;
      }
      case kBinPut:
        memo_put(read_le(1));
        break;
      case kLongBinPut:
        memo_put(read_le(4));
        break;
      case kMemoize:
        memo_put(memo_.size());
        break;
      case kBinGet:
        memo_get(read_le(1));
        break;
      case kLongBinGet:
        memo_get(read_le(4));
        break;
      case kGlobal: {
        auto module = read_line();
        push_global({std::move(module), read_line()});
        break;
      }
      case kStackGlobal: {
        auto name = pop();
        auto module = pop();
        if (!module.is<std::string>() || !name.is<std::string>()) fail("STACK_GLOBAL needs two strings");
        push_global({module.as<std::string>(), name.as<std::string>()});
        break;
      }
      case kReduce:
      case kNewObj: {
        auto args = pop();
        auto callable = pop();
        if (!args.is<std::shared_ptr<PickleTuple>>())
          fail("call arguments are a " + args.type_name() + ", not a tuple");
        stack_.push_back(call(callable, *args.as<std::shared_ptr<PickleTuple>>()));
        break;
      }
      case kBuild: {
        // The objects torch.save builds: an OrderedDict receiving its _metadata attribute,
        // which says nothing needed here, and opaque objects of other classes.
        pop();
        if (!top().is<std::shared_ptr<PickleDict>>() && !top().is<PickleObject>())
          fail("BUILD on a " + top().type_name() + " is not supported");
        break;
      }
      case kBinPersId:
        stack_.emplace_back(persistent_load(pop()));
        break;
      default: {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", opcode);
        fail(std::string("unsupported opcode ") + hex);
      }
    }
  }

  PickleValue call(const PickleValue& callable, const PickleTuple& args) {
    if (!callable.is<PickleGlobal>()) fail("calling a " + callable.type_name() + ", not a global");
    const auto& global = callable.as<PickleGlobal>();
    const auto qualified = global.module + "." + global.name;
    if (qualified == "collections.OrderedDict") {
      if (!args.items.empty()) fail("OrderedDict called with arguments");
      return std::make_shared<PickleDict>();
    }
    if (qualified == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    if (qualified == "torch._utils._rebuild_parameter" || qualified == "torch._utils._rebuild_parameter_with_state") {
      if (args.items.empty() || !args.items[0].is<PickleTensor>()) fail(qualified + " needs a tensor argument");
      return args.items[0];
    }
    if (global.module == "torch._utils" || storage_dtype(global)) fail("cannot call " + qualified);
    return PickleObject{qualified};
  }

  int64_t int_argument(const PickleValue& value, const char* what) {
    if (!value.is<int64_t>()) fail(std::string(what) + " is a " + value.type_name() + ", not an int");
    return value.as<int64_t>();
  }
  std::vector<int64_t> int_tuple_argument(const PickleValue& value, const char* what) {
    if (!value.is<std::shared_ptr<PickleTuple>>())
      fail(std::string(what) + " is a " + value.type_name() + ", not a tuple");
    std::vector<int64_t> ints;
    for (const auto& item : value.as<std::shared_ptr<PickleTuple>>()->items) ints.push_back(int_argument(item, what));
    return ints;
  }

  // ('storage', <storage class>, key, location, numel) → where the storage's elements lie.
  PickleValue persistent_load(const PickleValue& id) {
    if (!id.is<std::shared_ptr<PickleTuple>>()) fail("persistent id is a " + id.type_name() + ", not a tuple");
    const auto& items = id.as<std::shared_ptr<PickleTuple>>()->items;
    if (items.size() != 5 || !items[0].is<std::string>() || items[0].as<std::string>() != "storage" ||
        !items[1].is<PickleGlobal>() || !items[2].is<std::string>())
      fail("persistent id is not ('storage', class, key, location, numel)");
    const auto dtype = storage_dtype(items[1].as<PickleGlobal>());
    if (!dtype) fail("persistent id names " + items[1].as<PickleGlobal>().name + ", not a storage class");
    const PickleStorage storage{items[2].as<std::string>(), *dtype, int_argument(items[4], "storage size")};
    if (storage.numel < 0) fail("storage " + storage.key + " has a negative size");
    const auto [known, first] = storages_.emplace(storage.key, storage);
    if (!first && (known->second.dtype != storage.dtype || known->second.numel != storage.numel))
      fail("storage " + storage.key + " is referenced with different types or sizes");
    return storage;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).
  PickleValue rebuild_tensor(const PickleTuple& args) {
    if (args.items.size() < 6 || args.items.size() > 7)
      fail("_rebuild_tensor_v2 takes 6 or 7 arguments, got " + std::to_string(args.items.size()));
    if (!args.items[0].is<PickleStorage>())
      fail("_rebuild_tensor_v2 needs a storage, got a " + args.items[0].type_name());
    PickleTensor tensor{args.items[0].as<PickleStorage>(), int_argument(args.items[1], "tensor offset"),
                        int_tuple_argument(args.items[2], "tensor size"),
                        int_tuple_argument(args.items[3], "tensor stride")};
    if (tensor.sizes.size() != tensor.strides.size()) fail("tensor size and stride differ in length");

    // The view must stay within the storage: as_strided itself does not check.
    for (size_t d = 0; d < tensor.sizes.size(); ++d)
      if (tensor.sizes[d] < 0 || tensor.strides[d] < 0) fail("negative tensor size or stride");
    const auto extent = view_extent(tensor);
    const int64_t storage_numel = tensor.storage.numel;
    if (tensor.offset < 0 || !extent || (extent->numel > 0 && extent->last_index >= storage_numel) ||
        tensor.offset > storage_numel)
      fail("tensor of size " + c10::str(c10::IntArrayRef(tensor.sizes)) + " at offset " +
           std::to_string(tensor.offset) + " reaches past its storage of " + std::to_string(storage_numel) +
           " elements");
    return tensor;
  }

  std::string_view data_;
  const std::string& source_;
  size_t pos_ = 0;
  size_t opcode_pos_ = 0;
  std::vector<PickleValue> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue> memo_;
  std::unordered_map<std::string, PickleStorage> storages_;
};

}  // namespace

namespace {

// Takes the contents of every container in `pending` that nothing else holds, before it
// is destroyed, so that no destructor recurses.
void release_iteratively(std::vector<PickleValue> pending) {
  while (!pending.empty()) {
    const PickleValue value = std::move(pending.back());
    pending.pop_back();
    const auto take = [&](auto& items) { std::move(items.begin(), items.end(), std::back_inserter(pending)); };
    if (value.is<std::shared_ptr<PickleList>>() && value.as<std::shared_ptr<PickleList>>().use_count() == 1)
      take(value.as<std::shared_ptr<PickleList>>()->items);
    else if (value.is<std::shared_ptr<PickleTuple>>() && value.as<std::shared_ptr<PickleTuple>>().use_count() == 1)
      take(value.as<std::shared_ptr<PickleTuple>>()->items);
    else if (value.is<std::shared_ptr<PickleDict>>() && value.as<std::shared_ptr<PickleDict>>().use_count() == 1)
      for (auto& [key, item] : value.as<std::shared_ptr<PickleDict>>()->items) {
        pending.push_back(std::move(key));
        pending.push_back(std::move(item));
      }
  }
}

}  // namespace

PickleTuple::~PickleTuple() { release_iteratively(std::move(items)); }
PickleList::~PickleList() { release_iteratively(std::move(items)); }
PickleDict::~PickleDict() {
  std::vector<PickleValue> contents;
  for (auto& [key, item] : items) {
    contents.push_back(std::move(key));
    contents.push_back(std::move(item));
  }
  release_iteratively(std::move(contents));
}

void PickleDict::set(PickleValue key, PickleValue value) {
  if (key.is<std::string>()) {
    const auto [found, inserted] = string_key_index.emplace(key.as<std::string>(), items.size());
    if (!inserted) {
      items[found->second].second = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

const PickleValue* PickleDict::find(const std::string& key) const {
  const auto found = string_key_index.find(key);
  return found == string_key_index.end() ? nullptr : &items[found->second].second;
}

std::string PickleValue::type_name() const {
  static const char* const kNames[] = {"None",   "bool",   "int",  "float", "str",  "bytes",   "global",
                                       "object", "tuple", "list", "dict",  "storage", "tensor"};
  static_assert(std::size(kNames) == std::variant_size_v<Variant>);
  if (is<PickleGlobal>()) return "global " + as<PickleGlobal>().module + "." + as<PickleGlobal>().name;
  if (is<PickleObject>()) return as<PickleObject>().class_name + " object";
  return kNames[value_.index()];
}

PickleValue unpickle(std::string_view pickle, const std::string& source) { return Unpickler(pickle, source).run(); }

TensorReader::TensorReader(StorageLoader load_storage, std::string source)
    : load_storage_(std::move(load_storage)), source_(std::move(source)) {}

torch::Tensor TensorReader::read(const PickleTensor& tensor) {
  const auto& [key, dtype, storage_numel] = tensor.storage;
  auto& storage = storages_[key];
  if (!storage.defined()) {
    const auto bytes = load_storage_(key);
    const auto element_size = int64_t(c10::elementSize(dtype));
    // Divided, not multiplied: a size near 2^63 elements would wrap around to the bytes there are.
    if (bytes.numel() % element_size != 0 || bytes.numel() / element_size != storage_numel)
      throw CheckpointError(source_ + ": storage " + key + " holds " + std::to_string(bytes.numel()) +
                            " bytes, expected " + std::to_string(storage_numel) + " elements of " +
                            std::to_string(element_size) + " bytes");
    storage = bytes.view(dtype);
  }
  const auto view = storage.as_strided(tensor.sizes, tensor.strides, tensor.offset);
  const auto [numel, last_index] = *view_extent(tensor);  // checked when the pickle was read
  if (numel > 0 && tensor.offset == 0 && numel == storage_numel && view.is_contiguous() &&
      handed_out_.insert(key).second)
    return view;
  // A view covering fewer elements than it has (an expanded tensor, stride 0) keeps its
  // strides over a copy of what it covers, as torch.load returns it: made contiguous, a
  // 65536² expansion of one value would take 16 GiB.
  const int64_t covered = last_index - tensor.offset + 1;
  if (numel > 0 && covered < numel)
    return storage.narrow(0, tensor.offset, covered).clone().as_strided(tensor.sizes, tensor.strides, 0);
  return view.clone(at::MemoryFormat::Contiguous);
}

std::optional<torch::ScalarType> dtype_of_storage_class(const std::string& name) {
  for (const auto& storage_class : kStorageClasses)
    if (name == storage_class.name) return storage_class.dtype;
  return std::nullopt;
}

std::optional<std::string> storage_class_of_dtype(torch::ScalarType dtype) {
  for (const auto& storage_class : kStorageClasses)
    if (dtype == storage_class.dtype) return std::string(storage_class.name);
  return std::nullopt;
}

}  // namespace sparser::checkpoint
