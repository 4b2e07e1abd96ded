#pragma once
// The [method] table: which fine-tuning method, and its own settings. Defaults and
// their sources are documented in docs/methods.md.
#include <cstdint>
#include <string>
#include <vector>

namespace sparser::methods {

enum class MethodName { ZeroShot, DecoderOnly, Parser, Lora, Adapter, Fact };
enum class ParserTrain { Coefficients, Bases, Both };

struct MethodConfig {
  MethodName name = MethodName::Parser;

  // PARSER: module-name patterns of the weights to decompose. The presets expand to
  // `conv` = the neck's two convolutions, `transformer` = every block's qkv, proj,
  // lin1, lin2, `both` = all of them.
  std::vector<std::string> parser_layers;
  ParserTrain parser_train = ParserTrain::Coefficients;

  // LoRA (SAMed): rank-r updates of the listed qkv slices, scaled by alpha / rank.
  int64_t lora_rank = 4;
  double lora_alpha = 4.0;
  std::vector<std::string> lora_targets{"q", "v"};

  // Houlsby adapter after each block's attention projection.
  int64_t adapter_bottleneck = 19;

  // FacT-TT: shared factors U (r×C), V (C×r) and per-block r×r cores per target; the
  // cores' output is dropped out while training, as in FacT.
  int64_t fact_rank = 8;
  double fact_scale = 1.0;
  double fact_dropout = 0.1;
  std::vector<std::string> fact_targets{"q", "k", "v"};

  // Whether the prompt encoder trains too (it stays frozen in the paper).
  bool train_prompt_encoder = false;
};

std::string to_string(MethodName name);
std::string to_string(ParserTrain train);
// Expands `conv`, `transformer`, `both` to their module-name patterns; other
// entries are patterns already and are kept.
std::vector<std::string> expand_parser_layers(const std::vector<std::string>& layers);
// True when the method trains nothing before the encoder's neck (zero-shot, decoder-only,
// PARSER on neck layers only): the trunk's features can then be computed once per image.
bool leaves_trunk_frozen(const MethodConfig& config);

}  // namespace sparser::methods
