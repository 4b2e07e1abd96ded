#include "checkpoint/pickle_writer.h"

#include "checkpoint/pickle_reader.h"

namespace sparser::checkpoint {

namespace {

class PickleBuilder {
 public:
  std::string take() { return std::move(out_); }

  void opcode(char op) { out_.push_back(op); }
  void global(const std::string& module, const std::string& name) {
    opcode('c');
    out_ += module + "\n" + name + "\n";
  }
  void string(const std::string& value) {
    opcode('X');  // BINUNICODE
    little_endian(value.size(), 4);
    out_ += value;
  }
  // The shortest encoding Python's pickler would use.
  void integer(int64_t value) {
    if (value >= 0 && value < 0x100) {
      opcode('K');
      little_endian(uint64_t(value), 1);
    } else if (value >= 0 && value < 0x10000) {
      opcode('M');
      little_endian(uint64_t(value), 2);
    } else if (value >= INT32_MIN && value <= INT32_MAX) {
      opcode('J');
      little_endian(uint64_t(value), 4);
    } else {
      opcode('\x8a');  // LONG1: 8 bytes of two's complement always suffice
      little_endian(8, 1);
      little_endian(uint64_t(value), 8);
    }
  }
  void int_tuple(c10::IntArrayRef values) {
    static const char kTupleOfSize[] = {')', '\x85', '\x86', '\x87'};
    if (values.size() > 3) opcode('(');
    for (const auto value : values) integer(value);
    opcode(values.size() > 3 ? 't' : kTupleOfSize[values.size()]);
  }

 private:
  void little_endian(uint64_t value, int size) {
    for (int i = 0; i < size; ++i) out_.push_back(char((value >> (8 * i)) & 0xff));
  }

  std::string out_;
};

}  // namespace

std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::string& source) {
  PickleBuilder pickle;
  pickle.opcode('\x80');  // PROTO 2
  pickle.opcode('\x02');
  pickle.global("collections", "OrderedDict");
  pickle.opcode(')');
  pickle.opcode('R');
  if (!tensors.empty()) pickle.opcode('(');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [key, tensor] = tensors[i];
    TORCH_CHECK(tensor.is_contiguous(), "pickle_state_dict: tensor ", key, " is not contiguous");
    const auto storage_class = storage_class_of_dtype(tensor.scalar_type());
    if (!storage_class)
      throw CheckpointError(source + ": cannot save tensor " + key + " of dtype " +
                            std::string(c10::toString(tensor.scalar_type())));
    pickle.string(key);
    // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
    pickle.global("torch._utils", "_rebuild_tensor_v2");
    pickle.opcode('(');
    pickle.opcode('(');  // persistent id ('storage', class, key, location, numel)
    pickle.string("storage");
    pickle.global("torch", *storage_class);
    pickle.string(std::to_string(i));
    pickle.string("cpu");
    pickle.integer(tensor.numel());
    pickle.opcode('t');
    pickle.opcode('Q');  // BINPERSID
    pickle.integer(0);
    pickle.int_tuple(tensor.sizes());
    pickle.int_tuple(tensor.strides());
    pickle.opcode('\x89');  // requires_grad False
    pickle.global("collections", "OrderedDict");
    pickle.opcode(')');
    pickle.opcode('R');
    pickle.opcode('t');
    pickle.opcode('R');
  }
  if (!tensors.empty()) pickle.opcode('u');  // SETITEMS
  pickle.opcode('.');
  return pickle.take();
}

}  // namespace sparser::checkpoint
