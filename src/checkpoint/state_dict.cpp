#include "checkpoint/state_dict.h"

#include <algorithm>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include "checkpoint/pickle_reader.h"
#include "checkpoint/pickle_writer.h"
#include "util/atomic_file.h"

namespace sparser::checkpoint {

namespace {

// torch.save's format before PyTorch 1.6 (still written with _use_new_zipfile_serialization=False)
// is no zip but pickles in a row, the first of this magic number (protocol 2, a LONG1).
bool is_legacy_torch_save(const std::string& path) {
  static const std::string magic = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
  std::ifstream in(path, std::ios::binary);
  std::string start(magic.size(), '\0');
  return in.read(start.data(), std::streamsize(start.size())) && start == magic;
}

// Where torch.save puts the pickle: <folder>/data.pkl, the folder being named after the
// file (torch < 2) or "archive"; every other record lives in the same folder.
std::string archive_folder(const ZipReader& zip) {
  std::string folder;
  for (const auto& entry : zip.entries()) {
    const auto slash = entry.name.find('/');
    if (slash == std::string::npos || entry.name.compare(slash, std::string::npos, "/data.pkl") != 0) continue;
    if (!folder.empty()) throw CheckpointError(zip.path() + ": more than one data.pkl in the archive");
    folder = entry.name.substr(0, slash + 1);
  }
  if (folder.empty())
    throw CheckpointError(zip.path() + ": the zip archive has no <folder>/data.pkl; not a torch.save checkpoint");
  return folder;
}

// "a, b, c": every name, so that a user can fix them all at once.
std::string name_list(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text;
}

std::string key_list(const PickleDict& dict) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : dict.items)
    keys.push_back(key.is<std::string>() ? "'" + key.as<std::string>() + "'" : "<" + key.type_name() + ">");
  return keys.empty() ? "none" : name_list(keys);
}

bool is_dict_of_tensors(const PickleValue& value) {
  if (!value.is<std::shared_ptr<PickleDict>>()) return false;
  const auto& items = value.as<std::shared_ptr<PickleDict>>()->items;
  return !items.empty() && std::all_of(items.begin(), items.end(), [](const auto& item) {
    return item.first.template is<std::string>() && item.second.template is<PickleTensor>();
  });
}

StateDict to_state_dict(const PickleDict& dict, TensorReader& tensors, const std::string& path,
                        const std::string& where) {
  StateDict state;
  state.reserve(dict.items.size());
  for (const auto& [key, value] : dict.items) {
    if (!key.is<std::string>()) throw CheckpointError(path + ": " + where + " has a " + key.type_name() + " key");
    if (!value.is<PickleTensor>())
      throw CheckpointError(path + ": entry '" + key.as<std::string>() + "' of " + where + " is a " +
                            value.type_name() + ", not a tensor");
    state.emplace_back(key.as<std::string>(), tensors.read(value.as<PickleTensor>()));
  }
  return state;
}

// Reads the chosen dict's tensors alone: a checkpoint's other entries are never read.
StateDict select_state_dict(const PickleValue& root, TensorReader& tensors, const std::string& path,
                            const std::string& nested_key) {
  if (!root.is<std::shared_ptr<PickleDict>>())
    throw CheckpointError(path + ": the checkpoint holds a " + root.type_name() + ", not a dict of tensors");
  const auto& top = *root.as<std::shared_ptr<PickleDict>>();
  if (!nested_key.empty()) {
    const auto* nested = top.find(nested_key);
    if (!nested)
      throw CheckpointError(path + ": no key '" + nested_key + "' at the top level; its keys: " + key_list(top));
    if (!nested->is<std::shared_ptr<PickleDict>>())
      throw CheckpointError(path + ": '" + nested_key + "' is a " + nested->type_name() + ", not a dict of tensors");
    return to_state_dict(*nested->as<std::shared_ptr<PickleDict>>(), tensors, path, "'" + nested_key + "'");
  }

  const bool has_top_level_tensors = std::any_of(
      top.items.begin(), top.items.end(), [](const auto& item) { return item.second.template is<PickleTensor>(); });
  if (has_top_level_tensors || top.items.empty()) return to_state_dict(top, tensors, path, "the top-level dict");

  std::vector<std::string> candidates;
  for (const auto& [key, value] : top.items)
    if (key.is<std::string>() && is_dict_of_tensors(value)) candidates.push_back(key.as<std::string>());
  if (candidates.size() == 1)
    return to_state_dict(*top.find(candidates[0])->as<std::shared_ptr<PickleDict>>(), tensors, path,
                         "'" + candidates[0] + "'");
  if (candidates.empty())
    throw CheckpointError(
        path + ": no tensors at the top level and no nested dict of tensors; top-level keys: " + key_list(top));
  throw CheckpointError(path + ": several nested dicts of tensors (" + name_list(candidates) +
                        "); choose one by its key ([model] checkpoint_key, or --checkpoint-key)");
}

}  // namespace

StateDict read_state_dict(const std::string& path, const std::string& nested_key) {
  if (is_legacy_torch_save(path))
    throw CheckpointError(path + ": legacy torch.save format (PyTorch < 1.6, or _use_new_zipfile_serialization="
                                 "False), not supported; re-save it with torch.save in PyTorch ≥ 1.6");
  const ZipReader zip(path);
  const auto folder = archive_folder(zip);
  if (const auto* byteorder = zip.find(folder + "byteorder"); byteorder && zip.read(*byteorder) != "little")
    throw CheckpointError(path + ": only little-endian checkpoints are supported");

  TensorReader tensors([&](const std::string& key) {
    const auto* entry = zip.find(folder + "data/" + key);
    if (!entry) throw CheckpointError(path + ": storage " + folder + "data/" + key + " is missing from the archive");
    auto bytes = torch::empty({int64_t(entry->size)}, torch::kUInt8);
    zip.read(*entry, bytes.data_ptr());
    return bytes;
  }, path);
  const auto pickle = zip.read(*zip.find(folder + "data.pkl"));
  auto state =
      select_state_dict(unpickle(pickle, path + " (" + folder + "data.pkl)"), tensors, path, nested_key);
  // A model saved through DistributedDataParallel has every key under "module.".
  const std::string wrapper = "module.";
  const bool wrapped = !state.empty() && std::all_of(state.begin(), state.end(), [&](const auto& item) {
    return item.first.compare(0, wrapper.size(), wrapper) == 0;
  });
  if (wrapped)
    for (auto& item : state) item.first.erase(0, wrapper.size());
  return state;
}

void write_state_dict(const std::string& path, const StateDict& state) {
  StateDict cpu_state;
  cpu_state.reserve(state.size());
  std::unordered_set<std::string> keys;
  for (const auto& [key, tensor] : state) {
    if (!keys.insert(key).second) throw CheckpointError(path + ": duplicate key " + key);
    if (!tensor.defined()) throw CheckpointError(path + ": tensor " + key + " is undefined");
    cpu_state.emplace_back(key, tensor.detach().to(torch::kCPU).contiguous());
  }
  const auto pickle = pickle_state_dict(cpu_state, path);
  util::produce_file_atomically(path, [&](const std::string& tmp_path) {
    ZipWriter zip(tmp_path);
    zip.add("archive/data.pkl", pickle);
    zip.add("archive/byteorder", "little");
    for (size_t i = 0; i < cpu_state.size(); ++i) {
      const auto& tensor = cpu_state[i].second;
      zip.add("archive/data/" + std::to_string(i), tensor.data_ptr(), tensor.nbytes());
    }
    zip.add("archive/version", "3\n");
    zip.finish();
  });
}

StateDict module_state(const torch::nn::Module& module) {
  StateDict state;
  const auto add_own = [&](const std::string& prefix, const torch::nn::Module& owner) {
    const auto qualified = [&](const std::string& name) { return prefix.empty() ? name : prefix + "." + name; };
    for (const auto& parameter : owner.named_parameters(/*recurse=*/false))
      state.emplace_back(qualified(parameter.key()), parameter.value().detach());
    for (const auto& buffer : owner.named_buffers(/*recurse=*/false))
      state.emplace_back(qualified(buffer.key()), buffer.value().detach());
  };
  add_own("", module);
  // Submodules in pre-order; include_self=false works for modules not owned by a shared_ptr.
  for (const auto& submodule : module.named_modules("", /*include_self=*/false))
    add_own(submodule.key(), *submodule.value());
  return state;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict, const std::string& source) {
  std::unordered_map<std::string, const torch::Tensor*> provided;
  for (const auto& [key, tensor] : state) provided[key] = &tensor;

  LoadReport report;
  std::vector<std::string> mismatch_details;
  std::vector<std::pair<torch::Tensor, const torch::Tensor*>> copies;
  std::unordered_set<std::string> module_keys;
  for (const auto& [key, target] : module_state(module)) {
    module_keys.insert(key);
    const auto found = provided.find(key);
    if (found == provided.end()) {
      report.missing.push_back(key);
    } else if (!found->second->defined() || found->second->sizes() != target.sizes()) {
      report.mismatched.push_back(key);
      mismatch_details.push_back(key + " (checkpoint " + shape_string(*found->second) + ", model " +
                                 shape_string(target) + ")");
    } else {
      copies.emplace_back(target, found->second);
    }
  }
  for (const auto& [key, tensor] : state)
    if (!module_keys.count(key)) report.unexpected.push_back(key);

  if (strict && (!report.missing.empty() || !report.unexpected.empty() || !report.mismatched.empty())) {
    std::string message = (source.empty() ? std::string("state dict") : source) + " does not match the model:";
    const auto add_kind = [&](const std::vector<std::string>& names, const char* singular, const char* plural) {
      if (!names.empty())
        message += " " + std::to_string(names.size()) + " " + (names.size() == 1 ? singular : plural) + ": " +
                   name_list(names) + ";";
    };
    add_kind(report.missing, "missing key", "missing keys");
    add_kind(report.unexpected, "unexpected key", "unexpected keys");
    add_kind(mismatch_details, "shape mismatch", "shape mismatches");
    message.pop_back();
    throw CheckpointError(message);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [target, value] : copies) target.copy_(*value);
  return report;
}

std::string shape_string(const torch::Tensor& tensor) {
  return tensor.defined() ? c10::str(tensor.sizes()) : std::string("undefined");
}

}  // namespace sparser::checkpoint
