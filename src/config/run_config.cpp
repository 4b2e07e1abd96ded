#include "config/run_config.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "config/method_section.h"
#include "methods/layer_pattern.h"

namespace sparser::config {

namespace {

int64_t at_least(const TomlSection& t, const std::string& key, int64_t fallback, int64_t minimum) {
  const auto v = t.get_int(key, fallback);
  if (v < minimum) t.fail(key, "must be >= " + std::to_string(minimum) + " (got " + std::to_string(v) + ")");
  return v;
}

double non_negative(const TomlSection& t, const std::string& key, double fallback) {
  const auto v = t.get_double(key, fallback);
  if (!(v >= 0 && std::isfinite(v))) t.fail(key, "must be a finite number >= 0");
  return v;
}

// A size limit in GB: inf is no limit.
double budget(const TomlSection& t, const std::string& key, double fallback) {
  const auto v = t.get_double(key, fallback);
  if (!(v >= 0)) t.fail(key, "must be >= 0 (inf: no limit)");
  return v;
}

RunSection parse_run(const TomlSection& t, const std::string& source) {
  t.reject_unknown_keys({"name", "output_dir", "seeds", "dataset", "threads", "device", "log_every"});
  RunSection r;
  r.name = t.get_string("name", std::filesystem::path(source).stem().string());
  r.output_dir = t.get_string("output_dir", r.output_dir);
  r.seeds = t.get_int_list("seeds", r.seeds);
  if (r.seeds.empty()) t.fail("seeds", "needs at least one seed");
  r.dataset = t.get_string("dataset", r.name);
  r.threads = at_least(t, "threads", r.threads, 0);
  r.device = t.get_choice("device", {"auto", "cpu", "cuda"}, r.device);
  r.log_every = at_least(t, "log_every", r.log_every, 1);
  return r;
}

DataSection parse_data(const TomlSection& t) {
  t.reject_unknown_keys({"train", "val", "max_instances", "box_jitter", "shuffle", "uneven", "workers", "prefetch"});
  DataSection d;
  d.train = t.get_string("train", "");
  d.val = t.get_string("val", "");
  d.max_instances = at_least(t, "max_instances", d.max_instances, 1);
  d.box_jitter = at_least(t, "box_jitter", d.box_jitter, 0);
  d.shuffle = t.get_bool("shuffle", d.shuffle);
  d.uneven = t.get_choice("uneven", {"pad", "drop"}, d.uneven);
  d.workers = at_least(t, "workers", d.workers, 1);
  d.prefetch = at_least(t, "prefetch", d.prefetch, 1);
  return d;
}

TrainSection parse_train(const TomlSection& t) {
  t.reject_unknown_keys({"epochs", "images_per_step", "optimizer", "lr", "weight_decay", "schedule", "warmup_steps",
                         "step_size", "gamma", "grad_clip", "prompts_per_pass", "loss_bce", "loss_dice", "loss_focal", "precision",
                         "checkpoint_every", "trunk_cache", "trunk_cache_dtype", "trunk_cache_memory_gb",
                         "trunk_cache_disk_gb", "trunk_cache_dir"});
  TrainSection s;
  s.epochs = at_least(t, "epochs", s.epochs, 0);
  s.images_per_step = at_least(t, "images_per_step", s.images_per_step, 1);
  s.optimizer = t.get_choice("optimizer", {"adam", "adamw"}, s.optimizer);
  s.lr = t.get_double("lr", s.lr);
  if (!(s.lr > 0 && std::isfinite(s.lr))) t.fail("lr", "must be a finite number > 0");
  s.weight_decay = non_negative(t, "weight_decay", s.weight_decay);
  s.schedule = t.get_choice("schedule", {"constant", "cosine", "step"}, s.schedule);
  s.warmup_steps = at_least(t, "warmup_steps", s.warmup_steps, 0);
  s.step_size = at_least(t, "step_size", s.step_size, 0);
  if (s.schedule == "step" && s.step_size == 0) t.fail("step_size", "schedule = \"step\" needs step_size >= 1");
  s.gamma = t.get_double("gamma", s.gamma);
  if (!(s.gamma > 0 && s.gamma <= 1)) t.fail("gamma", "must be in (0, 1]");
  s.grad_clip = non_negative(t, "grad_clip", s.grad_clip);
  s.prompts_per_pass = at_least(t, "prompts_per_pass", s.prompts_per_pass, 0);
  s.loss_bce = non_negative(t, "loss_bce", s.loss_bce);
  s.loss_dice = non_negative(t, "loss_dice", s.loss_dice);
  s.loss_focal = non_negative(t, "loss_focal", s.loss_focal);
  s.precision = t.get_choice("precision", {"fp32", "bf16"}, s.precision);
  s.checkpoint_every = at_least(t, "checkpoint_every", s.checkpoint_every, 0);
  s.trunk_cache = t.get_choice("trunk_cache", {"auto", "off", "memory", "disk"}, s.trunk_cache);
  s.trunk_cache_dtype = t.get_choice("trunk_cache_dtype", {"fp32", "fp16"}, s.trunk_cache_dtype);
  s.trunk_cache_memory_gb = budget(t, "trunk_cache_memory_gb", s.trunk_cache_memory_gb);
  s.trunk_cache_disk_gb = budget(t, "trunk_cache_disk_gb", s.trunk_cache_disk_gb);
  s.trunk_cache_dir = t.get_string("trunk_cache_dir", s.trunk_cache_dir);
  return s;
}

EvalSection parse_eval(const TomlSection& t) {
  t.reject_unknown_keys({"every", "metrics", "per_class"});
  EvalSection e;
  e.every = at_least(t, "every", e.every, 1);
  e.metrics = t.get_string_list("metrics", e.metrics);
  if (e.metrics.empty()) t.fail("metrics", "needs at least one metric (the first one selects the best epoch)");
  for (const auto& m : e.metrics)
    if (m != "miou" && m != "f1" && m != "dsc") t.fail("metrics", "'" + m + "' is not one of: miou, f1, dsc");
  e.per_class = t.get_bool("per_class", e.per_class);
  return e;
}

// The key of an override in TOML's dotted-key syntax, so `sweep."method.layers"` is
// one key of [sweep].
std::vector<std::string> override_key_path(const std::string& key_text, const std::string& origin) {
  const auto bad_key = [&] { return ConfigError(origin + ": '" + key_text + "' is not a key such as train.lr"); };
  toml::table parsed;
  try {
    parsed = toml::parse(key_text + " = 0");
  } catch (const toml::parse_error&) {
    throw bad_key();
  }
  std::vector<std::string> path;
  for (const toml::table* level = &parsed;;) {
    if (level->size() != 1) throw bad_key();
    const auto entry = level->begin();
    path.emplace_back(entry->first.str());
    if (!entry->second.is_table()) return path;
    level = entry->second.as_table();
  }
}

// The value of an override as one TOML value, parsed with `origin` as its source (see
// override_origin); a bare word that is not TOML is taken as a string.
toml::table override_value(const std::string& value_text, const std::string& origin) {
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value_text, origin);
  } catch (const toml::parse_error&) {
    std::ostringstream quoted;
    quoted << toml::value<std::string>(value_text);
    parsed = toml::parse("v = " + quoted.str(), origin);
  }
  if (parsed.size() != 1) throw ConfigError(origin + ": the value must be one TOML value");
  return parsed;
}

// "a.b=value": sets the key, creating tables on the way.
void apply_override(toml::table& root, const std::string& override_text) {
  const auto origin = override_origin(override_text);
  const auto eq = override_text.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError(origin + ": expected section.key=value");
  const auto path = override_key_path(override_text.substr(0, eq), origin);
  auto parsed = override_value(override_text.substr(eq + 1), origin);
  const auto parent = key_parent(root, path, origin);
  if (!parent.table) throw ConfigError(origin + ": '" + parent.blocked + "' is not a table");
  // Moved, not copied: the value keeps its origin, so errors about it name the override.
  parent.table->insert_or_assign(path.back(), std::move(*parsed.get("v")));
}

}  // namespace

void apply_overrides(toml::table& root, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) apply_override(root, o);
}

RunConfig parse_run_config(const toml::table& root, const std::string& source, Checks checks) {
  const TomlSection top(&root, source, "");
  top.reject_unknown_keys({"run", "model", "method", "data", "train", "eval", "sweep"});
  RunConfig c;
  c.source = source;
  c.run = parse_run(top.section("run"), source);
  c.model = parse_model_section(top.section("model"), checks);
  c.method = parse_method_section(top.section("method"));
  c.data = parse_data(top.section("data"));
  c.train = parse_train(top.section("train"));
  c.eval = parse_eval(top.section("eval"));
  // Checked here, not when the run starts, so that a sweep is refused before any of its runs.
  if (c.method.name == methods::MethodName::Parser && checks == Checks::kWholeRun) {
    const auto unmatched = methods::unmatched_patterns(methods::expand_parser_layers(c.method.parser_layers),
                                                       model::image_encoder_layer_names(c.model.sam));
    if (!unmatched.empty())
      top.section("method").fail("layers", unmatched + " matches no Linear/Conv2d layer of this model's image encoder "
                                           "(list them with: sparser_inspect --config " + source + ")");
  }
  if ((c.train.trunk_cache == "memory" || c.train.trunk_cache == "disk") && !methods::leaves_trunk_frozen(c.method))
    top.section("train").fail("trunk_cache", "\"" + c.train.trunk_cache + "\" with method " +
                                                 methods::to_string(c.method.name) +
                                                 ", which trains the image encoder's trunk, whose features therefore "
                                                 "cannot be cached; use \"auto\" or \"off\"");
  return c;
}

bool trains(const RunConfig& c) { return c.method.name != methods::MethodName::ZeroShot && c.train.epochs > 0; }

void require_train_split(const toml::table& root, const RunConfig& c, const std::string& source) {
  if (!trains(c) || !c.data.train.empty()) return;
  TomlSection(&root, source, "")
      .section("data")
      .fail("train", "missing: method " + methods::to_string(c.method.name) + " trains for " +
                         std::to_string(c.train.epochs) +
                         " epoch(s) and needs a train manifest (sparser_prep writes <split>.manifest.json)");
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto root = parse_toml_file(path);
  apply_overrides(root, overrides);
  return parse_run_config(root, path);
}

std::string to_toml(const RunConfig& c) {
  const auto& s = c.model.sam;
  toml::table model{{"preset", s.preset}, {"checkpoint", c.model.checkpoint}};
  if (!c.model.checkpoint_key.empty()) model.insert("checkpoint_key", c.model.checkpoint_key);
  if (s.preset == "custom") {
    model.insert("image_size", s.image_size), model.insert("patch_size", s.patch_size);
    model.insert("encoder_embed_dim", s.encoder_embed_dim), model.insert("encoder_depth", s.encoder_depth);
    model.insert("encoder_num_heads", s.encoder_num_heads), model.insert("window_size", s.window_size);
    model.insert("encoder_global_attn_indexes", to_toml_array(s.encoder_global_attn_indexes));
    model.insert("mlp_ratio", s.mlp_ratio), model.insert("prompt_embed_dim", s.prompt_embed_dim);
    model.insert("mask_in_chans", s.mask_in_chans), model.insert("decoder_depth", s.decoder_depth);
    model.insert("decoder_mlp_dim", s.decoder_mlp_dim), model.insert("decoder_num_heads", s.decoder_num_heads);
    model.insert("iou_head_hidden_dim", s.iou_head_hidden_dim), model.insert("iou_head_depth", s.iou_head_depth);
    model.insert("num_multimask_outputs", s.num_multimask_outputs);
    model.insert("attention_downsample_rate", s.attention_downsample_rate);
  }
  const auto& d = c.data;
  const auto& t = c.train;
  toml::table root{
      {"run", toml::table{{"name", c.run.name}, {"output_dir", c.run.output_dir}, {"seeds", to_toml_array(c.run.seeds)},
                          {"dataset", c.run.dataset}, {"threads", c.run.threads}, {"device", c.run.device},
                          {"log_every", c.run.log_every}}},
      {"model", model},
      {"method", method_table(c.method)},
      {"data", toml::table{{"train", d.train}, {"val", d.val}, {"max_instances", d.max_instances},
                           {"box_jitter", d.box_jitter}, {"shuffle", d.shuffle}, {"uneven", d.uneven},
                           {"workers", d.workers}, {"prefetch", d.prefetch}}},
      {"train", toml::table{{"epochs", t.epochs}, {"images_per_step", t.images_per_step},
                            {"optimizer", t.optimizer}, {"lr", t.lr}, {"weight_decay", t.weight_decay},
                            {"schedule", t.schedule}, {"warmup_steps", t.warmup_steps}, {"step_size", t.step_size},
                            {"gamma", t.gamma}, {"grad_clip", t.grad_clip}, {"prompts_per_pass", t.prompts_per_pass},
                            {"loss_bce", t.loss_bce},
                            {"loss_dice", t.loss_dice}, {"loss_focal", t.loss_focal}, {"precision", t.precision},
                            {"checkpoint_every", t.checkpoint_every}, {"trunk_cache", t.trunk_cache},
                            {"trunk_cache_dtype", t.trunk_cache_dtype},
                            {"trunk_cache_memory_gb", t.trunk_cache_memory_gb},
                            {"trunk_cache_disk_gb", t.trunk_cache_disk_gb}, {"trunk_cache_dir", t.trunk_cache_dir}}},
      {"eval", toml::table{{"every", c.eval.every}, {"metrics", to_toml_array(c.eval.metrics)},
                           {"per_class", c.eval.per_class}}}};
  std::ostringstream out;
  out << root << "\n";
  return out.str();
}

}  // namespace sparser::config
