#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "checkpoint/pickle_reader.h"
#include "checkpoint/pickle_writer.h"
#include "checkpoint/state_dict.h"
#include "checkpoint/zip_archive.h"

using namespace sparser;
using checkpoint::CheckpointError;
using checkpoint::StateDict;
using namespace std::string_literals;

namespace {

namespace fs = std::filesystem;

const std::string kFixture = std::string(SPARSER_FIXTURES_DIR) + "/sam_tiny/weights.pth";

// A fresh directory under the system temp dir, removed with everything in it.
struct CheckpointTempDir {
  CheckpointTempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("sparser_checkpoint_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~CheckpointTempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  fs::path path;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// The CheckpointError message `action` throws, or a description of what went wrong instead.
template <typename Action>
std::string error_of(Action&& action) {
  try {
    action();
  } catch (const CheckpointError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a CheckpointError> ") + e.what();
  }
  return "<no error>";
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

// A zip archive laid out like a torch.save file, holding `pickle` and the given storages.
void write_archive(const std::string& path, const std::string& pickle, const std::vector<std::string>& storages) {
  checkpoint::ZipWriter zip(path);
  zip.add("archive/data.pkl", pickle);
  for (size_t i = 0; i < storages.size(); ++i) zip.add("archive/data/" + std::to_string(i), storages[i]);
  zip.add("archive/version", "3\n");
  zip.finish();
}

std::string tensor_bytes(const torch::Tensor& tensor) {
  const auto contiguous = tensor.contiguous();
  return std::string(static_cast<const char*>(contiguous.data_ptr()), contiguous.nbytes());
}

const torch::Tensor& find_tensor(const StateDict& state, const std::string& key) {
  for (const auto& [name, tensor] : state)
    if (name == key) return tensor;
  throw std::runtime_error("no key " + key);
}

bool python_torch_available() { return std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0; }

// Runs `script` with the system Python; returns its exit status, output in `output`.
int run_python(const CheckpointTempDir& dir, const std::string& script, std::string& output) {
  write_bytes(dir.file("script.py"), script);
  const auto command = "cd '" + dir.path.string() + "' && /usr/bin/python3 script.py > python.log 2>&1";
  const int status = std::system(command.c_str());
  output = read_bytes(dir.file("python.log"));
  return status;
}

// Tensors of every supported dtype, plus views whose layout differs from their storage.
StateDict varied_state() {
  const auto base = torch::arange(24, torch::kFloat).reshape({4, 6});
  return {
      {"float", torch::randn({3, 4})},
      {"double", torch::randn({2, 2}, torch::kDouble)},
      {"half", torch::randn({5}).to(torch::kHalf)},
      {"bfloat16", torch::randn({2, 3}).to(torch::kBFloat16)},
      {"long", torch::arange(5, torch::kLong) * int64_t(1000000000000)},
      {"int", torch::arange(-3, 3, torch::kInt)},
      {"short", torch::arange(-300, 300, 100, torch::kShort)},
      {"char", torch::arange(-4, 4, torch::kChar)},
      {"byte", torch::arange(250, 256, torch::kLong).to(torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::zeros({0, 3})},
      {"transposed", base.t()},
      {"shared_rows", base.slice(0, 1, 3)},
      {"shared_strided", base.slice(1, 0, 6, 2)},
      {"five_dims", torch::arange(32, torch::kFloat).reshape({2, 2, 2, 2, 2})},
  };
}

void expect_same_state(const StateDict& actual, const StateDict& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_EQ(actual[i].first, expected[i].first);
    EXPECT_EQ(actual[i].second.scalar_type(), expected[i].second.scalar_type()) << expected[i].first;
    EXPECT_EQ(actual[i].second.sizes(), expected[i].second.sizes()) << expected[i].first;
    EXPECT_TRUE(torch::equal(actual[i].second, expected[i].second)) << expected[i].first;
  }
}

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    scale = register_parameter("scale", torch::ones({3}));
    register_buffer("steps", torch::zeros({1}, torch::kLong));
    fc = register_module("fc", torch::nn::Linear(4, 3));
    head = register_module("head", torch::nn::Linear(3, 2));
  }
  torch::Tensor scale;
  torch::nn::Linear fc{nullptr}, head{nullptr};
};
TORCH_MODULE(TinyNet);

}  // namespace

TEST(CheckpointRead, ReadsTheOfficialFormatFixture) {
  const auto state = checkpoint::read_state_dict(kFixture);
  const checkpoint::ZipReader zip(kFixture);
  const auto storages = std::count_if(zip.entries().begin(), zip.entries().end(),
                                      [](const auto& entry) { return entry.name.find("/data/") != std::string::npos; });
  EXPECT_EQ(int64_t(state.size()), storages);
  ASSERT_FALSE(state.empty());
  EXPECT_EQ(state.front().first, "image_encoder.pos_embed");
  EXPECT_EQ(find_tensor(state, "image_encoder.pos_embed").sizes(), torch::IntArrayRef({1, 8, 8, 48}));
  EXPECT_EQ(find_tensor(state, "image_encoder.patch_embed.proj.weight").sizes(), torch::IntArrayRef({48, 3, 16, 16}));
  EXPECT_NO_THROW(find_tensor(state, "image_encoder.neck.0.weight"));
  EXPECT_EQ(find_tensor(state, "mask_decoder.iou_token.weight").dim(), 2);
  for (const auto& [key, tensor] : state) {
    EXPECT_EQ(tensor.scalar_type(), torch::kFloat) << key;
    EXPECT_TRUE(tensor.is_contiguous()) << key;
    EXPECT_TRUE(torch::isfinite(tensor).all().item<bool>()) << key;
  }
}

TEST(CheckpointRoundTrip, KeepsDtypesValuesViewsAndOrder) {
  CheckpointTempDir dir;
  const auto state = varied_state();
  checkpoint::write_state_dict(dir.file("state.pth"), state);
  const auto restored = checkpoint::read_state_dict(dir.file("state.pth"));
  expect_same_state(restored, state);
  for (const auto& [key, tensor] : restored) EXPECT_TRUE(tensor.is_contiguous()) << key;
  // Nothing but the file itself is left behind (the write went through a temporary name).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
}

TEST(CheckpointRoundTrip, WritesAlignedStoredEntries) {
  CheckpointTempDir dir;
  checkpoint::write_state_dict(dir.file("state.pth"), varied_state());
  const checkpoint::ZipReader zip(dir.file("state.pth"));
  const auto bytes = read_bytes(dir.file("state.pth"));
  for (const auto& entry : zip.entries()) {
    EXPECT_EQ(entry.method, 0) << entry.name;
    // Local header: 30 bytes, then name and extra field (the padding).
    const auto at = [&](uint64_t offset) { return uint8_t(bytes[entry.local_header_offset + offset]); };
    const uint64_t data_offset = entry.local_header_offset + 30 + (at(26) | (at(27) << 8)) + (at(28) | (at(29) << 8));
    EXPECT_EQ(data_offset % 64, 0u) << entry.name;
  }
}

TEST(CheckpointRoundTrip, EmptyStateDict) {
  CheckpointTempDir dir;
  checkpoint::write_state_dict(dir.file("empty.pth"), {});
  EXPECT_TRUE(checkpoint::read_state_dict(dir.file("empty.pth")).empty());
}

TEST(CheckpointRead, DropsTheModulePrefixOfADataParallelModel) {
  CheckpointTempDir dir;
  const StateDict state = {{"w", torch::ones({2})}, {"b", torch::zeros({1})}};
  checkpoint::write_state_dict(dir.file("ddp.pth"), {{"module.w", state[0].second}, {"module.b", state[1].second}});
  expect_same_state(checkpoint::read_state_dict(dir.file("ddp.pth")), state);
  // Only when every key has it.
  checkpoint::write_state_dict(dir.file("mixed.pth"), {{"module.w", state[0].second}, {"b", state[1].second}});
  EXPECT_EQ(checkpoint::read_state_dict(dir.file("mixed.pth")).front().first, "module.w");
}

TEST(CheckpointRead, FindsTheStateDictNestedUnderAKey) {
  CheckpointTempDir dir;
  const StateDict state = {{"w", torch::arange(6, torch::kFloat).reshape({2, 3})}, {"b", torch::ones({2})}};
  // {"epoch": 3, "model": OrderedDict(state)}: the flat pickle's body nested in a plain dict.
  const auto flat = checkpoint::pickle_state_dict(state, "test");
  const auto body = flat.substr(2, flat.size() - 3);  // without PROTO and STOP
  const auto nested = "\x80\x02}(X\x05\x00\x00\x00"s + "epochK\x03X\x05\x00\x00\x00model"s + body + "u.";
  write_archive(dir.file("nested.pth"), nested, {tensor_bytes(state[0].second), tensor_bytes(state[1].second)});

  expect_same_state(checkpoint::read_state_dict(dir.file("nested.pth")), state);
  expect_same_state(checkpoint::read_state_dict(dir.file("nested.pth"), "model"), state);
  const auto wrong_key = error_of([&] { checkpoint::read_state_dict(dir.file("nested.pth"), "state_dict"); });
  EXPECT_CONTAINS(wrong_key, "'state_dict'");
  EXPECT_CONTAINS(wrong_key, "'epoch', 'model'");
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("nested.pth"), "epoch"); }), "is a int");

  // Two candidates: the caller has to choose.
  const auto ambiguous = "\x80\x02}(X\x01\x00\x00\x00"s + "a" + body + "X\x01\x00\x00\x00"s + "b" + body + "u.";
  write_archive(dir.file("ambiguous.pth"), ambiguous, {tensor_bytes(state[0].second), tensor_bytes(state[1].second)});
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("ambiguous.pth")); }), "several nested dicts");
  expect_same_state(checkpoint::read_state_dict(dir.file("ambiguous.pth"), "b"), state);

  // Beside the model, an object of a class the reader does not know, as training scripts
  // save their argparse.Namespace: read as an opaque object, never constructed.
  // NEWOBJ argparse.Namespace(), then BUILD with its attribute dict {"lr": 0.1}.
  const auto namespace_args = "X\x04\x00\x00\x00"s + "args" + "\x63" + "argparse\nNamespace\n)\x81}X\x02\x00\x00\x00"s +
                              "lrG?\xb9\x99\x99\x99\x99\x99\x9asb";
  const auto with_args = "\x80\x02}(X\x05\x00\x00\x00"s + "model" + body + namespace_args + "u.";
  write_archive(dir.file("with_args.pth"), with_args, {tensor_bytes(state[0].second), tensor_bytes(state[1].second)});
  expect_same_state(checkpoint::read_state_dict(dir.file("with_args.pth")), state);
  expect_same_state(checkpoint::read_state_dict(dir.file("with_args.pth"), "model"), state);
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("with_args.pth"), "args"); }),
                  "'args' is a argparse.Namespace object, not a dict of tensors");

  // No tensors anywhere: the message lists what is there.
  write_archive(dir.file("no_tensors.pth"), "\x80\x02}(X\x04\x00\x00\x00"s + "stepK\x07u.", {});
  const auto no_tensors = error_of([&] { checkpoint::read_state_dict(dir.file("no_tensors.pth")); });
  EXPECT_CONTAINS(no_tensors, "no tensors");
  EXPECT_CONTAINS(no_tensors, "'step'");
}

TEST(CheckpointRead, ReadsOnlyTheChosenEntrysTensors) {
  // {"model": OrderedDict(state), "optimizer": {"state": OrderedDict(exp_avg=...)}}, as
  // training scripts save them: the optimizer's storage is never read, so a corrupt one
  // goes unnoticed and a large one costs no memory.
  CheckpointTempDir dir;
  const StateDict state = {{"w", torch::arange(6, torch::kFloat).reshape({2, 3})}, {"b", torch::ones({2})}};
  const auto exp_avg = torch::full({4096}, 7.0);
  const auto strip = [](const std::string& pickle) { return pickle.substr(2, pickle.size() - 3); };
  const auto model = strip(checkpoint::pickle_state_dict(state, "test"));
  auto optimizer_state = strip(checkpoint::pickle_state_dict({{"exp_avg", exp_avg}}, "test"));
  const auto first_key = "X\x01\x00\x00\x00"s + "0";  // the storage key in the persistent id
  ASSERT_EQ(optimizer_state.find(first_key), optimizer_state.rfind(first_key));
  optimizer_state.replace(optimizer_state.find(first_key), first_key.size(), "X\x01\x00\x00\x00"s + "2");
  const auto pickle = "\x80\x02}(X\x05\x00\x00\x00"s + "model" + model + "X\x09\x00\x00\x00"s + "optimizer" +
                      "}X\x05\x00\x00\x00"s + "state" + optimizer_state + "su.";
  write_archive(dir.file("training.pth"), pickle,
                {tensor_bytes(state[0].second), tensor_bytes(state[1].second), tensor_bytes(exp_avg)});

  const checkpoint::ZipReader zip(dir.file("training.pth"));
  std::vector<std::string> loaded;
  checkpoint::TensorReader tensors(
      [&](const std::string& key) {
        loaded.push_back(key);
        const auto* entry = zip.find("archive/data/" + key);
        auto bytes = torch::empty({int64_t(entry->size)}, torch::kUInt8);
        zip.read(*entry, bytes.data_ptr());
        return bytes;
      },
      "test");
  const auto root = checkpoint::unpickle(zip.read(*zip.find("archive/data.pkl")), "test");
  const auto& entries = root.as<std::shared_ptr<checkpoint::PickleDict>>();
  for (const auto& [key, value] : entries->find("model")->as<std::shared_ptr<checkpoint::PickleDict>>()->items)
    tensors.read(value.as<checkpoint::PickleTensor>());
  EXPECT_EQ(loaded, (std::vector<std::string>{"0", "1"}));

  auto bytes = read_bytes(dir.file("training.pth"));
  bytes[bytes.find(tensor_bytes(exp_avg)) + 5] ^= 0x40;
  write_bytes(dir.file("corrupt_optimizer.pth"), bytes);
  expect_same_state(checkpoint::read_state_dict(dir.file("corrupt_optimizer.pth"), "model"), state);
  expect_same_state(checkpoint::read_state_dict(dir.file("corrupt_optimizer.pth")), state);
}

TEST(CheckpointErrors, TruncatedFilesNameTheFileAndTheProblem) {
  CheckpointTempDir dir;
  const auto bytes = read_bytes(kFixture);
  ASSERT_GT(bytes.size(), 1000u);
  for (const size_t length :
       {size_t(0), size_t(10), size_t(100), bytes.size() / 2, bytes.size() - 30, bytes.size() - 1}) {
    const auto path = dir.file("cut_" + std::to_string(length) + ".pth");
    write_bytes(path, bytes.substr(0, length));
    const auto message = error_of([&] { checkpoint::read_state_dict(path); });
    EXPECT_CONTAINS(message, path);
    EXPECT_CONTAINS(message, "truncated");
  }
}

TEST(CheckpointRead, ToleratesBytesAfterTheEndOfTheArchive) {
  // As Python's zipfile and torch.load do: a copy with a stray newline or padding still loads.
  CheckpointTempDir dir;
  const auto bytes = read_bytes(kFixture);
  const auto expected = checkpoint::read_state_dict(kFixture);
  for (const std::string& trailing : {"\n"s, std::string(1000, '\0')}) {
    write_bytes(dir.file("padded.pth"), bytes + trailing);
    expect_same_state(checkpoint::read_state_dict(dir.file("padded.pth")), expected);
  }
}

TEST(CheckpointErrors, LegacyTorchSaveFormatIsNamed) {
  // torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False): no zip, a
  // pickle of the magic number 0x1950a86a20f9469cfc6c (protocol 2) first, then more pickles.
  CheckpointTempDir dir;
  const std::string magic = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."s;
  const std::string protocol_version = "\x80\x02M\xe9\x03."s;  // 1001
  write_bytes(dir.file("legacy.pth"), magic + protocol_version + std::string(2000, '\x01'));
  const auto message = error_of([&] { checkpoint::read_state_dict(dir.file("legacy.pth")); });
  EXPECT_CONTAINS(message, dir.file("legacy.pth") + ": legacy torch.save format");
  EXPECT_CONTAINS(message, "re-save it with torch.save in PyTorch ≥ 1.6");
}

TEST(CheckpointErrors, NotAZipArchive) {
  CheckpointTempDir dir;
  write_bytes(dir.file("notes.txt"), "These are not the weights you are looking for.\n");
  const auto message = error_of([&] { checkpoint::read_state_dict(dir.file("notes.txt")); });
  EXPECT_CONTAINS(message, dir.file("notes.txt"));
  EXPECT_CONTAINS(message, "not a zip archive");
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("missing.pth")); }), "cannot open");
}

TEST(CheckpointErrors, ZipWithoutPickle) {
  CheckpointTempDir dir;
  checkpoint::ZipWriter zip(dir.file("other.zip"));
  zip.add("archive/readme.txt", "hello");
  zip.finish();
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("other.zip")); }), "data.pkl");
}

TEST(CheckpointErrors, CorruptDataFailsTheCrcCheck) {
  CheckpointTempDir dir;
  checkpoint::write_state_dict(dir.file("state.pth"), {{"w", torch::ones({64})}});
  auto bytes = read_bytes(dir.file("state.pth"));
  const checkpoint::ZipReader zip(dir.file("state.pth"));
  const auto* entry = zip.find("archive/data/0");
  ASSERT_NE(entry, nullptr);
  bytes[bytes.find(tensor_bytes(torch::ones({64}))) + 5] ^= 0x40;
  write_bytes(dir.file("corrupt.pth"), bytes);
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("corrupt.pth")); }), "CRC");
}

TEST(CheckpointErrors, MalformedPicklesAreReportedNotCrashed) {
  CheckpointTempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"garbage", "this is not a pickle at all"},
      {"empty", ""},
      {"underflow", "\x80\x02R."},
      {"no_stop", "\x80\x02}"},
      {"unknown_global", "\x80\x02\x63os\nsystem\n."},
      {"unknown_call", "\x80\x02\x63os\nsystem\nX\x05\x00\x00\x00touch\x85R."s},
      {"undefined_memo", std::string("\x80\x02h\x05.")},
      {"odd_setitems", "\x80\x02}(K\x01u."},
      {"short_string", "\x80\x02X\xff\x00\x00\x00"s + "abc"},
      {"not_a_dict", "\x80\x02K\x05."},
  };
  const std::vector<std::string> expected = {"malformed pickle", "malformed pickle", "stack underflow",
                                             "without a STOP",   "os.system",        "os.system object",
                                             "memo",             "odd number",       "more bytes",
                                             "not a dict"};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto path = dir.file(cases[i].first + ".pth");
    write_archive(path, cases[i].second, {});
    const auto message = error_of([&] { checkpoint::read_state_dict(path); });
    EXPECT_CONTAINS(message, path);
    EXPECT_CONTAINS(message, expected[i]);
  }
}

TEST(CheckpointRead, ExpandedTensorsKeepTheirStridesOverTheirFewValues) {
  // torch.save({"x": torch.arange(3.).expand(4096, 3)}): 12288 values over 3 stored ones.
  CheckpointTempDir dir;
  const auto expanded = torch::arange(3, torch::kFloat).expand({4096, 3});
  auto pickle = checkpoint::pickle_state_dict({{"x", torch::ones({4096, 3})}}, "test");
  const std::string contiguous_strides = "K\x03K\x01\x86";
  ASSERT_NE(pickle.find(contiguous_strides), std::string::npos);
  pickle.replace(pickle.find(contiguous_strides), contiguous_strides.size(), "K\x00K\x01\x86"s);
  const auto storage_numel = "M\x00\x30"s;  // 12288 in the persistent id: 3
  ASSERT_NE(pickle.find(storage_numel), std::string::npos);
  pickle.replace(pickle.find(storage_numel), storage_numel.size(), "K\x03");
  write_archive(dir.file("expanded.pth"), pickle, {tensor_bytes(torch::arange(3, torch::kFloat))});
  const auto state = checkpoint::read_state_dict(dir.file("expanded.pth"));
  ASSERT_EQ(state.size(), 1u);
  EXPECT_TRUE(torch::equal(state[0].second, expanded));
  EXPECT_EQ(state[0].second.strides(), expanded.strides());
  EXPECT_EQ(state[0].second.storage().nbytes(), 3 * sizeof(float));
}

TEST(CheckpointErrors, DeeplyNestedContainersAreFreedWithoutRecursion) {
  // 300000 lists, each appended to the one below: [[[...]]], a valid pickle that Python
  // reads. Freed recursively, it overflowed the stack.
  CheckpointTempDir dir;
  const size_t depth = 300000;
  write_archive(dir.file("deep.pth"), "\x80\x02" + std::string(depth, ']') + std::string(depth - 1, 'a') + ".", {});
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("deep.pth")); }), "not a dict");
}

TEST(CheckpointErrors, TensorsMustFitTheirStorage) {
  CheckpointTempDir dir;
  const StateDict state = {{"w", torch::ones({4, 4})}};
  const auto pickle = checkpoint::pickle_state_dict(state, "test");
  write_archive(dir.file("short.pth"), pickle, {tensor_bytes(torch::ones({3}))});
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("short.pth")); }), "expected 16 elements");
  write_archive(dir.file("no_storage.pth"), pickle, {});
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("no_storage.pth")); }), "archive/data/0");

  // A view reaching past its storage: stride 5 on a 16-element storage of size (4, 4).
  auto bad_stride = pickle;
  const std::string strides = "K\x04K\x01\x86";
  ASSERT_NE(bad_stride.find(strides), std::string::npos);
  bad_stride.replace(bad_stride.find(strides), strides.size(), "K\x05K\x01\x86");
  write_archive(dir.file("bad_stride.pth"), bad_stride, {tensor_bytes(state[0].second)});
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("bad_stride.pth")); }), "past its storage");

  // A storage of 2^62 + 1 float32 elements: its byte count wrapped around to 4, the bytes there
  // are, and as_strided failed without naming the file.
  auto huge = checkpoint::pickle_state_dict({{"w", torch::ones({1})}}, "test");
  const std::string one_element = "cpuK\x01";
  ASSERT_NE(huge.find(one_element), std::string::npos);
  huge.replace(huge.find(one_element), one_element.size(), "cpu\x8a\x08\x01\0\0\0\0\0\0\x40"s);
  write_archive(dir.file("huge.pth"), huge, {tensor_bytes(torch::ones({1}))});
  EXPECT_CONTAINS(error_of([&] { checkpoint::read_state_dict(dir.file("huge.pth")); }),
                  "huge.pth: storage 0 holds 4 bytes, expected 4611686018427387905 elements");
}

// Random corruption of the real pickle and of the archive's directory: every outcome must
// be a value or a CheckpointError.
TEST(CheckpointErrors, SurvivesRandomCorruption) {
  const checkpoint::ZipReader zip(kFixture);
  const auto pickle = zip.read(*zip.find("weights/data.pkl"));
  const checkpoint::StorageLoader load = [&](const std::string& key) {
    const auto* entry = zip.find("weights/data/" + key);
    if (!entry) throw CheckpointError("mutated: no storage " + key);
    auto bytes = torch::empty({int64_t(entry->size)}, torch::kUInt8);
    zip.read(*entry, bytes.data_ptr());
    return bytes;
  };
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    auto mutated = pickle;
    for (int flips = 0; flips < 3; ++flips) mutated[rng() % mutated.size()] = char(rng());
    if (trial % 3 == 0) mutated.resize(rng() % mutated.size());
    const auto outcome = error_of([&] {
      const auto root = checkpoint::unpickle(mutated, "mutated");
      if (!root.is<std::shared_ptr<checkpoint::PickleDict>>()) return;
      checkpoint::TensorReader tensors(load, "mutated");
      for (const auto& [key, value] : root.as<std::shared_ptr<checkpoint::PickleDict>>()->items)
        if (value.is<checkpoint::PickleTensor>()) tensors.read(value.as<checkpoint::PickleTensor>());
    });
    EXPECT_TRUE(outcome == "<no error>" || outcome.rfind("mutated", 0) == 0) << outcome;
  }

  CheckpointTempDir dir;
  const auto bytes = read_bytes(kFixture);
  for (int trial = 0; trial < 100; ++trial) {
    auto mutated = bytes;
    // The last kilobyte holds the central directory and its end records.
    for (int flips = 0; flips < 4; ++flips) mutated[mutated.size() - 1 - rng() % 1024] = char(rng());
    write_bytes(dir.file("mutated.pth"), mutated);
    const auto outcome = error_of([&] { checkpoint::read_state_dict(dir.file("mutated.pth")); });
    EXPECT_TRUE(outcome == "<no error>" || outcome.rfind(dir.file("mutated.pth"), 0) == 0) << outcome;
  }
}

TEST(CheckpointModule, StateFollowsRegistrationOrder) {
  TinyNet net;
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : checkpoint::module_state(*net)) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"scale", "steps", "fc.weight", "fc.bias", "head.weight", "head.bias"}));
}

TEST(CheckpointModule, LoadsIntoAModuleConvertingDtypes) {
  TinyNet source, target;
  StateDict half_state;
  for (const auto& [key, tensor] : checkpoint::module_state(*source))
    half_state.emplace_back(key, tensor.is_floating_point() ? tensor.to(torch::kHalf) : tensor + 5);
  const auto report = checkpoint::load_state_dict(*target, half_state);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty());
  EXPECT_TRUE(torch::equal(target->fc->weight, source->fc->weight.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_EQ(target->fc->weight.scalar_type(), torch::kFloat);
  EXPECT_TRUE(target->fc->weight.requires_grad());
  EXPECT_EQ(target->named_buffers()["steps"].item<int64_t>(), 5);
}

TEST(CheckpointModule, StrictLoadListsEveryOffendingKey) {
  TinyNet net;
  auto state = checkpoint::module_state(*TinyNet());
  state.erase(state.begin() + 3);                         // fc.bias missing
  state.erase(state.begin());                             // scale missing
  state.emplace_back("extra.weight", torch::zeros({1}));  // unexpected
  state.emplace_back("decoder.bias", torch::zeros({1}));  // unexpected
  for (auto& [key, tensor] : state)
    if (key == "head.weight") tensor = torch::zeros({3, 2});  // transposed shape
  const auto before = net->head->weight.clone();

  const auto message = error_of([&] { checkpoint::load_state_dict(*net, state, true, "ckpt.pth"); });
  EXPECT_CONTAINS(message, "ckpt.pth");
  EXPECT_CONTAINS(message, "2 missing keys: scale, fc.bias");
  EXPECT_CONTAINS(message, "2 unexpected keys: extra.weight, decoder.bias");
  EXPECT_CONTAINS(message, "1 shape mismatch: head.weight (checkpoint [3, 2], model [2, 3])");
  EXPECT_TRUE(torch::equal(net->head->weight, before)) << "a failed strict load must not copy anything";

  const auto report = checkpoint::load_state_dict(*net, state, /*strict=*/false);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"scale", "fc.bias"}));
  EXPECT_EQ(report.unexpected, (std::vector<std::string>{"extra.weight", "decoder.bias"}));
  EXPECT_EQ(report.mismatched, (std::vector<std::string>{"head.weight"}));
  EXPECT_TRUE(torch::equal(net->fc->weight, find_tensor(state, "fc.weight")));
}

TEST(CheckpointModule, LongErrorListsNameEveryKey) {
  torch::nn::Sequential many;
  for (int i = 0; i < 30; ++i) many->push_back(torch::nn::Linear(1, 1));
  const auto message = error_of([&] { checkpoint::load_state_dict(*many, {}); });
  EXPECT_CONTAINS(message, "60 missing keys: 0.weight, 0.bias");
  EXPECT_CONTAINS(message, "28.bias, 29.weight, 29.bias");
}

TEST(CheckpointPython, TorchLoadReadsOurFiles) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  CheckpointTempDir dir;
  const auto state = varied_state();
  checkpoint::write_state_dict(dir.file("ours.pth"), state);
  std::string output;
  const int status = run_python(dir, R"(
import collections, torch
sd = torch.load("ours.pth")
assert type(sd) is collections.OrderedDict, type(sd)
assert list(sd) == ["float", "double", "half", "bfloat16", "long", "int", "short", "char", "byte", "bool",
                    "scalar", "empty", "transposed", "shared_rows", "shared_strided", "five_dims"], list(sd)
assert sd["half"].dtype == torch.float16 and sd["bfloat16"].dtype == torch.bfloat16 and sd["bool"].dtype == torch.bool
assert torch.equal(sd["long"], torch.arange(5) * 1000000000000)
assert torch.equal(sd["transposed"], torch.arange(24.).reshape(4, 6).t())
assert torch.equal(sd["shared_strided"], torch.arange(24.).reshape(4, 6)[:, ::2])
assert sd["scalar"].dim() == 0 and sd["scalar"].item() == 3.5
assert sd["empty"].shape == (0, 3)
torch.save(sd, "resaved.pth")
)",
                                output);
  ASSERT_EQ(status, 0) << output;
  // Python's view of our file, saved by torch.save and read by us, equals what we wrote.
  expect_same_state(checkpoint::read_state_dict(dir.file("resaved.pth")), state);
}

TEST(CheckpointPython, ReadsFilesWrittenByTorchSave) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  CheckpointTempDir dir;
  std::string output;
  const int status = run_python(dir, R"(
import torch
net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
with torch.no_grad():
    net[0].weight.copy_(torch.arange(6.).reshape(2, 3))
    net[0].bias.fill_(-1)
sd = net.state_dict()
assert hasattr(sd, "_metadata")
base = torch.arange(20.).reshape(4, 5)
sd["half"] = torch.arange(6, dtype=torch.float16).reshape(2, 3)
sd["long"] = torch.arange(4) * 3000000000
sd["flags"] = torch.tensor([True, False, True])
sd["base"] = base
sd["view"] = base[1:, ::2]
torch.save(sd, "state.pth")
torch.save({"epoch": 7, "model": sd, "optimizer_lr": 0.5}, "nested.pth")
torch.save({"p": torch.nn.Parameter(torch.ones(2))}, "parameter.pth")
)",
                                output);
  ASSERT_EQ(status, 0) << output;

  for (const auto& file : {"state.pth", "nested.pth"}) {
    const auto state = checkpoint::read_state_dict(dir.file(file));
    std::vector<std::string> keys;
    for (const auto& [key, tensor] : state) keys.push_back(key);
    EXPECT_EQ(keys,
              (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked", "half", "long", "flags", "base", "view"}));
    EXPECT_TRUE(torch::equal(find_tensor(state, "0.weight"), torch::arange(6, torch::kFloat).reshape({2, 3})));
    EXPECT_TRUE(torch::equal(find_tensor(state, "0.bias"), -torch::ones({2})));
    EXPECT_EQ(find_tensor(state, "1.num_batches_tracked").scalar_type(), torch::kLong);
    EXPECT_EQ(find_tensor(state, "1.num_batches_tracked").dim(), 0);
    EXPECT_TRUE(torch::equal(find_tensor(state, "half"), torch::arange(6, torch::kHalf).reshape({2, 3})));
    EXPECT_TRUE(torch::equal(find_tensor(state, "long"), torch::arange(4, torch::kLong) * int64_t(3000000000)));
    EXPECT_TRUE(torch::equal(find_tensor(state, "flags"), torch::tensor({true, false, true})));
    const auto base = torch::arange(20, torch::kFloat).reshape({4, 5});
    EXPECT_TRUE(torch::equal(find_tensor(state, "base"), base));
    EXPECT_TRUE(torch::equal(find_tensor(state, "view"), base.slice(0, 1).slice(1, 0, 5, 2)));
    // Tensors sharing a storage in the file do not share memory once read.
    EXPECT_NE(find_tensor(state, "base").data_ptr(), find_tensor(state, "view").data_ptr());
  }
  const auto parameter = checkpoint::read_state_dict(dir.file("parameter.pth"));
  ASSERT_EQ(parameter.size(), 1u);
  EXPECT_TRUE(torch::equal(parameter[0].second, torch::ones({2})));
}

TEST(CheckpointPython, FixtureValuesMatchTorchLoad) {
  if (!python_torch_available()) GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  CheckpointTempDir dir;
  std::string output;
  const int status = run_python(dir, "import torch\nsd = torch.load('" + kFixture + R"(')
with open("sums.txt", "w") as out:
    for key, tensor in sd.items():
        out.write(f"{key} {tensor.double().sum().item()!r} {tensor.double().abs().max().item()!r}\n")
)",
                                output);
  ASSERT_EQ(status, 0) << output;
  const auto state = checkpoint::read_state_dict(kFixture);
  std::istringstream sums(read_bytes(dir.file("sums.txt")));
  std::string key;
  double sum = 0, max_abs = 0;
  size_t index = 0;
  while (sums >> key >> sum >> max_abs) {
    ASSERT_LT(index, state.size());
    EXPECT_EQ(state[index].first, key);
    const auto values = state[index].second.to(torch::kDouble);
    EXPECT_NEAR(values.sum().item<double>(), sum, 1e-9 * (1 + std::abs(sum))) << key;
    EXPECT_EQ(values.abs().max().item<double>(), max_abs) << key;
    ++index;
  }
  EXPECT_EQ(index, state.size());
}
